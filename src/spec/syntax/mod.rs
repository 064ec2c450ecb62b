//! Parsers for the compose "short syntax" strings (`"8080:80/udp"`,
//! `"./data:/data:ro"`, `"1m30s"`, `"512m"`, ...) and the long-form types
//! they expand into.
//!
//! The long-form types are the canonical form berth prints in
//! `berth config`, so they serialize minimally and deterministically.

use std::borrow::Cow;
use std::fmt;

pub mod devices;
pub mod hosts;
pub mod ports;
pub mod units;
pub mod volumes;

/// A short-syntax string that could not be parsed. The message always names
/// the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
}

impl SyntaxError {
    pub fn new(message: impl Into<String>) -> Self {
        SyntaxError {
            message: message.into(),
        }
    }
}

/// `skip_serializing_if` helper for `bool` fields that default to `false`.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Lenient scalar deserializers for use with `#[serde(deserialize_with)]`.
///
/// Compose interpolates `${VAR}` before typing values, so a field that the
/// spec declares numeric or boolean may arrive as a string (`target: "80"`,
/// `read_only: "true"`). These helpers accept both the native scalar and its
/// string spelling. Pair them with `#[schemars(with = "IntOrString")]` (or
/// `BoolOrString`) so the schema admits both shapes.
pub mod lenient {
    use super::{fmt, Cow};
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    /// Schema stand-in for a lenient integer: `{"type": ["integer", "string"]}`.
    pub struct IntOrString;

    impl schemars::JsonSchema for IntOrString {
        fn schema_name() -> Cow<'static, str> {
            Cow::Borrowed("IntOrString")
        }

        fn inline_schema() -> bool {
            true
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({ "type": ["integer", "string"] })
        }
    }

    /// Schema stand-in for a lenient boolean: `{"type": ["boolean", "string"]}`.
    pub struct BoolOrString;

    impl schemars::JsonSchema for BoolOrString {
        fn schema_name() -> Cow<'static, str> {
            Cow::Borrowed("BoolOrString")
        }

        fn inline_schema() -> bool {
            true
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({ "type": ["boolean", "string"] })
        }
    }

    /// An unsigned integer given as a number or a decimal string.
    struct LenientU64(u64);

    impl<'de> Deserialize<'de> for LenientU64 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(U64Visitor).map(LenientU64)
        }
    }

    struct U64Visitor;

    impl Visitor<'_> for U64Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer or a string holding one")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} must not be negative")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim()
                .parse::<u64>()
                .map_err(|_| E::custom(format!("{v:?} is not a non-negative integer")))
        }
    }

    /// A boolean given as a bool or a string. Strings follow compose-go's
    /// `toBoolean`: y/yes/true/on and n/no/false/off, case-insensitive.
    struct LenientBool(bool);

    impl<'de> Deserialize<'de> for LenientBool {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(BoolVisitor).map(LenientBool)
        }
    }

    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean or a string holding one")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(true),
                "n" | "no" | "false" | "off" => Ok(false),
                _ => Err(E::custom(format!("{v:?} is not a boolean"))),
            }
        }
    }

    /// A string that may have been written as a bare number (`published: 8080`).
    struct LenientString(String);

    impl<'de> Deserialize<'de> for LenientString {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StringVisitor).map(LenientString)
        }
    }

    struct StringVisitor;

    impl Visitor<'_> for StringVisitor {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }

    fn narrow<'de, D, T>(v: u64) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        T::try_from(v).map_err(|_| de::Error::custom(format!("{v} is out of range for {}", short_type::<T>())))
    }

    fn short_type<T>() -> &'static str {
        let name = std::any::type_name::<T>();
        name.rsplit("::").next().unwrap_or(name)
    }

    pub fn u16<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        narrow::<D, _>(LenientU64::deserialize(d)?.0)
    }

    pub fn opt_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        Option::<LenientU64>::deserialize(d)?
            .map(|v| narrow::<D, _>(v.0))
            .transpose()
    }

    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        narrow::<D, _>(LenientU64::deserialize(d)?.0)
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<LenientU64>::deserialize(d)?
            .map(|v| narrow::<D, _>(v.0))
            .transpose()
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(LenientU64::deserialize(d)?.0)
    }

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Option::<LenientU64>::deserialize(d)?.map(|v| v.0))
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(LenientBool::deserialize(d)?.0)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Option::<LenientBool>::deserialize(d)?.map(|v| v.0))
    }

    /// A string field that compose also allows as a bare integer.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(LenientString::deserialize(d)?.0)
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<LenientString>::deserialize(d)?.map(|v| v.0))
    }
}

#[cfg(test)]
mod tests {
    use super::lenient;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(deserialize_with = "lenient::u16")]
        port: u16,
        #[serde(default, deserialize_with = "lenient::opt_u32")]
        mode: Option<u32>,
        #[serde(default, deserialize_with = "lenient::opt_u64")]
        size: Option<u64>,
        #[serde(default, deserialize_with = "lenient::bool")]
        flag: bool,
        #[serde(default, deserialize_with = "lenient::opt_bool")]
        maybe: Option<bool>,
        #[serde(default, deserialize_with = "lenient::opt_string")]
        text: Option<String>,
    }

    fn probe(v: serde_json::Value) -> Result<Probe, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn lenient_accepts_numbers_and_strings() {
        let a = probe(json!({"port": 80, "mode": 7, "size": 9, "flag": true, "maybe": false, "text": 8080}));
        let b = probe(json!({"port": "80", "mode": "7", "size": " 9 ", "flag": "yes", "maybe": "off", "text": "8080"}));
        assert_eq!(a, b);
        let p = a.unwrap();
        assert_eq!((p.port, p.mode, p.size), (80, Some(7), Some(9)));
        assert!(p.flag);
        assert_eq!(p.maybe, Some(false));
        assert_eq!(p.text.as_deref(), Some("8080"));
    }

    #[test]
    fn lenient_optional_missing_and_null() {
        let p = probe(json!({"port": 1, "mode": null})).unwrap();
        assert_eq!((p.mode, p.size, p.maybe, p.text), (None, None, None, None));
        assert!(!p.flag);
    }

    #[test]
    fn lenient_rejects_bad_values() {
        let e = probe(json!({"port": 70000})).unwrap_err();
        assert!(e.contains("70000 is out of range for u16"), "{e}");
        let e = probe(json!({"port": "eighty"})).unwrap_err();
        assert!(e.contains("\"eighty\""), "{e}");
        let e = probe(json!({"port": -1})).unwrap_err();
        assert!(e.contains("-1 must not be negative"), "{e}");
        let e = probe(json!({"port": 1, "flag": "maybe"})).unwrap_err();
        assert!(e.contains("\"maybe\" is not a boolean"), "{e}");
        assert!(probe(json!({"port": 1.5})).is_err());
    }

    /// Every parser must return `Err`, never panic, on arbitrary input,
    /// including multi-byte characters next to separators.
    #[test]
    fn parsers_never_panic() {
        let alphabet = [
            "", ":", "/", "-", ".", "[", "]", "=", ",", "é", "µ", "0", "9", "65536", "a", "rwm", "s", "m", "k", "i",
            "b", "~", " ", "+",
        ];
        let mut inputs = vec![String::new()];
        for _ in 0..3 {
            inputs = inputs
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |a| format!("{prefix}{a}")))
                .collect();
        }
        for input in &inputs {
            let _ = super::ports::parse_port(input);
            let _ = super::ports::parse_expose(input);
            let _ = super::volumes::parse_volume(input);
            let _ = super::units::parse_duration(input);
            let _ = super::units::parse_bytes(input);
            let _ = super::hosts::parse_extra_host(input);
            let _ = super::devices::parse_device(input);
            let _ = super::volumes::clean_path(input);
        }
    }

    #[test]
    fn lenient_schema_shapes() {
        let s = schemars::schema_for!(lenient::IntOrString);
        assert_eq!(s.get("type"), Some(&serde_json::json!(["integer", "string"])));
        let s = schemars::schema_for!(lenient::BoolOrString);
        assert_eq!(s.get("type"), Some(&serde_json::json!(["boolean", "string"])));
    }
}
