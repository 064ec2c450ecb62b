//! Service `volumes:` short syntax, following compose-go's
//! `format.ParseVolume`, and the long-form mount types it expands into.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::Serialize;

use super::{is_false, lenient, SyntaxError};

/// What kind of mount a service volume is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    Bind,
    Volume,
    Tmpfs,
    Image,
    Npipe,
    Cluster,
}

/// The long form of one service volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: VolumeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, deserialize_with = "lenient::bool", skip_serializing_if = "is_false")]
    #[schemars(with = "lenient::BoolOrString")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageVolumeOptions>,
}

/// Options for `type: bind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    /// `shared`, `slave`, `private`, `rshared`, `rslave` or `rprivate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<lenient::BoolOrString>")]
    pub create_host_path: Option<bool>,
    /// `z` (shared) or `Z` (private) SELinux relabeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// Options for `type: volume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<lenient::BoolOrString>")]
    pub nocopy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// Options for `type: tmpfs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    /// Size in bytes; accepts an integer or a size string such as `"64m"`.
    #[serde(
        default,
        deserialize_with = "super::units::opt_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::units::ByteSize>")]
    pub size: Option<u64>,
    /// File mode; accepts an integer or an octal string such as `"1777"`.
    #[serde(default, deserialize_with = "opt_file_mode", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<lenient::IntOrString>")]
    pub mode: Option<u32>,
}

/// Options for `type: image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageVolumeOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// A file mode: integers are taken as-is, strings are octal. compose-go's
/// `FileMode` does the same, because `mode: "1777"` is how users write it
/// once YAML (1.2) no longer reads a leading `0` as octal.
struct FileMode(u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FileModeVisitor).map(FileMode)
    }
}

struct FileModeVisitor;

impl Visitor<'_> for FileModeVisitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a file mode as an integer or an octal string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::custom(format!("file mode {v} is out of range")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::custom(format!("file mode {v} is out of range")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        u32::from_str_radix(v.trim(), 8).map_err(|_| E::custom(format!("file mode {v:?} is not an octal number")))
    }
}

fn opt_file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(Option::<FileMode>::deserialize(d)?.map(|m| m.0))
}

fn volume_error(spec: &str, why: &str) -> SyntaxError {
    SyntaxError::new(format!("invalid volume {spec:?}: {why}"))
}

/// Parses one `volumes:` short-syntax entry: `target`, `source:target` or
/// `source:target:options`.
///
/// A lone target is an anonymous volume. A source starting with `.`, `/` or
/// `~` is a bind mount, anything else a named volume. Short-syntax binds get
/// `create_host_path: true` because legacy docker-compose created missing
/// host directories and compose keeps that behaviour for the short form
/// only. Unknown options are ignored, as compose-go does.
pub fn parse_volume(spec: &str) -> Result<ServiceVolume, SyntaxError> {
    if spec.is_empty() {
        return Err(volume_error(spec, "empty volume spec"));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(volume_error(spec, "empty section between colons"));
    }
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, options] => (Some(*source), *target, Some(*options)),
        _ => return Err(volume_error(spec, "too many colons")),
    };
    let mut volume = ServiceVolume {
        kind: source_kind(source),
        source: source.map(str::to_owned),
        target: clean_target(spec, target)?,
        read_only: false,
        consistency: None,
        bind: None,
        volume: None,
        tmpfs: None,
        image: None,
    };
    if volume.kind == VolumeType::Bind {
        volume.bind = Some(BindOptions {
            create_host_path: Some(true),
            ..BindOptions::default()
        });
    }
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        apply_option(&mut volume, option);
    }
    Ok(volume)
}

fn source_kind(source: Option<&str>) -> VolumeType {
    match source {
        Some(s) if s.starts_with(['.', '/', '~']) => VolumeType::Bind,
        _ => VolumeType::Volume,
    }
}

fn clean_target(spec: &str, target: &str) -> Result<String, SyntaxError> {
    if !target.starts_with('/') {
        return Err(volume_error(
            spec,
            &format!("target {target:?} is not an absolute path"),
        ));
    }
    Ok(clean_path(target))
}

/// Applies one short-syntax option. Like compose-go, bind options set on a
/// named volume (and `nocopy` on a bind) are recorded rather than rejected.
fn apply_option(volume: &mut ServiceVolume, option: &str) {
    match option {
        "ro" => volume.read_only = true,
        "rw" => volume.read_only = false,
        "nocopy" => volume.volume.get_or_insert_with(Default::default).nocopy = Some(true),
        "z" | "Z" => volume.bind.get_or_insert_with(Default::default).selinux = Some(option.to_owned()),
        "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" => {
            volume.bind.get_or_insert_with(Default::default).propagation = Some(option.to_owned())
        }
        _ => {}
    }
}

/// The identity of a service volume when merging compose files: entries
/// with the same target are the same mount, and the later file wins.
pub fn volume_key(v: &ServiceVolume) -> &str {
    &v.target
}

/// Lexically cleans a slash-separated path like Go's `path.Clean`: collapses
/// repeated slashes, removes `.` elements and resolves `..` against the
/// preceding element (`..` at the root stays at the root). The empty path
/// becomes `"."`.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for element in p.split('/') {
        match element {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(source: Option<&str>, target: &str) -> ServiceVolume {
        ServiceVolume {
            kind: VolumeType::Volume,
            source: source.map(str::to_owned),
            target: target.to_owned(),
            read_only: false,
            consistency: None,
            bind: None,
            volume: None,
            tmpfs: None,
            image: None,
        }
    }

    fn bind(source: &str, target: &str) -> ServiceVolume {
        ServiceVolume {
            kind: VolumeType::Bind,
            bind: Some(BindOptions {
                create_host_path: Some(true),
                ..BindOptions::default()
            }),
            ..named(Some(source), target)
        }
    }

    #[test]
    fn anonymous_volume() {
        assert_eq!(parse_volume("/data").unwrap(), named(None, "/data"));
        assert_eq!(parse_volume("/data/").unwrap(), named(None, "/data"));
    }

    #[test]
    fn named_volume() {
        assert_eq!(
            parse_volume("db:/var/lib/db").unwrap(),
            named(Some("db"), "/var/lib/db")
        );
    }

    #[test]
    fn bind_mounts() {
        for source in ["./data", "/srv/data", "~/data", "../data", "."] {
            let spec = format!("{source}:/data");
            assert_eq!(parse_volume(&spec).unwrap(), bind(source, "/data"));
        }
    }

    #[test]
    fn access_options() {
        let v = parse_volume("./a:/a:ro").unwrap();
        assert!(v.read_only);
        let v = parse_volume("./a:/a:ro,rw").unwrap();
        assert!(!v.read_only);
    }

    #[test]
    fn nocopy_option() {
        let v = parse_volume("db:/data:nocopy").unwrap();
        assert_eq!(
            v.volume,
            Some(VolumeOptions {
                nocopy: Some(true),
                subpath: None
            })
        );
    }

    #[test]
    fn selinux_and_propagation() {
        let v = parse_volume("./a:/a:ro,Z,rshared").unwrap();
        assert!(v.read_only);
        assert_eq!(
            v.bind,
            Some(BindOptions {
                propagation: Some("rshared".to_owned()),
                create_host_path: Some(true),
                selinux: Some("Z".to_owned()),
            })
        );
        let v = parse_volume("./a:/a:z").unwrap();
        assert_eq!(v.bind.and_then(|b| b.selinux).as_deref(), Some("z"));
        for prop in ["shared", "slave", "private", "rshared", "rslave", "rprivate"] {
            let v = parse_volume(&format!("/a:/a:{prop}")).unwrap();
            assert_eq!(v.bind.and_then(|b| b.propagation).as_deref(), Some(prop));
        }
    }

    #[test]
    fn unknown_options_are_ignored() {
        assert_eq!(
            parse_volume("db:/data:cached,bogus").unwrap(),
            named(Some("db"), "/data")
        );
    }

    #[test]
    fn target_is_cleaned() {
        assert_eq!(parse_volume("db:/a//b/../c/").unwrap().target, "/a/c");
        assert_eq!(parse_volume("db:/..").unwrap().target, "/");
    }

    #[test]
    fn errors_name_the_spec() {
        for (spec, why) in [
            ("", "empty volume spec"),
            ("data", "not an absolute path"),
            ("db:data", "not an absolute path"),
            ("a", "not an absolute path"),
            ("db::/data", "empty section"),
            ("db:/data:", "empty section"),
            (":/data", "empty section"),
            ("a:/b:ro:x", "too many colons"),
            ("é:ü", "not an absolute path"),
        ] {
            let err = parse_volume(spec).unwrap_err().message;
            assert!(err.starts_with(&format!("invalid volume {spec:?}: ")), "{err}");
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn key_is_target() {
        assert_eq!(volume_key(&parse_volume("db:/data/").unwrap()), "/data");
    }

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("/data/", "/data"),
            ("/a//b/../c", "/a/c"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("./a/./b", "a/b"),
            ("a/..", "."),
            ("/a/b/..", "/a"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }

    #[test]
    fn short_form_round_trips_through_json() {
        for spec in ["/data", "db:/data:nocopy,ro", "./a:/a:Z,rslave", "~/x:/x"] {
            let v = parse_volume(spec).unwrap();
            let value = serde_json::to_value(&v).unwrap();
            let back: ServiceVolume = serde_json::from_value(value).unwrap();
            assert_eq!(back, v, "{spec}");
        }
    }

    #[test]
    fn serializes_minimally() {
        let value = serde_json::to_value(parse_volume("./a:/a:ro").unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "type": "bind", "source": "./a", "target": "/a", "read_only": true,
                "bind": {"create_host_path": true}
            })
        );
        let value = serde_json::to_value(parse_volume("/data").unwrap()).unwrap();
        assert_eq!(value, json!({"type": "volume", "target": "/data"}));
    }

    #[test]
    fn long_form_accepts_strings_for_scalars() {
        let v: ServiceVolume = serde_json::from_value(json!({
            "type": "tmpfs", "target": "/tmp", "read_only": "true",
            "tmpfs": {"size": "64m", "mode": "1777"}
        }))
        .unwrap();
        assert!(v.read_only);
        assert_eq!(
            v.tmpfs,
            Some(TmpfsOptions {
                size: Some(64 << 20),
                mode: Some(0o1777)
            })
        );
        let v: ServiceVolume = serde_json::from_value(json!({
            "type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024, "mode": 1023}
        }))
        .unwrap();
        assert_eq!(v.tmpfs.and_then(|t| t.mode), Some(0o1777));
        let v: ServiceVolume = serde_json::from_value(json!({
            "type": "bind", "source": "/a", "target": "/b", "consistency": "cached",
            "bind": {"create_host_path": "false", "propagation": "rprivate", "selinux": "z"}
        }))
        .unwrap();
        assert_eq!(v.bind.and_then(|b| b.create_host_path), Some(false));
        let v: ServiceVolume = serde_json::from_value(json!({
            "type": "image", "source": "alpine", "target": "/img",
            "image": {"subpath": "etc"}, "volume": {"nocopy": "yes", "subpath": "x"}
        }))
        .unwrap();
        assert_eq!(v.kind, VolumeType::Image);
        assert_eq!(v.volume.and_then(|o| o.nocopy), Some(true));
    }

    #[test]
    fn long_form_rejects_bad_input() {
        for value in [
            json!({"type": "volume", "target": "/a", "bogus": 1}),
            json!({"type": "nfs", "target": "/a"}),
            json!({"type": "volume"}),
            json!({"type": "tmpfs", "target": "/t", "tmpfs": {"mode": "999"}}),
            json!({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "big"}}),
            json!({"type": "bind", "target": "/t", "bind": {"create_host_path": "maybe"}}),
        ] {
            assert!(
                serde_json::from_value::<ServiceVolume>(value.clone()).is_err(),
                "{value}"
            );
        }
    }

    #[test]
    fn schema_admits_strings_for_scalars() {
        let schema = serde_json::to_value(schemars::schema_for!(ServiceVolume)).unwrap();
        assert_eq!(schema["properties"]["read_only"]["type"], json!(["boolean", "string"]));
        let mut required = schema["required"].as_array().cloned().unwrap_or_default();
        required.sort_by_key(|v| v.to_string());
        assert_eq!(required, vec![json!("target"), json!("type")]);
    }
}
