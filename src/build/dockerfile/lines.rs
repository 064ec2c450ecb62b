//! From Dockerfile text to logical lines: parser directives at the top
//! (`# syntax=`, `# escape=`), comments dropped, continuations joined,
//! each logical line keeping the number of its first physical line.

/// What the top-of-file directives say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub escape: char,
    pub syntax: Option<String>,
}

/// One instruction's text and where it starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    pub line: usize,
    pub text: String,
}

/// Splits `text` into logical lines; errors carry their 1-based line.
pub fn logical_lines(text: &str) -> Result<(Directives, Vec<LogicalLine>), (usize, String)> {
    let physical: Vec<&str> = text.lines().collect();
    let mut directives = Directives {
        escape: '\\',
        syntax: None,
    };
    let mut index = 0;
    // Directives are only looked for before any comment, blank line or
    // instruction, as docker does; an unknown one ends the search.
    while let Some(line) = physical.get(index) {
        let Some((key, value)) = directive(line) else { break };
        match key.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err((index + 1, format!("invalid escape token {value:?}: must be ` or \\"))),
                };
            }
            "syntax" => directives.syntax = Some(value),
            "check" => {}
            _ => break,
        }
        index += 1;
    }
    let escape = directives.escape;
    let mut lines = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (number, raw) in physical.iter().enumerate().skip(index) {
        let number = number + 1;
        let trimmed = raw.trim_start();
        // Comment and empty lines vanish, also inside a continuation.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let body = raw.trim_end();
        let (body, continues) = match body.strip_suffix(escape) {
            Some(stripped) => (stripped, true),
            None => (body, false),
        };
        let entry = current.get_or_insert_with(|| LogicalLine {
            line: number,
            text: String::new(),
        });
        entry
            .text
            .push_str(if entry.text.is_empty() { body.trim_start() } else { body });
        if !continues {
            if let Some(done) = current.take() {
                lines.push(done);
            }
        }
    }
    // A continuation on the last line ends the instruction, as docker allows.
    if let Some(done) = current.take() {
        lines.push(done);
    }
    Ok((directives, lines))
}

/// `# key=value` (key case-insensitive), or `None` if not a directive.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(usize, String)> {
        logical_lines(text)
            .unwrap()
            .1
            .into_iter()
            .map(|l| (l.line, l.text))
            .collect()
    }

    #[test]
    fn continuations_join_and_keep_first_line() {
        let got = texts("FROM a\nRUN echo \\\n  hi \\\n# comment inside\n\n  there\nCMD x\n");
        assert_eq!(
            got,
            vec![
                (1, "FROM a".to_string()),
                (2, "RUN echo   hi   there".to_string()),
                (7, "CMD x".to_string())
            ]
        );
    }

    #[test]
    fn directives_only_at_top() {
        let (d, lines) = logical_lines("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN a `\n b\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(lines[1].text, "RUN a  b");
        let (d, _) = logical_lines("# comment\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(d.escape, '\\');
        let (d, _) = logical_lines("\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(logical_lines("# escape=x\n").unwrap_err().0, 1);
    }

    #[test]
    fn trailing_continuation_and_indented_comment() {
        assert_eq!(texts("  # hi\nRUN a \\"), vec![(2, "RUN a ".to_string())]);
    }
}
