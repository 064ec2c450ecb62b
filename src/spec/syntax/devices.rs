//! Service `devices:` entries: host device mappings
//! (`"/dev/foo:/dev/bar:rw"`) and CDI device names (`"vendor.com/gpu=0"`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::SyntaxError;

/// A host device exposed to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceMapping {
    pub source: String,
    /// Path inside the container; defaults to `source`.
    pub target: String,
    /// cgroup permissions, a subset of `rwm`; defaults to `"rwm"`.
    pub permissions: String,
}

/// The long form as written, before `target` and `permissions` defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviceMapping {
    source: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    permissions: Option<String>,
}

impl<'de> Deserialize<'de> for DeviceMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawDeviceMapping::deserialize(d)?;
        let mapping = DeviceMapping {
            target: raw.target.unwrap_or_else(|| raw.source.clone()),
            source: raw.source,
            permissions: raw.permissions.unwrap_or_else(default_permissions),
        };
        validate_mapping(&mapping).map_err(de::Error::custom)?;
        Ok(mapping)
    }
}

fn default_permissions() -> String {
    "rwm".to_owned()
}

/// One `devices:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEntry {
    Path(DeviceMapping),
    /// A Container Device Interface name, `<vendor>/<class>=<name>`.
    Cdi(String),
}

fn device_error(spec: &str, why: &str) -> SyntaxError {
    SyntaxError::new(format!("invalid device {spec:?}: {why}"))
}

/// Parses one `devices:` short-syntax entry.
///
/// Forms: `/dev/foo` (same path in the container, permissions `rwm`),
/// `/dev/foo:/dev/bar`, `/dev/foo:/dev/bar:rw`, `/dev/foo:rw`, and CDI names
/// such as `nvidia.com/gpu=all`. In the two-part form the second part is
/// read as permissions when it consists only of `r`, `w` and `m`, which is
/// unambiguous because a container path must be absolute.
pub fn parse_device(spec: &str) -> Result<DeviceEntry, SyntaxError> {
    if !spec.starts_with('/') {
        return if is_cdi_name(spec) {
            Ok(DeviceEntry::Cdi(spec.to_owned()))
        } else {
            Err(device_error(
                spec,
                "expected an absolute device path or a CDI name like \"vendor.com/class=name\"",
            ))
        };
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, permissions) = match parts.as_slice() {
        [source] => (*source, *source, "rwm"),
        [source, perms] if is_permission_chars(perms) => (*source, *source, *perms),
        [source, target] => (*source, *target, "rwm"),
        [source, target, perms] => (*source, *target, *perms),
        _ => return Err(device_error(spec, "too many colons")),
    };
    let mapping = DeviceMapping {
        source: source.to_owned(),
        target: target.to_owned(),
        permissions: permissions.to_owned(),
    };
    validate_mapping(&mapping).map_err(|why| device_error(spec, &why))?;
    Ok(DeviceEntry::Path(mapping))
}

fn is_permission_chars(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
}

fn validate_mapping(m: &DeviceMapping) -> Result<(), String> {
    for (what, path) in [("source", &m.source), ("target", &m.target)] {
        if !path.starts_with('/') {
            return Err(format!("{what} {path:?} is not an absolute path"));
        }
    }
    validate_permissions(&m.permissions)
}

/// Permissions are cgroup device rules: a non-empty subset of `rwm`.
fn validate_permissions(perms: &str) -> Result<(), String> {
    let mut seen = [false; 3];
    for c in perms.chars() {
        let slot = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return Err(format!("permissions {perms:?} may only contain r, w and m")),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(format!("permissions {perms:?} repeat {c:?}"));
        }
    }
    if perms.is_empty() {
        return Err("permissions are empty".to_owned());
    }
    Ok(())
}

/// Whether `s` is a fully-qualified CDI device name,
/// `<vendor>/<class>=<name>`, where the vendor is a domain
/// (`[a-z0-9.-]+` containing a dot), the class `[a-zA-Z0-9_.-]+` and the
/// name `[a-zA-Z0-9_.:-]+`.
pub fn is_cdi_name(s: &str) -> bool {
    let Some((vendor, rest)) = s.split_once('/') else {
        return false;
    };
    let Some((class, name)) = rest.split_once('=') else {
        return false;
    };
    let vendor_ok = vendor.contains('.')
        && all_nonempty(vendor, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
        });
    let class_ok = all_nonempty(class, |c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let name_ok = all_nonempty(name, |c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    vendor_ok && class_ok && name_ok
}

fn all_nonempty(s: &str, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(ok)
}

/// Path entries print as the long mapping, CDI names as plain strings.
impl Serialize for DeviceEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceEntry::Path(mapping) => mapping.serialize(s),
            DeviceEntry::Cdi(name) => s.serialize_str(name),
        }
    }
}

/// Accepts any short-syntax string (via [`parse_device`]) or the long
/// mapping `{source, target?, permissions?}`.
impl<'de> Deserialize<'de> for DeviceEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DeviceEntryVisitor)
    }
}

struct DeviceEntryVisitor;

impl<'de> Visitor<'de> for DeviceEntryVisitor {
    type Value = DeviceEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a device string or a mapping with source, target and permissions")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceEntry, E> {
        parse_device(v).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DeviceEntry, A::Error> {
        DeviceMapping::deserialize(de::value::MapAccessDeserializer::new(map)).map(DeviceEntry::Path)
    }
}

impl schemars::JsonSchema for DeviceEntry {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("DeviceEntry")
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [{ "type": "string" }, generator.subschema_for::<DeviceMapping>()]
        })
    }
}

/// Hand-written because `target` and `permissions` are optional on input
/// (see the manual `Deserialize`) though always present on output.
impl schemars::JsonSchema for DeviceMapping {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("DeviceMapping")
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "source": { "type": "string" },
                "target": { "type": "string" },
                "permissions": { "type": "string", "default": "rwm" }
            },
            "required": ["source"],
            "additionalProperties": false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(source: &str, target: &str, permissions: &str) -> DeviceEntry {
        DeviceEntry::Path(DeviceMapping {
            source: source.to_owned(),
            target: target.to_owned(),
            permissions: permissions.to_owned(),
        })
    }

    #[test]
    fn short_forms() {
        assert_eq!(parse_device("/dev/foo").unwrap(), path("/dev/foo", "/dev/foo", "rwm"));
        assert_eq!(
            parse_device("/dev/foo:/dev/bar").unwrap(),
            path("/dev/foo", "/dev/bar", "rwm")
        );
        assert_eq!(
            parse_device("/dev/foo:/dev/bar:rw").unwrap(),
            path("/dev/foo", "/dev/bar", "rw")
        );
        assert_eq!(
            parse_device("/dev/foo:rwm").unwrap(),
            path("/dev/foo", "/dev/foo", "rwm")
        );
        assert_eq!(parse_device("/dev/foo:r").unwrap(), path("/dev/foo", "/dev/foo", "r"));
    }

    #[test]
    fn cdi_names() {
        for name in [
            "nvidia.com/gpu=all",
            "nvidia.com/gpu=0",
            "vendor.example-1.com/class_x.y-z=name:with:colons",
        ] {
            assert_eq!(parse_device(name).unwrap(), DeviceEntry::Cdi(name.to_owned()));
        }
    }

    #[test]
    fn errors_name_the_spec() {
        for (spec, why) in [
            ("", "expected an absolute device path"),
            ("dev/foo", "expected an absolute device path"),
            ("nvidia/gpu=0", "expected an absolute device path"),
            ("Nvidia.com/gpu=0", "expected an absolute device path"),
            ("nvidia.com/gpu=", "expected an absolute device path"),
            ("nvidia.com/g pu=0", "expected an absolute device path"),
            ("/dev/foo:dev/bar", "target \"dev/bar\" is not an absolute path"),
            ("/dev/foo:/dev/bar:rx", "may only contain r, w and m"),
            ("/dev/foo:/dev/bar:rr", "repeat 'r'"),
            ("/dev/foo:/dev/bar:", "permissions are empty"),
            ("/dev/foo:", "target \"\" is not an absolute path"),
            ("/a:/b:rw:x", "too many colons"),
            ("/dev/é:ü", "not an absolute path"),
        ] {
            let err = parse_device(spec).unwrap_err().message;
            assert!(err.starts_with(&format!("invalid device {spec:?}: ")), "{err}");
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn serializes_untagged() {
        assert_eq!(
            serde_json::to_value(parse_device("/dev/foo:rw").unwrap()).unwrap(),
            json!({"source": "/dev/foo", "target": "/dev/foo", "permissions": "rw"})
        );
        assert_eq!(
            serde_json::to_value(parse_device("nvidia.com/gpu=all").unwrap()).unwrap(),
            json!("nvidia.com/gpu=all")
        );
    }

    #[test]
    fn round_trips_through_json() {
        for spec in ["/dev/foo", "/dev/foo:/dev/bar:rw", "nvidia.com/gpu=all"] {
            let entry = parse_device(spec).unwrap();
            let value = serde_json::to_value(&entry).unwrap();
            let back: DeviceEntry = serde_json::from_value(value).unwrap();
            assert_eq!(back, entry);
        }
    }

    #[test]
    fn deserializes_short_and_long_forms() {
        let short: DeviceEntry = serde_json::from_value(json!("/dev/foo:/dev/bar")).unwrap();
        let long: DeviceEntry = serde_json::from_value(json!({"source": "/dev/foo", "target": "/dev/bar"})).unwrap();
        assert_eq!(short, long);
        let minimal: DeviceEntry = serde_json::from_value(json!({"source": "/dev/foo"})).unwrap();
        assert_eq!(minimal, path("/dev/foo", "/dev/foo", "rwm"));
    }

    #[test]
    fn long_form_is_validated() {
        for value in [
            json!({"source": "/dev/foo", "permissions": "x"}),
            json!({"source": "dev/foo"}),
            json!({"target": "/dev/foo"}),
            json!({"source": "/dev/foo", "extra": 1}),
            json!("nope"),
            json!(3),
        ] {
            assert!(serde_json::from_value::<DeviceEntry>(value.clone()).is_err(), "{value}");
        }
        let err = serde_json::from_value::<DeviceEntry>(json!("/dev/a:/b:rr")).unwrap_err();
        assert!(err.to_string().contains("\"/dev/a:/b:rr\""), "{err}");
    }

    #[test]
    fn schema_is_one_of_string_or_mapping() {
        let schema = serde_json::to_value(schemars::schema_for!(DeviceEntry)).unwrap();
        assert_eq!(schema["oneOf"][0], json!({"type": "string"}));
    }
}
