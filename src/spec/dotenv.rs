//! `.env` / `env_file` parsing with the syntax of compose-go's `dotenv`
//! package: `KEY=VALUE` / `KEY: VALUE` lines, `export` prefixes, comments,
//! single- and double-quoted (possibly multi-line) values, and variable
//! interpolation in unquoted and double-quoted values.

use std::collections::{BTreeSet, HashMap};

use crate::spec::interpolate::{interpolate, Lookup};

/// A syntax error in a dotenv file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parse dotenv content. Returns pairs in file order (later duplicates
/// override earlier ones: the returned Vec has each key once, at the position
/// of its first occurrence, with the last value).
///
/// `lookup` resolves variables during interpolation of unquoted and
/// double-quoted values; a variable it does not know falls back to keys
/// defined earlier in the same file (the order compose-go uses: OS
/// environment first, then the file). Unknown variables become "".
pub fn parse(content: &str, lookup: Lookup) -> Result<Vec<(String, String)>, DotenvError> {
    let text = normalize(content);
    let mut cursor = Cursor {
        text: &text,
        pos: 0,
        counted: (0, 1),
    };
    let mut env = OrderedEnv::default();
    while cursor.skip_blank_and_comments() {
        if let Some((key, value)) = parse_statement(&mut cursor, lookup, &env)? {
            env.insert(key, value);
        }
    }
    Ok(env.entries)
}

/// `format: raw`: no quote processing, no interpolation: `KEY=VALUE` split at
/// the first '=', blank lines and lines starting with '#' skipped, value
/// taken verbatim (trailing '\r' removed).
///
/// A non-blank line without '=' is an error, since without a lookup there
/// is nothing a bare `KEY` could mean.
pub fn parse_raw(content: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut env = OrderedEnv::default();
    for (index, line) in content.split('\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(DotenvError {
                line: line_no,
                message: format!("missing '=' in {line:?}"),
            });
        };
        let key = validate_key(key.trim(), line_no)?;
        env.insert(key, value.to_owned());
    }
    Ok(env.entries)
}

/// Key/value pairs in first-occurrence order, with last-wins values.
#[derive(Default)]
struct OrderedEnv {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn insert(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.1 = value;
                }
            }
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        let &i = self.index.get(key)?;
        self.entries.get(i).map(|(_, v)| v.as_str())
    }
}

/// Drops a UTF-8 BOM and turns CRLF into LF, so the parser (and multi-line
/// quoted values) only ever see `\n`. Line numbers are unaffected.
fn normalize(content: &str) -> String {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    content.replace("\r\n", "\n")
}

/// A position in the (normalized) file text.
///
/// `pos` only stops after ASCII bytes or at the end, so slicing at it is
/// always on a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// `(offset, line)` of the last line-number query, so that numbering
    /// stays linear in the file size (`pos` never moves backwards).
    counted: (usize, usize),
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// 1-based line number of the current position.
    fn line(&mut self) -> usize {
        let (from, line) = self.counted;
        let newlines = self
            .text
            .get(from..self.pos)
            .map_or(0, |s| s.bytes().filter(|&b| b == b'\n').count());
        self.counted = (self.pos.max(from), line + newlines);
        self.counted.1
    }

    /// The rest of the current line, without its `\n`.
    fn rest_of_line(&self) -> &'a str {
        let rest = self.rest();
        rest.split('\n').next().unwrap_or(rest)
    }

    /// Moves past the end of the current line (or to the end of input).
    fn skip_line(&mut self) {
        let rest = self.rest();
        self.pos += rest.find('\n').map_or(rest.len(), |i| i + 1);
    }

    /// Skips whitespace, blank lines and `#` comment lines. Returns whether
    /// a statement follows.
    fn skip_blank_and_comments(&mut self) -> bool {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return false;
            }
            if !trimmed.starts_with('#') {
                return true;
            }
            self.skip_line();
        }
    }

    /// Skips spaces and tabs, but not line breaks.
    fn skip_inline_space(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t']);
        self.pos += rest.len() - trimmed.len();
    }
}

/// Parses one statement starting at a non-blank, non-comment line. Returns
/// `None` for a bare `KEY` that `lookup` does not know.
fn parse_statement(
    cursor: &mut Cursor,
    lookup: Lookup,
    env: &OrderedEnv,
) -> Result<Option<(String, String)>, DotenvError> {
    let line_no = cursor.line();
    strip_export(cursor);
    let line = cursor.rest_of_line();
    let Some(sep) = line.find(['=', ':']) else {
        // `KEY` alone: inherit it from the environment.
        let key = validate_key(line.trim(), line_no)?;
        cursor.skip_line();
        return Ok(lookup(&key).map(|value| (key, value)));
    };
    let key = validate_key(line.get(..sep).unwrap_or_default().trim(), line_no)?;
    cursor.pos += sep + 1;
    let value = parse_value(cursor, lookup, env)?;
    Ok(Some((key, value)))
}

/// Consumes an `export ` prefix, unless `export` is itself the key
/// (`export=1`, or a bare `export` line).
fn strip_export(cursor: &mut Cursor) {
    let line = cursor.rest_of_line();
    if let Some(after) = line.strip_prefix("export") {
        let trimmed = after.trim_start_matches([' ', '\t']);
        if trimmed.len() < after.len() && !trimmed.trim().is_empty() {
            cursor.pos += line.len() - trimmed.len();
        }
    }
}

/// Keys are non-empty and made of `[A-Za-z0-9_.\-\[\]]`.
fn validate_key(key: &str, line: usize) -> Result<String, DotenvError> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']');
    if key.is_empty() || !key.chars().all(valid_char) {
        return Err(DotenvError {
            line,
            message: format!("invalid variable name {key:?}"),
        });
    }
    Ok(key.to_owned())
}

/// Parses the value after the separator, leaving the cursor at the start of
/// the next line.
fn parse_value(cursor: &mut Cursor, lookup: Lookup, env: &OrderedEnv) -> Result<String, DotenvError> {
    // Kept for unquoted values: whitespace right after the separator is what
    // makes `A= #c` a comment rather than the value "#c".
    let unquoted_line = cursor.rest_of_line();
    cursor.skip_inline_space();
    let start_line = cursor.line();
    let value = match cursor.rest().as_bytes().first() {
        Some(b'\'') => parse_single_quoted(cursor)
            .ok_or_else(|| unterminated(start_line, "single"))?
            .to_owned(),
        Some(b'"') => {
            let raw = parse_double_quoted(cursor).ok_or_else(|| unterminated(start_line, "double"))?;
            expand(&unescape_double_quoted(raw), lookup, env, start_line)?
        }
        _ => {
            let raw = unquoted_value(unquoted_line);
            cursor.skip_line();
            return expand(raw, lookup, env, start_line);
        }
    };
    // Whatever follows a closing quote on the same line is ignored.
    cursor.skip_line();
    Ok(value)
}

/// An unquoted value: the line up to an inline comment (whitespace then
/// `#`), trimmed. `A=b#c` keeps the `#` because no whitespace precedes it.
fn unquoted_value(line: &str) -> &str {
    let comment = line
        .char_indices()
        .find(|&(i, c)| c == '#' && line.get(..i).is_some_and(|b| b.ends_with([' ', '\t'])))
        .map(|(i, _)| i);
    line.get(..comment.unwrap_or(line.len())).unwrap_or(line).trim()
}

/// `'...'`: everything up to the next `'`, verbatim (no escapes). `None`
/// when the quote is never closed.
fn parse_single_quoted<'a>(cursor: &mut Cursor<'a>) -> Option<&'a str> {
    let body = cursor.rest().get(1..).unwrap_or_default();
    let end = body.find('\'')?;
    cursor.pos += 1 + end + 1;
    body.get(..end)
}

/// `"..."`: the raw text between the quotes; a backslash protects the next
/// character, so `\"` does not close the value. `None` when the quote is
/// never closed.
fn parse_double_quoted<'a>(cursor: &mut Cursor<'a>) -> Option<&'a str> {
    let body = cursor.rest().get(1..).unwrap_or_default();
    let mut escaped = false;
    for (i, b) in body.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => {
                cursor.pos += 1 + i + 1;
                return body.get(..i);
            }
            _ => {}
        }
    }
    None
}

/// An unclosed quote, reported at the line where the value started.
fn unterminated(line: usize, kind: &str) -> DotenvError {
    DotenvError {
        line,
        message: format!("unterminated {kind}-quoted value"),
    }
}

/// Resolves the escapes of a double-quoted value. `\$` becomes `$$` so that
/// the interpolation that follows yields a literal `$`; unknown escapes are
/// kept as written.
fn unescape_double_quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Interpolates a value: `lookup` first, then keys defined earlier in the
/// file. Unset variables silently become "" (compose does not warn here).
fn expand(value: &str, lookup: Lookup, env: &OrderedEnv, line: usize) -> Result<String, DotenvError> {
    let resolve = |name: &str| lookup(name).or_else(|| env.get(name).map(str::to_owned));
    let mut ignored_unset = BTreeSet::new();
    interpolate(value, &resolve, &mut ignored_unset).map_err(|err| DotenvError {
        line,
        message: err.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn os_env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            "SHADOW" => Some("from-os".into()),
            _ => None,
        }
    }

    fn pairs(content: &str) -> Vec<(String, String)> {
        parse(content, &os_env).unwrap()
    }

    fn one(content: &str) -> String {
        let env = pairs(content);
        assert_eq!(env.len(), 1, "content {content:?} gave {env:?}");
        env[0].1.clone()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(content: &str) -> DotenvError {
        parse(content, &os_env).unwrap_err()
    }

    #[test]
    fn basic_forms() {
        assert_eq!(one("A=b"), "b");
        assert_eq!(one("A: b"), "b");
        assert_eq!(one("A:b"), "b");
        assert_eq!(one("export A=b"), "b");
        assert_eq!(one("export\tA=b"), "b");
        assert_eq!(one("A = b"), "b");
        assert_eq!(one("  A\t=\tb  "), "b");
        assert_eq!(one("A="), "");
        assert_eq!(one("A=   "), "");
        assert_eq!(one("A=b=c"), "b=c");
        assert_eq!(one("A=b:c"), "b:c");
        assert_eq!(one("A: http://x:80/y"), "http://x:80/y");
        // Like compose-go, the first `=` or `:` ends the key.
        assert_eq!(one("A:B=c"), "B=c");
    }

    #[test]
    fn export_as_key() {
        assert_eq!(pairs("export=1"), kv(&[("export", "1")]));
        assert_eq!(pairs("exported=1"), kv(&[("exported", "1")]));
    }

    #[test]
    fn key_characters() {
        assert_eq!(
            pairs("a.b=1\nc-d=2\ne_f=3\narr[0]=4\n9LIVES=5"),
            kv(&[
                ("a.b", "1"),
                ("c-d", "2"),
                ("e_f", "3"),
                ("arr[0]", "4"),
                ("9LIVES", "5")
            ])
        );
    }

    #[test]
    fn invalid_keys() {
        let e = err("A=1\n1 2=3");
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "invalid variable name \"1 2\"");
        assert_eq!(e.to_string(), "line 2: invalid variable name \"1 2\"");
        assert_eq!(err("=x").message, "invalid variable name \"\"");
        assert_eq!(err("A$B=x").line, 1);
        assert_eq!(err("\n\nFOO # comment").line, 3);
        assert_eq!(err("\"A\"=x").message, "invalid variable name \"\\\"A\\\"\"");
        assert_eq!(err("KÉY=x").line, 1);
    }

    #[test]
    fn comments_and_blank_lines() {
        let content = "# header\n\n   # indented comment\nA=1\n\t\nB=2 # trailing\n#C=3\n";
        assert_eq!(pairs(content), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(pairs(""), kv(&[]));
        assert_eq!(pairs("\n\n  \n# only comments"), kv(&[]));
    }

    #[test]
    fn inline_comments_in_unquoted_values() {
        assert_eq!(one("A=b #c"), "b");
        assert_eq!(one("A=b\t#c"), "b");
        assert_eq!(one("A=b#c"), "b#c");
        assert_eq!(one("A=b # c # d"), "b");
        assert_eq!(one("A=#c"), "#c");
        assert_eq!(one("A= #c"), "");
        assert_eq!(one("A=a b  c "), "a b  c");
    }

    #[test]
    fn bom_and_crlf() {
        assert_eq!(
            pairs("\u{feff}A=1\r\nB=\"x\r\ny\"\r\nC='p'\r\n"),
            kv(&[("A", "1"), ("B", "x\ny"), ("C", "p")])
        );
        assert_eq!(err("A=1\r\nB B=2\r\n").line, 2);
    }

    #[test]
    fn single_quoted() {
        assert_eq!(one("A='b c'"), "b c");
        assert_eq!(one("A='$HOME ${X:?boom}'"), "$HOME ${X:?boom}");
        assert_eq!(one(r"A='a\nb\'"), r"a\nb\");
        assert_eq!(one("A='  spaced  '"), "  spaced  ");
        assert_eq!(one("A='has # hash'"), "has # hash");
        assert_eq!(one("A=''"), "");
        assert_eq!(one("A='x' trailing junk"), "x");
        assert_eq!(one("A='x' # comment"), "x");
        assert_eq!(one("A='with \"double\"'"), "with \"double\"");
    }

    #[test]
    fn single_quoted_multiline() {
        assert_eq!(
            pairs("A='line1\nline2\n  line3'\nB=after"),
            kv(&[("A", "line1\nline2\n  line3"), ("B", "after")])
        );
    }

    #[test]
    fn double_quoted_escapes() {
        assert_eq!(one(r#"A="a\nb""#), "a\nb");
        assert_eq!(one(r#"A="a\tb""#), "a\tb");
        assert_eq!(one(r#"A="a\rb""#), "a\rb");
        assert_eq!(one(r#"A="say \"hi\"""#), "say \"hi\"");
        assert_eq!(one(r#"A="back\\slash""#), "back\\slash");
        assert_eq!(one(r#"A="ends with \\""#), "ends with \\");
        assert_eq!(one(r#"A="cost \$5 \$HOME""#), "cost $5 $HOME");
        assert_eq!(one(r#"A="keep \q \u1""#), r"keep \q \u1");
        assert_eq!(one(r#"A="  spaced  ""#), "  spaced  ");
        assert_eq!(one(r#"A="has # hash""#), "has # hash");
        assert_eq!(one(r#"A="""#), "");
        assert_eq!(one(r#"A="it's""#), "it's");
    }

    #[test]
    fn double_quoted_multiline_and_trailing() {
        assert_eq!(
            pairs("A=\"line1\nline2\"\nB=\"x\" ignored\nC=\"y\" # comment\nD=z"),
            kv(&[("A", "line1\nline2"), ("B", "x"), ("C", "y"), ("D", "z")])
        );
        let cert = "KEY=\"-----BEGIN-----\nabc\n-----END-----\"\n";
        assert_eq!(one(cert), "-----BEGIN-----\nabc\n-----END-----");
    }

    #[test]
    fn interpolation() {
        assert_eq!(one("A=$HOME/x"), "/home/me/x");
        assert_eq!(one("A=${HOME}"), "/home/me");
        assert_eq!(one("A=\"${HOME}/y\""), "/home/me/y");
        assert_eq!(one("A=${NOPE:-dflt}"), "dflt");
        assert_eq!(one("A=${EMPTY:-dflt}"), "dflt");
        assert_eq!(one("A=$NOPE"), "");
        assert_eq!(one("A=$$HOME"), "$HOME");
        assert_eq!(
            pairs("A=1\nB=${A}2\nC=\"$B-3\""),
            kv(&[("A", "1"), ("B", "12"), ("C", "12-3")])
        );
    }

    #[test]
    fn lookup_wins_over_earlier_keys() {
        assert_eq!(
            pairs("SHADOW=from-file\nB=$SHADOW"),
            kv(&[("SHADOW", "from-file"), ("B", "from-os")])
        );
    }

    #[test]
    fn later_keys_are_not_visible() {
        assert_eq!(pairs("A=$B\nB=1"), kv(&[("A", ""), ("B", "1")]));
    }

    #[test]
    fn interpolation_errors_carry_line() {
        let e = err("A=1\nB=${NOPE:?needed}");
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "required variable NOPE is missing a value: needed");
        let e = err("A=\"${1}\"");
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("invalid interpolation format"));
    }

    #[test]
    fn bare_keys_inherit() {
        assert_eq!(
            pairs("HOME\nNOPE\nexport EMPTY\nX=1"),
            kv(&[("HOME", "/home/me"), ("EMPTY", ""), ("X", "1")])
        );
        assert_eq!(parse("HOME", &no_env).unwrap(), kv(&[]));
        assert_eq!(pairs("  HOME  \n"), kv(&[("HOME", "/home/me")]));
    }

    #[test]
    fn duplicates_keep_first_position_last_value() {
        assert_eq!(
            pairs("A=1\nB=2\nA=3\nC=4\nB=5"),
            kv(&[("A", "3"), ("B", "5"), ("C", "4")])
        );
        assert_eq!(pairs("A=1\nB=$A\nA=2"), kv(&[("A", "2"), ("B", "1")]));
    }

    #[test]
    fn unterminated_quotes() {
        let e = err("A=1\nB=\"open\nstill open\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "unterminated double-quoted value");
        let e = err("A=1\n\nC='open");
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "unterminated single-quoted value");
        assert_eq!(err(r#"A="escaped end\""#).line, 1);
        assert_eq!(err("A=\"").line, 1);
    }

    #[test]
    fn weird_input_does_not_panic() {
        for content in [
            "=",
            ":",
            "\"",
            "'",
            "\\",
            "A=\\",
            "A=\"\\",
            "export",
            "export ",
            "export =",
            "\u{feff}",
            "\r",
            "\r\r\n",
            "A=é#é",
            "A=\"é\\é\"",
            "é",
            "A=${",
            "\u{0}=1",
            "A='\u{feff}",
            "#\u{feff}\nA=1",
            "A=\"\\\"",
            "A: \"x\": y",
        ] {
            let _ = parse(content, &os_env);
            let _ = parse_raw(content);
        }
        assert_eq!(one("A=\"é\\é\""), "é\\é");
        assert_eq!(one("A=é #é"), "é");
        assert_eq!(pairs("export"), kv(&[]));
        let big = "A=1\n".repeat(50_000) + "B B=2";
        assert_eq!(err(&big).line, 50_001);
    }

    #[test]
    fn raw_format() {
        let content = "\u{feff}# comment\nA=$HOME\nB='quoted' # not a comment\n\n  \nC= spaced \r\nD=x=y\n  #indented comment\nE=\n";
        assert_eq!(
            parse_raw(content).unwrap(),
            kv(&[
                ("A", "$HOME"),
                ("B", "'quoted' # not a comment"),
                ("C", " spaced "),
                ("D", "x=y"),
                ("E", "")
            ])
        );
    }

    #[test]
    fn raw_format_duplicates_and_errors() {
        assert_eq!(parse_raw("A=1\nB=2\nA=3").unwrap(), kv(&[("A", "3"), ("B", "2")]));
        let e = parse_raw("A=1\nNOEQUALS\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_raw("A=1\r\n\r\nB C=2").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "invalid variable name \"B C\"");
    }
}
