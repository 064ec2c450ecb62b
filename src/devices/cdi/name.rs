//! CDI names: `kind` (`vendor.com/class`) and fully-qualified device names
//! (`vendor.com/class=name`), with the character rules of CDI's
//! `pkg/parser` (`ValidateVendorName`, `ValidateClassName`,
//! `ValidateDeviceName`).

use std::fmt;

use crate::devices::CdiError;

/// A fully-qualified CDI device name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub vendor: String,
    pub class: String,
    pub name: String,
}

impl QualifiedName {
    /// Parses `vendor.com/class=name`.
    pub fn parse(s: &str) -> Result<Self, CdiError> {
        let invalid = |reason: String| CdiError::InvalidName {
            name: s.to_owned(),
            reason,
        };
        let (kind, name) = s
            .split_once('=')
            .ok_or_else(|| invalid("missing '=' before the device name".into()))?;
        let (vendor, class) = parse_kind(kind).map_err(invalid)?;
        validate_device_name(name).map_err(invalid)?;
        Ok(QualifiedName {
            vendor,
            class,
            name: name.to_owned(),
        })
    }

    /// `vendor.com/class`, the spec's `kind`.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}", self.vendor, self.class, self.name)
    }
}

/// Splits and validates a `kind` into vendor and class.
pub fn parse_kind(kind: &str) -> Result<(String, String), String> {
    let (vendor, class) = kind
        .split_once('/')
        .ok_or_else(|| format!("kind {kind:?} is not of the form vendor.com/class"))?;
    validate_segment("vendor", vendor, "_-.")?;
    // Dots in the class are allowed from cdiVersion 0.6.0 (checked by the
    // spec's minimum-version rules, not here).
    validate_segment("class", class, "_-.")?;
    Ok((vendor.to_owned(), class.to_owned()))
}

/// Vendor and class: start with a letter, end with a letter or digit,
/// alphanumerics and `extra` between.
fn validate_segment(what: &str, s: &str, extra: &str) -> Result<(), String> {
    let first = s.chars().next().ok_or_else(|| format!("empty {what}"))?;
    if !first.is_ascii_alphabetic() {
        return Err(format!("{what} {s:?} must start with a letter"));
    }
    check_body(what, s, extra)
}

/// Device names may also start with a digit (`0`, from cdiVersion 0.5.0)
/// and contain `:` (MIG names like `0:1`).
pub fn validate_device_name(name: &str) -> Result<(), String> {
    let first = name.chars().next().ok_or("empty device name")?;
    if !first.is_ascii_alphanumeric() {
        return Err(format!("device name {name:?} must start with a letter or digit"));
    }
    check_body("device name", name, "_-.:")
}

fn check_body(what: &str, s: &str, extra: &str) -> Result<(), String> {
    if let Some(bad) = s.chars().find(|&c| !c.is_ascii_alphanumeric() && !extra.contains(c)) {
        return Err(format!("{what} {s:?} contains {bad:?}"));
    }
    if !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} {s:?} must end with a letter or digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualified_names() {
        let q = QualifiedName::parse("nvidia.com/gpu=all").unwrap();
        assert_eq!(
            (q.vendor.as_str(), q.class.as_str(), q.name.as_str()),
            ("nvidia.com", "gpu", "all")
        );
        assert_eq!(q.kind(), "nvidia.com/gpu");
        assert_eq!(q.to_string(), "nvidia.com/gpu=all");
        for ok in [
            "nvidia.com/gpu=0",
            "nvidia.com/gpu=GPU-1b2c-3d",
            "nvidia.com/gpu=1:0",
            "foo.bar.baz/foo-bar123.B_az=x",
        ] {
            QualifiedName::parse(ok).unwrap();
        }
    }

    #[test]
    fn rejects_malformed_names_saying_why() {
        for (bad, why) in [
            ("nvidia.com/gpu", "missing '='"),
            ("gpu=0", "vendor.com/class"),
            ("nvidia.com/=0", "empty class"),
            ("1vendor.com/gpu=0", "must start with a letter"),
            ("nvidia.com/gpu-=0", "must end with a letter or digit"),
            ("nvidia.com/gpu=", "empty device name"),
            ("nvidia.com/gpu=-a", "must start with a letter or digit"),
            ("nvidia.com/gpu=a b", "contains ' '"),
            ("vendor.com/foo/bar=x", "contains '/'"),
        ] {
            let err = QualifiedName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
    }
}
