//! Compose variable interpolation (`$VAR`, `${VAR:-default}`, ...), with the
//! semantics of compose-go's `template` package.
//!
//! The grammar is parsed by hand instead of with compose-go's regular
//! expression so that nested expressions inside defaults (`${A:-${B:-x}}`)
//! are matched by a real parser rather than by brace counting over a greedy
//! match. The observable results are the same for every well-formed template.

use std::collections::BTreeSet;

use crate::spec::path::YamlPath;

/// Looks a variable up; None = unset. (Empty string = set but empty.)
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a template could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` failed
    #[error("required variable {name} is missing a value{}", reason_suffix(.message))]
    Required { name: String, message: String },
    /// anything after `${` that is not a valid expression, e.g. `${1}`, `${a.b}`, `${VAR/x/y}`, unterminated `${`
    #[error("invalid interpolation format for {template:?}")]
    InvalidTemplate { template: String },
}

/// compose-go leaves out the `: reason` part when the message is empty
/// (`${VAR?}`), so the error does not end in a dangling colon.
fn reason_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// An interpolation failure inside a YAML tree, with the path of the scalar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ValueInterpolateError {
    pub path: YamlPath,
    #[source]
    pub source: InterpolateError,
}

/// How deeply `${...}` expressions may nest inside one another. Real files
/// nest two or three levels; the limit only exists so that a hostile input
/// cannot exhaust the stack through recursion.
const MAX_NESTING: usize = 64;

/// Interpolate one string. Variables that are unset and have no default are
/// replaced by "" and their names are inserted into `unset` (the caller warns:
/// The "X" variable is not set. Defaulting to a blank string.)
pub fn interpolate(template: &str, lookup: Lookup, unset: &mut BTreeSet<String>) -> Result<String, InterpolateError> {
    // Fast path: most scalars in a compose file contain no `$` at all.
    if !template.contains('$') {
        return Ok(template.to_owned());
    }
    let mut parser = Parser {
        template,
        pos: 0,
        depth: 0,
        lookup,
        unset,
    };
    parser.parse_text(Context::TopLevel)
}

/// Interpolate every string scalar in a YAML tree, in place. Mapping KEYS are
/// never interpolated, only values (strings inside sequences and mappings,
/// recursively). Non-string scalars untouched. Tagged values
/// (serde_yaml::Value::Tagged, e.g. `!reset` / `!override`) are recursed into.
/// `path` is the path of `value` (pass YamlPath::root() at the top); errors
/// carry the full path of the failing scalar.
pub fn interpolate_value(
    value: &mut serde_yaml::Value,
    path: &YamlPath,
    lookup: Lookup,
    unset: &mut BTreeSet<String>,
) -> Result<(), ValueInterpolateError> {
    use serde_yaml::Value;
    match value {
        Value::String(s) => {
            *s = interpolate(s, lookup, unset).map_err(|source| ValueInterpolateError {
                path: path.clone(),
                source,
            })?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &path.index(i), lookup, unset)?;
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                interpolate_value(item, &path.key(key_segment(key)), lookup, unset)?;
            }
        }
        Value::Tagged(tagged) => interpolate_value(&mut tagged.value, path, lookup, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The text used for a mapping key in a [`YamlPath`]. Compose keys are
/// strings, but YAML allows `1: x` or `true: y`, which still need a name.
fn key_segment(key: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

/// Where [`Parser::parse_text`] is reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The template itself: runs to the end of input, `{` / `}` are literal.
    TopLevel,
    /// The word after an operator (`${A:-word}`): ends at the `}` closing
    /// the expression.
    Word,
}

/// The operator between a variable name and its word in `${NAME<op>word}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    /// `:-` default when unset or empty
    DefaultUnsetOrEmpty,
    /// `-` default only when unset
    DefaultUnset,
    /// `:?` error when unset or empty
    RequiredNonEmpty,
    /// `?` error only when unset
    Required,
    /// `:+` alternate when set and non-empty
    AltNonEmpty,
    /// `+` alternate when set, even empty
    AltSet,
}

impl Operator {
    /// Recognises an operator at the start of `rest`, returning it and its
    /// length in bytes.
    fn parse(rest: &[u8]) -> Option<(Operator, usize)> {
        let (colon, sign) = match rest {
            [b':', sign, ..] => (true, *sign),
            [sign, ..] => (false, *sign),
            [] => return None,
        };
        let op = match (colon, sign) {
            (true, b'-') => Operator::DefaultUnsetOrEmpty,
            (false, b'-') => Operator::DefaultUnset,
            (true, b'?') => Operator::RequiredNonEmpty,
            (false, b'?') => Operator::Required,
            (true, b'+') => Operator::AltNonEmpty,
            (false, b'+') => Operator::AltSet,
            _ => return None,
        };
        Some((op, if colon { 2 } else { 1 }))
    }

    /// Combines the variable's value with the (already interpolated) word.
    fn apply(self, name: &str, value: Option<String>, word: String) -> Result<String, InterpolateError> {
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        let is_set = value.is_some();
        let required = |ok: bool, value: Option<String>| match value {
            Some(v) if ok => Ok(v),
            _ => Err(InterpolateError::Required {
                name: name.to_owned(),
                message: word.clone(),
            }),
        };
        match self {
            Operator::DefaultUnsetOrEmpty => Ok(value.filter(|v| !v.is_empty()).unwrap_or(word)),
            Operator::DefaultUnset => Ok(value.unwrap_or(word)),
            Operator::RequiredNonEmpty => required(non_empty, value),
            Operator::Required => required(is_set, value),
            Operator::AltNonEmpty => Ok(if non_empty { word } else { String::new() }),
            Operator::AltSet => Ok(if is_set { word } else { String::new() }),
        }
    }
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// A single left-to-right pass over one template.
///
/// `pos` only ever stops on ASCII bytes (`$`, `{`, `}`, name characters) or
/// at the end, so every slice taken between two stops is on a UTF-8 char
/// boundary.
struct Parser<'t, 'l, 'u> {
    template: &'t str,
    pos: usize,
    depth: usize,
    lookup: Lookup<'l>,
    unset: &'u mut BTreeSet<String>,
}

impl<'t> Parser<'t, '_, '_> {
    fn bytes(&self) -> &'t [u8] {
        self.template.as_bytes()
    }

    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes().get(self.pos + offset).copied()
    }

    fn slice(&self, from: usize, to: usize) -> &'t str {
        // Cannot fail given the invariant on `pos`; an empty string is a safe
        // fallback rather than a panic.
        self.template.get(from..to).unwrap_or_default()
    }

    fn invalid(&self) -> InterpolateError {
        InterpolateError::InvalidTemplate {
            template: self.template.to_owned(),
        }
    }

    /// Reads text up to the end of input (top level) or up to the `}` that
    /// closes the current expression (word; the `}` is left unconsumed).
    ///
    /// Inside a word, a bare `{` opens a group whose `}` is literal text, so
    /// JSON-like defaults such as `${CFG:-{"a":1}}` keep their braces — the
    /// same balancing compose-go applies.
    fn parse_text(&mut self, context: Context) -> Result<String, InterpolateError> {
        let mut out = String::new();
        let mut literal_start = self.pos;
        let mut open_groups = 0usize;
        while let Some(b) = self.peek(0) {
            match (b, context) {
                (b'$', _) => {
                    out.push_str(self.slice(literal_start, self.pos));
                    self.parse_dollar(&mut out)?;
                    literal_start = self.pos;
                    continue;
                }
                (b'{', Context::Word) => open_groups += 1,
                (b'}', Context::Word) if open_groups == 0 => {
                    out.push_str(self.slice(literal_start, self.pos));
                    return Ok(out);
                }
                (b'}', Context::Word) => open_groups -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        if context == Context::Word {
            // Ran off the end before the closing brace.
            return Err(self.invalid());
        }
        out.push_str(self.slice(literal_start, self.pos));
        Ok(out)
    }

    /// Handles the `$` at `pos`, appending its expansion to `out`.
    fn parse_dollar(&mut self, out: &mut String) -> Result<(), InterpolateError> {
        match self.peek(1) {
            Some(b'$') => {
                out.push('$');
                self.pos += 2;
            }
            Some(b'{') => {
                self.pos += 2;
                out.push_str(&self.parse_braced()?);
            }
            Some(b) if is_name_start(b) => {
                self.pos += 1;
                let name = self.read_name();
                out.push_str(&self.resolve_plain(name));
            }
            // `$1`, `$ `, `$-`, trailing `$`: not an expression, kept as is.
            _ => {
                out.push('$');
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// Parses `NAME}` or `NAME<op>word}` (the `${` is already consumed).
    fn parse_braced(&mut self) -> Result<String, InterpolateError> {
        if self.depth >= MAX_NESTING {
            return Err(self.invalid());
        }
        let name = match self.peek(0) {
            Some(b) if is_name_start(b) => self.read_name(),
            _ => return Err(self.invalid()),
        };
        if self.peek(0) == Some(b'}') {
            self.pos += 1;
            return Ok(self.resolve_plain(name));
        }
        let rest = self.bytes().get(self.pos..).unwrap_or_default();
        let (op, op_len) = Operator::parse(rest).ok_or_else(|| self.invalid())?;
        self.pos += op_len;

        // compose-go interpolates the word before looking the variable up,
        // so errors and unset warnings inside the word surface even when the
        // word ends up unused. Kept for parity.
        self.depth += 1;
        let word = self.parse_text(Context::Word);
        self.depth -= 1;
        let word = word?;
        // parse_text(Word) only returns Ok when it stopped at the `}`.
        self.pos += 1;

        op.apply(name, (self.lookup)(name), word)
    }

    /// Reads `[_a-zA-Z0-9]*` from `pos` (the caller checked the first char).
    fn read_name(&mut self) -> &'t str {
        let start = self.pos;
        while self.peek(0).is_some_and(is_name_char) {
            self.pos += 1;
        }
        self.slice(start, self.pos)
    }

    /// `$NAME` / `${NAME}`: the value, or "" with the name recorded as unset.
    fn resolve_plain(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                self.unset.insert(name.to_owned());
                String::new()
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("FOO", "foo"),
            ("BAR", "bar"),
            ("EMPTY", ""),
            ("_under", "u"),
            ("lower", "low"),
            ("A1", "a-one"),
        ])
    }

    fn run(template: &str) -> (Result<String, InterpolateError>, BTreeSet<String>) {
        let vars = env();
        let lookup = move |k: &str| vars.get(k).map(|v| v.to_string());
        let mut unset = BTreeSet::new();
        let result = interpolate(template, &lookup, &mut unset);
        (result, unset)
    }

    fn ok(template: &str) -> String {
        run(template).0.unwrap()
    }

    fn unset_of(template: &str) -> Vec<String> {
        let (result, unset) = run(template);
        result.unwrap();
        unset.into_iter().collect()
    }

    fn invalid(template: &str) {
        assert_eq!(
            run(template).0,
            Err(InterpolateError::InvalidTemplate {
                template: template.to_owned()
            }),
            "template {template:?}"
        );
    }

    fn required(template: &str, name: &str, message: &str) {
        assert_eq!(
            run(template).0,
            Err(InterpolateError::Required {
                name: name.to_owned(),
                message: message.to_owned()
            }),
            "template {template:?}"
        );
    }

    #[test]
    fn plain_text_untouched() {
        assert_eq!(ok(""), "");
        assert_eq!(ok("hello world"), "hello world");
        assert_eq!(ok("{braces} stay }{"), "{braces} stay }{");
        assert_eq!(ok("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn named_variables() {
        assert_eq!(ok("$FOO"), "foo");
        assert_eq!(ok("x$FOO/y"), "xfoo/y");
        assert_eq!(ok("$_under"), "u");
        assert_eq!(ok("$lower"), "low");
        assert_eq!(ok("$A1"), "a-one");
        assert_eq!(ok("$FOO$BAR"), "foobar");
        // Longest match: `$FOOBAR` is the variable FOOBAR, not FOO + "BAR".
        assert_eq!(ok("$FOOBAR"), "");
        assert_eq!(unset_of("$FOOBAR"), ["FOOBAR"]);
        assert_eq!(ok("$FOO.txt"), "foo.txt");
        assert_eq!(ok("$FOO-x"), "foo-x");
        assert_eq!(ok("é$FOOé"), "éfooé");
    }

    #[test]
    fn braced_variables() {
        assert_eq!(ok("${FOO}"), "foo");
        assert_eq!(ok("${FOO}BAR"), "fooBAR");
        assert_eq!(ok("a${FOO}b${BAR}c"), "afoobbarc");
        assert_eq!(ok("${EMPTY}"), "");
        assert_eq!(ok("${FOO}}"), "foo}");
    }

    #[test]
    fn escapes() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$FOO"), "$FOO");
        assert_eq!(ok("$${FOO}"), "${FOO}");
        assert_eq!(ok("$$$FOO"), "$foo");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("a$$b"), "a$b");
        assert!(unset_of("$${NOPE} $$NOPE").is_empty());
    }

    #[test]
    fn lone_dollar_is_literal() {
        assert_eq!(ok("$"), "$");
        assert_eq!(ok("a$"), "a$");
        assert_eq!(ok("$1"), "$1");
        assert_eq!(ok("$ x"), "$ x");
        assert_eq!(ok("$-"), "$-");
        assert_eq!(ok("$é"), "$é");
        assert_eq!(ok("100$"), "100$");
        assert_eq!(ok("$}"), "$}");
    }

    #[test]
    fn default_when_unset_or_empty() {
        assert_eq!(ok("${FOO:-d}"), "foo");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${NOPE:-d}"), "d");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-with space, and: punct!}"), "with space, and: punct!");
        assert_eq!(ok("${NOPE:-a:-b}"), "a:-b");
    }

    #[test]
    fn default_when_unset() {
        assert_eq!(ok("${FOO-d}"), "foo");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${NOPE-d}"), "d");
        assert_eq!(ok("${NOPE-}"), "");
        assert_eq!(ok("${NOPE--x}"), "-x");
    }

    #[test]
    fn required_non_empty() {
        assert_eq!(ok("${FOO:?boom}"), "foo");
        required("${EMPTY:?boom}", "EMPTY", "boom");
        required("${NOPE:?boom}", "NOPE", "boom");
        required("${NOPE:?}", "NOPE", "");
        required("x ${NOPE:?please set it} y", "NOPE", "please set it");
    }

    #[test]
    fn required_set() {
        assert_eq!(ok("${FOO?boom}"), "foo");
        assert_eq!(ok("${EMPTY?boom}"), "");
        required("${NOPE?boom}", "NOPE", "boom");
        required("${NOPE?}", "NOPE", "");
    }

    #[test]
    fn required_message_is_interpolated() {
        required("${NOPE:?need $FOO and ${BAR}}", "NOPE", "need foo and bar");
        required("${NOPE?cost $$5}", "NOPE", "cost $5");
    }

    #[test]
    fn required_error_display() {
        let err = run("${NOPE:?set it}").0.unwrap_err();
        assert_eq!(err.to_string(), "required variable NOPE is missing a value: set it");
        let err = run("${NOPE?}").0.unwrap_err();
        assert_eq!(err.to_string(), "required variable NOPE is missing a value");
        let err = run("${1}").0.unwrap_err();
        assert_eq!(err.to_string(), "invalid interpolation format for \"${1}\"");
    }

    #[test]
    fn alternate_when_non_empty() {
        assert_eq!(ok("${FOO:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${NOPE:+alt}"), "");
        assert_eq!(ok("${FOO:+}"), "");
    }

    #[test]
    fn alternate_when_set() {
        assert_eq!(ok("${FOO+alt}"), "alt");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${NOPE+alt}"), "");
    }

    #[test]
    fn nested_expressions() {
        assert_eq!(ok("${NOPE:-${BAR}}"), "bar");
        assert_eq!(ok("${NOPE:-${NADA:-x}}"), "x");
        assert_eq!(ok("${NOPE:-${NADA:-${FOO}}}"), "foo");
        assert_eq!(ok("${NOPE:-foo-$BAR}"), "foo-bar");
        assert_eq!(ok("${NOPE:-${BAR}-${FOO}}tail"), "bar-footail");
        assert_eq!(ok("${FOO:-${BAR}}"), "foo");
        assert_eq!(ok("${FOO:+[${BAR}]}"), "[bar]");
        assert_eq!(ok("${NOPE-${EMPTY:-e}}"), "e");
        assert_eq!(ok("${NOPE:-$$}"), "$");
        assert_eq!(ok("${NOPE:-$${X}}"), "${X}");
        assert_eq!(ok("${NOPE:-a}${NOPE:-b}"), "ab");
    }

    #[test]
    fn bare_braces_in_word_balance() {
        assert_eq!(ok(r#"${NOPE:-{"a":1}}"#), r#"{"a":1}"#);
        assert_eq!(ok(r#"${FOO:-{"a":1}}"#), "foo");
        assert_eq!(ok("${NOPE:-{}}x"), "{}x");
        assert_eq!(ok("${NOPE:-a}}"), "a}");
    }

    #[test]
    fn nested_errors_propagate() {
        required("${NOPE:-${NADA:?inner}}", "NADA", "inner");
        invalid("${NOPE:-${1}}");
        // The word is interpolated before the lookup (compose-go parity),
        // so a failing word fails even when the variable is set.
        required("${FOO:-${NADA:?inner}}", "NADA", "inner");
    }

    #[test]
    fn unset_tracking() {
        assert_eq!(unset_of("$NOPE"), ["NOPE"]);
        assert_eq!(unset_of("${NOPE}"), ["NOPE"]);
        assert_eq!(unset_of("$B_NOPE ${A_NOPE} $B_NOPE"), ["A_NOPE", "B_NOPE"]);
        assert!(unset_of("$FOO ${EMPTY}").is_empty());
        assert!(unset_of("${NOPE:-x}").is_empty());
        assert!(unset_of("${NOPE-x}").is_empty());
        assert!(unset_of("${NOPE:+x}").is_empty());
        assert!(unset_of("${NOPE+x}").is_empty());
        assert_eq!(unset_of("${NOPE:-$INNER}"), ["INNER"]);
        assert_eq!(ok("a${NOPE}b$NOPE"), "ab");
    }

    #[test]
    fn unset_accumulates_across_calls() {
        let lookup = |_: &str| None;
        let mut unset = BTreeSet::new();
        interpolate("$A", &lookup, &mut unset).unwrap();
        interpolate("$B", &lookup, &mut unset).unwrap();
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), ["A", "B"]);
    }

    #[test]
    fn invalid_templates() {
        for t in [
            "${}",
            "${1}",
            "${1A}",
            "${a.b}",
            "${VAR/x/y}",
            "${VAR:x}",
            "${VAR:}",
            "${VAR",
            "${VAR:-",
            "${VAR:-x",
            "${VAR:-${X}",
            "${",
            "prefix ${ suffix",
            "${ VAR}",
            "${VAR }",
            "${-x}",
            "${é}",
            "ok $FOO then ${bad.name}",
        ] {
            invalid(t);
        }
    }

    #[test]
    fn invalid_reports_whole_template() {
        let (res, _) = run("a ${NOPE:-${x y}} b");
        assert_eq!(
            res,
            Err(InterpolateError::InvalidTemplate {
                template: "a ${NOPE:-${x y}} b".to_owned()
            })
        );
    }

    #[test]
    fn weird_input_does_not_panic() {
        let deep_ok = format!("{}x{}", "${N:-".repeat(50), "}".repeat(50));
        assert_eq!(ok(&deep_ok), "x");
        let too_deep = format!("{}x{}", "${N:-".repeat(10_000), "}".repeat(10_000));
        invalid(&too_deep);
        for t in [
            "$$$",
            "${${}}",
            "}}}{{{",
            "$\u{0}",
            "${\u{0}}",
            "$é${",
            "${A:-é",
            "$\n$\t",
            "${A:-{{{",
            "${A:-}}}}",
            "\u{feff}$",
        ] {
            let _ = run(t);
        }
    }

    #[test]
    fn lookup_distinguishes_empty_and_unset() {
        let lookup = |k: &str| (k == "SET").then(String::new);
        let mut unset = BTreeSet::new();
        assert_eq!(interpolate("${SET-d}", &lookup, &mut unset).unwrap(), "");
        assert_eq!(interpolate("${UNSET-d}", &lookup, &mut unset).unwrap(), "d");
        assert!(unset.is_empty());
    }

    fn yaml(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn run_value(doc: &str) -> (Result<serde_yaml::Value, ValueInterpolateError>, BTreeSet<String>) {
        let vars = env();
        let lookup = move |k: &str| vars.get(k).map(|v| v.to_string());
        let mut unset = BTreeSet::new();
        let mut value = yaml(doc);
        let result = interpolate_value(&mut value, &YamlPath::root(), &lookup, &mut unset);
        (result.map(|()| value), unset)
    }

    #[test]
    fn value_interpolates_nested_strings_not_keys() {
        let doc = r#"
services:
  $FOO:
    image: "img:${FOO}"
    command: [echo, "$BAR", 1, true]
    environment:
      ${BAR}: $FOO
      PLAIN: x
    ports:
      - target: 80
        published: "${PORT:-8080}"
    labels: ~
"#;
        let (result, unset) = run_value(doc);
        let expected = yaml(
            r#"
services:
  $FOO:
    image: "img:foo"
    command: [echo, "bar", 1, true]
    environment:
      ${BAR}: foo
      PLAIN: x
    ports:
      - target: 80
        published: "8080"
    labels: ~
"#,
        );
        assert_eq!(result.unwrap(), expected);
        assert!(unset.is_empty());
    }

    #[test]
    fn value_recurses_into_tags() {
        let (result, _) = run_value("ports: !override\n  - \"${FOO}:80\"\nx: !reset $BAR\n");
        let expected = yaml("ports: !override\n  - \"foo:80\"\nx: !reset bar\n");
        assert_eq!(result.unwrap(), expected);
    }

    #[test]
    fn value_collects_unset() {
        let (result, unset) = run_value("a: [$X1, {b: $X2}]\nc: ${X3:-d}\n");
        let v = result.unwrap();
        assert_eq!(v, yaml("a: ['', {b: ''}]\nc: d\n"));
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), ["X1", "X2"]);
    }

    #[test]
    fn value_error_carries_path() {
        let doc = "services:\n  web:\n    environment:\n      FOO: ${NOPE:?set NOPE}\n";
        let err = run_value(doc).0.unwrap_err();
        assert_eq!(err.path.to_string(), "services.web.environment.FOO");
        assert_eq!(
            err.source,
            InterpolateError::Required {
                name: "NOPE".into(),
                message: "set NOPE".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "services.web.environment.FOO: required variable NOPE is missing a value: set NOPE"
        );
    }

    #[test]
    fn value_error_path_with_index_and_odd_keys() {
        let err = run_value("services:\n  web:\n    ports: [ok, \"${1}\"]\n")
            .0
            .unwrap_err();
        assert_eq!(err.path.to_string(), "services.web.ports[1]");
        let err = run_value("1: {true: \"${a.b}\"}\n").0.unwrap_err();
        assert_eq!(err.path.to_string(), "1.true");
        let err = run_value("!reset \"${x\"").0.unwrap_err();
        assert!(err.path.is_root());
    }

    #[test]
    fn value_scalars_untouched() {
        let (result, _) = run_value("[1, 2.5, true, null, '$FOO']");
        assert_eq!(result.unwrap(), yaml("[1, 2.5, true, null, foo]"));
    }
}
