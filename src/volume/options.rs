//! What the `local` driver's options mean, and volume names. Pure.
//!
//! As docker's local driver: no options is a directory under the root;
//! `type=none,o=bind,device=/path` binds a host directory;
//! `type=tmpfs[,o=size=…]` is a tmpfs; any other `type=` mounts `device`
//! as that filesystem. berth mounts these in the container's mount
//! namespace at start, never on the host (`runtime::volume_mount`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// How a volume is mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalMount {
    /// The volume's own `_data` directory, bound.
    Directory,
    /// A host directory, bound (`type=none,o=bind,device=…`).
    Bind { device: PathBuf, read_only: bool },
    /// A filesystem of its own (`type=tmpfs`, `type=ext4,device=/dev/…`).
    Filesystem {
        fstype: String,
        device: String,
        data: Vec<String>,
        read_only: bool,
    },
}

/// docker's rule for local volume names.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`: at least two characters, so no name is
/// ever a path, `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Validates `driver_opts` of the local driver (at `volume create`, so a
/// mistake surfaces before any container uses the volume).
pub fn parse(opts: &BTreeMap<String, String>) -> Result<LocalMount, String> {
    if let Some(key) = opts.keys().find(|k| !matches!(k.as_str(), "type" | "o" | "device")) {
        return Err(format!(
            "invalid option key {key:?}: the local driver takes type, o and device"
        ));
    }
    let Some(fstype) = opts.get("type").filter(|t| !t.is_empty()) else {
        return if opts.is_empty() {
            Ok(LocalMount::Directory)
        } else {
            Err("missing required option \"type\"".into())
        };
    };
    let mut read_only = false;
    let mut bind = false;
    let mut data = Vec::new();
    for o in opts.get("o").map(String::as_str).unwrap_or("").split(',') {
        match o {
            "" | "rw" => {}
            "ro" => read_only = true,
            "bind" | "rbind" => bind = true,
            other => data.push(other.to_string()),
        }
    }
    let device = opts.get("device").filter(|d| !d.is_empty());
    if fstype == "none" {
        if !bind {
            return Err("type=none needs o=bind".into());
        }
        if let Some(extra) = data.first() {
            return Err(format!("unsupported option {extra:?} for a bind volume (ro, rw, bind)"));
        }
        let device = device.ok_or("missing required option \"device\" (the host directory to bind)")?;
        if !device.starts_with('/') {
            return Err(format!("device {device:?} must be an absolute host path"));
        }
        return Ok(LocalMount::Bind {
            device: PathBuf::from(device),
            read_only,
        });
    }
    if bind {
        return Err(format!("o=bind needs type=none, not type={fstype}"));
    }
    let device = match device {
        Some(d) => d.clone(),
        None if fstype == "tmpfs" => "tmpfs".into(),
        None => return Err(format!("missing required option \"device\" for type={fstype}")),
    };
    Ok(LocalMount::Filesystem {
        fstype: fstype.clone(),
        device,
        data,
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names_follow_docker() {
        for ok in ["db", "my-vol_1.x", "0a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-x", ".x", "a/b", "..", "a b", "ünï"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn local_driver_options() {
        assert_eq!(parse(&opts(&[])).unwrap(), LocalMount::Directory);
        assert_eq!(
            parse(&opts(&[("type", "tmpfs"), ("o", "size=1m,ro")])).unwrap(),
            LocalMount::Filesystem {
                fstype: "tmpfs".into(),
                device: "tmpfs".into(),
                data: vec!["size=1m".into()],
                read_only: true
            }
        );
        assert_eq!(
            parse(&opts(&[("type", "none"), ("o", "bind"), ("device", "/srv")])).unwrap(),
            LocalMount::Bind {
                device: "/srv".into(),
                read_only: false
            }
        );
        assert!(matches!(
            parse(&opts(&[("type", "ext4"), ("device", "/dev/vdb")])).unwrap(),
            LocalMount::Filesystem { ref fstype, .. } if fstype == "ext4"
        ));
        for (bad, why) in [
            (opts(&[("size", "1m")]), "invalid option key"),
            (opts(&[("o", "size=1m")]), "missing required option \"type\""),
            (opts(&[("type", "none"), ("device", "/srv")]), "o=bind"),
            (opts(&[("type", "none"), ("o", "bind")]), "device"),
            (opts(&[("type", "none"), ("o", "bind"), ("device", "srv")]), "absolute"),
            (opts(&[("type", "ext4")]), "device"),
            (opts(&[("type", "tmpfs"), ("o", "bind")]), "type=none"),
        ] {
            let err = parse(&bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
