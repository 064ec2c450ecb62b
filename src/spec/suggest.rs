//! "Did you mean" for unknown keys: serde lists the expected fields, we
//! pick the closest one.

/// The unknown key named in a serde "unknown field" message.
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Rewrites serde's "unknown field `imgae`, expected one of `a`, `b`, …"
/// into "unknown key `imgae` (did you mean `image`?)"; other messages pass
/// through unchanged.
pub fn improve_message(message: &str) -> String {
    let Some(field) = unknown_field(message) else {
        return message.to_string();
    };
    let expected = expected_fields(message);
    match closest(&field, &expected) {
        Some(best) => format!("unknown key `{field}` (did you mean `{best}`?)"),
        None => format!("unknown key `{field}`"),
    }
}

fn expected_fields(message: &str) -> Vec<String> {
    let Some(index) = message.find("expected") else {
        return Vec::new();
    };
    message[index..]
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// The candidate nearest to `word`, if it is near enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1) || c.starts_with(word))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let m = improve_message("unknown field `imgae`, expected one of `image`, `build`, `command`");
        assert_eq!(m, "unknown key `imgae` (did you mean `image`?)");
        let m = improve_message("unknown field `zzzzzz`, expected one of `image`, `build`");
        assert_eq!(m, "unknown key `zzzzzz`");
        assert_eq!(improve_message("invalid type"), "invalid type");
        assert_eq!(unknown_field("unknown field `a`, expected `b`").as_deref(), Some("a"));
    }
}
