//! Durations (`"1m30s"`) and byte sizes (`"512m"`) as compose spells them.
//!
//! Compose inherits both syntaxes from Go: durations follow
//! `time.ParseDuration` / `Duration.String`, sizes follow docker's
//! `units.RAMInBytes` (binary multipliers, so `k` is 1024).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::SyntaxError;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Go caps durations at `i64::MAX` nanoseconds (~292 years); so do we, so
/// that every value we accept can be printed back and read by compose-go.
const MAX_DURATION_NANOS: u128 = i64::MAX as u128;

/// Fraction digits beyond this cannot change a nanosecond count.
const MAX_FRACTION_DIGITS: u32 = 18;

fn duration_error(s: &str, why: &str) -> SyntaxError {
    SyntaxError::new(format!("invalid duration {s:?}: {why}"))
}

/// Parses a Go `time.ParseDuration` string: one or more `<number><unit>`
/// components (`"1h30m"`, `"1.5s"`, `".5ms"`) with units ns, us, µs, ms, s,
/// m, h. A bare `"0"` is allowed, as in Go; negative durations are rejected
/// because no compose field has a meaningful negative duration.
pub fn parse_duration(s: &str) -> Result<Duration, SyntaxError> {
    let body = match s.strip_prefix('+') {
        Some(rest) => rest,
        None if s.starts_with('-') => return Err(duration_error(s, "must not be negative")),
        None => s,
    };
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(duration_error(s, "empty duration"));
    }
    let mut rest = body;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = duration_component(s, rest)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_DURATION_NANOS)
            .ok_or_else(|| duration_error(s, "out of range"))?;
        rest = tail;
    }
    Ok(nanos_to_duration(total))
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = (nanos / NANOS_PER_SEC) as u64;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, sub)
}

/// Parses one `<int>[.<frac>]<unit>` component off the front of `rest`,
/// returning its nanoseconds and the remaining input.
fn duration_component<'a>(s: &str, rest: &'a str) -> Result<(u128, &'a str), SyntaxError> {
    let (int_digits, rest) = split_digits(rest);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(duration_error(s, "expected a number"));
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let per_unit = match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        "" => return Err(duration_error(s, "missing unit (use ns, us, ms, s, m or h)")),
        other => return Err(duration_error(s, &format!("unknown unit {other:?}"))),
    };
    let nanos = scaled(int_digits, frac_digits, per_unit)
        .filter(|n| *n <= MAX_DURATION_NANOS)
        .ok_or_else(|| duration_error(s, "out of range"))?;
    Ok((nanos, rest))
}

/// Splits the leading ASCII digits off `s`.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// `int.frac * multiplier`, truncated toward zero; `None` on overflow.
/// Exact integer arithmetic, so `"1.1s"` is exactly 1.1e9 ns.
fn scaled(int_digits: &str, frac_digits: &str, multiplier: u128) -> Option<u128> {
    let int = digits_value(int_digits)?;
    let mut whole = int.checked_mul(multiplier)?;
    let frac_digits = frac_digits.get(..MAX_FRACTION_DIGITS as usize).unwrap_or(frac_digits);
    if !frac_digits.is_empty() {
        let frac = digits_value(frac_digits)?;
        let scale = 10u128.checked_pow(frac_digits.len() as u32)?;
        whole = whole.checked_add(frac.checked_mul(multiplier)? / scale)?;
    }
    Some(whole)
}

fn digits_value(digits: &str) -> Option<u128> {
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse::<u128>().ok()
}

/// Formats like Go's `Duration.String()`: `"1h0m0s"`, `"1m30s"`, `"1.5s"`,
/// `"500ms"`, `"1.5µs"`, `"0s"`. Compose prints durations this way, so
/// `berth config` does too.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}\u{b5}s", with_fraction(nanos, 3));
    }
    if nanos < NANOS_PER_SEC {
        return format!("{}ms", with_fraction(nanos, 6));
    }
    let secs = nanos / NANOS_PER_SEC;
    let seconds = format!("{}s", with_fraction(nanos % (60 * NANOS_PER_SEC), 9));
    if secs < 60 {
        return seconds;
    }
    let minutes = (secs / 60) % 60;
    if secs < 3600 {
        return format!("{minutes}m{seconds}");
    }
    format!("{}h{minutes}m{seconds}", secs / 3600)
}

/// `value / 10^digits` printed with trailing fractional zeros dropped.
fn with_fraction(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A compose duration field (`healthcheck.interval`, `stop_grace_period`,
/// ...). Serializes in Go's canonical format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComposeDuration(pub Duration);

impl Serialize for ComposeDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for ComposeDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor).map(ComposeDuration)
    }
}

struct DurationVisitor;

/// Durations are strings in compose. compose-go decodes them with
/// `time.ParseDuration(fmt.Sprint(value))`, so a bare integer is read as its
/// decimal text: `0` is accepted and any other integer fails with the
/// "missing unit" message, which tells the user what to write instead.
impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration string such as \"30s\" or \"1m30s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
}

impl schemars::JsonSchema for ComposeDuration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Duration")
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration" })
    }
}

fn bytes_error(s: &str, why: &str) -> SyntaxError {
    SyntaxError::new(format!("invalid size {s:?}: {why}"))
}

/// Parses a byte size like docker's `units.RAMInBytes`: a decimal number
/// (fraction allowed), an optional space, then an optional unit
/// `b`, `k`/`kb`/`kib`, `m`..., `g`..., `t`..., `p`... (case-insensitive).
/// Multipliers are binary (`1k` = 1024) whether or not the `i` is written,
/// because that is what docker does for memory limits and tmpfs sizes.
pub fn parse_bytes(s: &str) -> Result<u64, SyntaxError> {
    if s.starts_with('-') {
        return Err(bytes_error(s, "must not be negative"));
    }
    let (int_digits, rest) = split_digits(s);
    if int_digits.is_empty() {
        return Err(bytes_error(s, "expected a number"));
    }
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("0", rest),
    };
    if frac_digits.is_empty() || rest.starts_with('.') {
        return Err(bytes_error(s, "malformed number"));
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    let multiplier = byte_multiplier(unit)
        .ok_or_else(|| bytes_error(s, &format!("unknown unit {unit:?} (use b, k, m, g, t or p)")))?;
    scaled(int_digits, frac_digits, multiplier)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bytes_error(s, "out of range"))
}

/// The multiplier for a size suffix: `[kmgtp]?i?b?` with `i` only after a
/// prefix letter, case-insensitive.
fn byte_multiplier(unit: &str) -> Option<u128> {
    let lower = unit.to_ascii_lowercase();
    let unit = lower.strip_suffix('b').unwrap_or(&lower);
    let (prefix, suffix) = match unit.char_indices().nth(1) {
        Some((i, _)) => unit.split_at(i),
        None => (unit, ""),
    };
    if !(suffix.is_empty() || suffix == "i") {
        return None;
    }
    let power = match prefix {
        "" if suffix.is_empty() => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some(1024u128.pow(power))
}

/// A compose byte-size field (`shm_size`, `mem_limit`, tmpfs `size`, ...).
/// Accepts an integer or a size string; serializes as integer bytes so the
/// canonical output needs no unit parsing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteSizeVisitor).map(ByteSize)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte count or a size string such as \"512m\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_bytes(v).map_err(E::custom)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ByteSize")
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "integer"] })
    }
}

/// `deserialize_with` helper for `Option<u64>` byte-size fields.
pub fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<ByteSize>::deserialize(d)?.map(|b| b.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("300ms").unwrap(), ms(300));
        assert_eq!(parse_duration("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration(".5s").unwrap(), ms(500));
        assert_eq!(parse_duration("5.s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.1s").unwrap(), ms(1100));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("7us").unwrap(), Duration::from_micros(7));
        assert_eq!(parse_duration("7µs").unwrap(), Duration::from_micros(7));
        assert_eq!(parse_duration("7μs").unwrap(), Duration::from_micros(7));
        assert_eq!(parse_duration("1h1m1s1ms").unwrap(), ms(3_661_001));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_bad_durations() {
        for (input, why) in [
            ("", "empty"),
            ("10", "missing unit"),
            ("-5s", "negative"),
            ("5x", "unknown unit \"x\""),
            ("s", "expected a number"),
            (".s", "expected a number"),
            ("1.2.3s", "missing unit"),
            ("5 s", "unknown unit \"\u{20}s\""),
            ("3000000h", "out of range"),
            ("99999999999999999999999999999999999999999h", "out of range"),
            ("1é", "unknown unit"),
        ] {
            let err = parse_duration(input).unwrap_err().message;
            assert!(err.contains(&format!("{input:?}")), "{err}");
            assert!(err.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn formats_like_go() {
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (ms(500), "500ms"),
            (ms(1500), "1.5s"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_000_001), "1.000001ms"),
            (Duration::from_secs(9900), "2h45m0s"),
            (Duration::new(259_383, 500_000_000), "72h3m3.5s"),
        ] {
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(s).unwrap(), d, "{s}");
        }
    }

    #[test]
    fn formats_extremes_without_panicking() {
        assert_eq!(format_duration(Duration::MAX), "5124095576030431h0m15.999999999s");
        assert_eq!(
            parse_duration("2562047h47m16.854775807s").unwrap(),
            Duration::from_nanos(i64::MAX as u64)
        );
        assert!(parse_duration("2562047h47m16.854775808s").is_err());
    }

    #[test]
    fn compose_duration_serde() {
        let d: ComposeDuration = serde_json::from_value(json!("1m30s")).unwrap();
        assert_eq!(d, ComposeDuration(Duration::from_secs(90)));
        assert_eq!(serde_json::to_value(d).unwrap(), json!("1m30s"));
        let zero: ComposeDuration = serde_json::from_value(json!(0)).unwrap();
        assert_eq!(zero.0, Duration::ZERO);
        let err = serde_json::from_value::<ComposeDuration>(json!(10)).unwrap_err();
        assert!(err.to_string().contains("missing unit"), "{err}");
        let err = serde_json::from_value::<ComposeDuration>(json!("1y")).unwrap_err();
        assert!(err.to_string().contains("\"1y\""), "{err}");
        assert!(serde_json::from_value::<ComposeDuration>(json!(true)).is_err());
        let schema = schemars::schema_for!(ComposeDuration);
        assert_eq!(schema.get("format"), Some(&json!("duration")));
    }

    #[test]
    fn parses_byte_sizes() {
        for (input, bytes) in [
            ("100", 100),
            ("100b", 100),
            ("100B", 100),
            ("1k", 1024),
            ("1kb", 1024),
            ("1KiB", 1024),
            ("1Ki", 1024),
            ("512m", 536_870_912),
            ("512 MB", 536_870_912),
            ("1gb", 1_073_741_824),
            ("1.5g", 1_610_612_736),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
            ("0", 0),
            ("0.5k", 512),
        ] {
            assert_eq!(parse_bytes(input).unwrap(), bytes, "{input}");
        }
    }

    #[test]
    fn rejects_bad_byte_sizes() {
        for (input, why) in [
            ("", "expected a number"),
            ("-1", "negative"),
            ("m", "expected a number"),
            ("1x", "unknown unit"),
            ("1ib", "unknown unit"),
            ("1kk", "unknown unit"),
            ("1.", "malformed"),
            ("1.5.5m", "malformed"),
            (".5m", "expected a number"),
            ("1  m", "unknown unit"),
            ("99999999999p", "out of range"),
            ("1ü", "unknown unit"),
        ] {
            let err = parse_bytes(input).unwrap_err().message;
            assert!(err.contains(&format!("{input:?}")), "{err}");
            assert!(err.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn byte_size_serde() {
        let a: ByteSize = serde_json::from_value(json!("1k")).unwrap();
        let b: ByteSize = serde_json::from_value(json!(1024)).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_value(a).unwrap(), json!(1024));
        assert!(serde_json::from_value::<ByteSize>(json!(-1)).is_err());
        assert!(serde_json::from_value::<ByteSize>(json!("lots")).is_err());
        let schema = schemars::schema_for!(ByteSize);
        assert_eq!(schema.get("type"), Some(&json!(["string", "integer"])));
    }
}
