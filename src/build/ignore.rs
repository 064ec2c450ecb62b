//! `.dockerignore` and path globs, as docker's `patternmatcher` does
//! them: `*` and `?` stay within one path segment, `**` spans any number
//! of segments, `[…]` classes, `\` escapes; a pattern that matches a
//! parent directory excludes everything below it; `!` re-includes; the
//! last matching line wins. Pure: no I/O.

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    segments: Vec<String>,
    exception: bool,
}

impl IgnoreRules {
    /// Parses the file's text: comments (`#`) and blank lines skipped,
    /// paths cleaned and a leading `/` dropped, as docker does.
    pub fn parse(text: &str) -> IgnoreRules {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let segments = clean_segments(pattern);
            if segments.is_empty() {
                continue;
            }
            rules.push(Rule { segments, exception });
        }
        IgnoreRules { rules }
    }

    /// Whether the context path `rel` (`a/b/c`, no leading slash) is
    /// excluded from the build context.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let path: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        let mut excluded = false;
        for rule in &self.rules {
            // The pattern or any parent dir matching it counts.
            let matched = (1..=path.len()).any(|n| match_segments(&rule.segments, &path[..n]));
            if matched {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether some `!` line may re-include files below an excluded
    /// directory (so walks must still look inside it).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// `filepath.Clean` then split: `./a//b/../c` → `[a, c]`.
fn clean_segments(pattern: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    out
}

/// Matches pattern segments against path segments; `**` spans any number.
pub fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => glob_segment(first, segment) && match_segments(rest, path_rest),
            None => false,
        },
    }
}

/// One segment against a glob of `*`, `?`, `[…]` (with `^`/`!` negation
/// and ranges) and `\` escapes. A malformed class matches nothing.
pub fn glob_segment(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| glob_at(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some((&c, n_rest)) = n.split_first() else {
                return false;
            };
            match class(&p[1..], c) {
                Some((matched, used)) => matched && glob_at(&p[1 + used..], n_rest),
                None => false,
            }
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

/// A `[…]` class after its `[`: whether `c` is in it, and how many
/// pattern chars (through `]`) it used.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            let hi = p[i + 1];
            i += 2;
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text)
    }

    #[test]
    fn plain_names_and_parents() {
        let r = rules("# comment\n\nsecret.txt\n/build\n./tmp/\n");
        assert!(r.is_excluded("secret.txt"));
        assert!(!r.is_excluded("sub/secret.txt"));
        assert!(r.is_excluded("build"));
        assert!(r.is_excluded("build/out/a.o"));
        assert!(r.is_excluded("tmp/x"));
        assert!(!r.is_excluded("src/main.rs"));
    }

    #[test]
    fn stars_stay_in_one_segment() {
        let r = rules("*.log\ndocs/*.md\n");
        assert!(r.is_excluded("a.log"));
        assert!(!r.is_excluded("sub/a.log"));
        assert!(r.is_excluded("docs/readme.md"));
        assert!(!r.is_excluded("docs/deep/readme.md"));
    }

    #[test]
    fn double_star_spans_segments() {
        let r = rules("**/*.pyc\nnode_modules/**\na/**/z\n");
        assert!(r.is_excluded("x.pyc"));
        assert!(r.is_excluded("pkg/sub/x.pyc"));
        assert!(r.is_excluded("node_modules/left-pad/index.js"));
        assert!(r.is_excluded("a/z"));
        assert!(r.is_excluded("a/b/c/z"));
        assert!(!r.is_excluded("b/z"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let r = rules("*.md\n!README.md\n");
        assert!(r.is_excluded("CHANGES.md"));
        assert!(!r.is_excluded("README.md"));
        let r = rules("!README.md\n*.md\n");
        assert!(r.is_excluded("README.md"));
        let r = rules("docs\n!docs/keep.txt\n");
        assert!(r.is_excluded("docs/other.txt"));
        assert!(!r.is_excluded("docs/keep.txt"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        assert!(glob_segment("file?.txt", "file1.txt"));
        assert!(!glob_segment("file?.txt", "file10.txt"));
        assert!(glob_segment("[a-c]x", "bx"));
        assert!(!glob_segment("[a-c]x", "dx"));
        assert!(glob_segment("[^a-c]x", "dx"));
        assert!(glob_segment("[!a]x", "bx"));
        assert!(glob_segment("\\*", "*"));
        assert!(!glob_segment("\\*", "a"));
        assert!(!glob_segment("[a-", "a"));
        assert!(glob_segment("*", ""));
        assert!(glob_segment("a*b*c", "aXXbYc"));
    }

    #[test]
    fn empty_rules_exclude_nothing() {
        assert!(rules("").is_empty());
        assert!(!rules("\n# only comments\n").is_excluded("x"));
    }
}
