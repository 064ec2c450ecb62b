//! Words of an instruction and their expansion, as docker's shell lexer
//! (`moby/buildkit frontend/dockerfile/shell/lex.go`) does them: quotes
//! group and are removed, the escape character escapes, and `$VAR`,
//! `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}` and
//! `${VAR:?msg}` expand. Pure: no I/O.

/// Splits `text` on unquoted whitespace, keeping quotes and escapes for
/// [`expand`] to process (so `"a b" c` is two words).
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            word.push(c);
            if let Some(next) = chars.next() {
                word.push(next);
            }
            in_word = true;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                continue;
            }
            None => {}
        }
        word.push(c);
        in_word = true;
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Expands one word: variables from `lookup`, quote removal, escapes.
/// Unset variables expand to nothing, as in docker.
pub fn expand(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
        escape,
        lookup,
    };
    lexer.word(None)
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Until the end, or (inside `${…}`) until the unnested `stop`.
    fn word(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            match c {
                '\'' => loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err("unexpected end of text: missing closing single quote".into()),
                    }
                },
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.variable()?),
                c if c == self.escape => match self.next() {
                    Some(next) => out.push(next),
                    // A trailing escape stays, as docker keeps it.
                    None => out.push(c),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.variable()?),
                Some(c) if c == self.escape => match self.next() {
                    // Inside double quotes only these are escapable.
                    Some(next) if next == '"' || next == '$' || next == self.escape => out.push(next),
                    Some(next) => {
                        out.push(c);
                        out.push(next);
                    }
                    None => return Err("unexpected end of text: missing closing double quote".into()),
                },
                Some(c) => out.push(c),
                None => return Err("unexpected end of text: missing closing double quote".into()),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`.
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            // A lone `$` is literal.
            _ => Ok("$".to_string()),
        }
    }

    /// After `${`.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: missing variable name after ${".into());
        }
        let value = (self.lookup)(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let modifier = self.next();
        let modifier = match modifier {
            Some('}') if !colon => return Ok(value.unwrap_or_default()),
            Some(m @ ('-' | '+' | '?')) => m,
            Some(other) => return Err(format!("unsupported modifier ({other}) in substitution of {name}")),
            None => return Err(format!("missing '}}' in substitution of {name}")),
        };
        let word = self.word(Some('}'))?;
        if self.next() != Some('}') {
            return Err(format!("missing '}}' in substitution of {name}"));
        }
        // With `:` an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        Ok(match modifier {
            '-' if set => value.unwrap_or_default(),
            '-' => word,
            '+' if set => word,
            '+' => String::new(),
            _ if set => value.unwrap_or_default(),
            _ => {
                let message = if word.is_empty() {
                    "is not allowed to be unset".to_string()
                } else {
                    word
                };
                return Err(format!("{name}: {message}"));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn ex(word: &str) -> String {
        expand(word, '\\', &vars).unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(ex("$A"), "apple");
        assert_eq!(ex("${A}s"), "apples");
        assert_eq!(ex("$As"), "");
        assert_eq!(ex("pre-$A-post"), "pre-apple-post");
        assert_eq!(ex("$NOPE"), "");
        assert_eq!(ex("cost $5"), "cost $5");
        assert_eq!(ex("$"), "$");
    }

    #[test]
    fn modifiers_as_docker() {
        assert_eq!(ex("${NOPE:-dflt}"), "dflt");
        assert_eq!(ex("${EMPTY:-dflt}"), "dflt");
        assert_eq!(ex("${EMPTY-dflt}"), "");
        assert_eq!(ex("${A:-dflt}"), "apple");
        assert_eq!(ex("${A:+alt}"), "alt");
        assert_eq!(ex("${EMPTY:+alt}"), "");
        assert_eq!(ex("${EMPTY+alt}"), "alt");
        assert_eq!(ex("${NOPE:+alt}"), "");
        assert_eq!(ex("${NOPE:-$A}"), "apple");
        assert_eq!(ex("${NOPE:-${A:+nested}}"), "nested");
        assert_eq!(
            expand("${NOPE:?must be set}", '\\', &vars).unwrap_err(),
            "NOPE: must be set"
        );
        assert!(expand("${A", '\\', &vars).is_err());
        assert!(expand("${A/x/y}", '\\', &vars).is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(ex("'$A'"), "$A");
        assert_eq!(ex("\"$A b\""), "apple b");
        assert_eq!(ex("\\$A"), "$A");
        assert_eq!(ex("\"a\\\"b\""), "a\"b");
        assert_eq!(ex("\"a\\nb\""), "a\\nb");
        assert_eq!(ex("a\\ b"), "a b");
        assert_eq!(expand("`$A", '`', &vars).unwrap(), "$A");
        assert_eq!(expand("C:\\dir", '`', &vars).unwrap(), "C:\\dir");
        assert!(expand("\"open", '\\', &vars).is_err());
        assert!(expand("'open", '\\', &vars).is_err());
    }

    #[test]
    fn words_split_on_unquoted_space() {
        assert_eq!(split_words("a  b\t c", '\\'), ["a", "b", "c"]);
        assert_eq!(split_words(r#"K="x y" L='p q'"#, '\\'), [r#"K="x y""#, "L='p q'"]);
        assert_eq!(split_words(r"a\ b c", '\\'), [r"a\ b", "c"]);
        assert!(split_words("   ", '\\').is_empty());
    }
}
