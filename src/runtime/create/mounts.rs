//! `-v`, `--tmpfs` and the image's `VOLUME`s to [`MountSpec`]s: host
//! binds, named and anonymous volumes, tmpfs.
//!
//! Volumes live outside the runtime (`crate::volume`), and `build` stays
//! pure: the caller asks [`volume_requests`] which volumes are needed,
//! looks up or creates each, and hands the answers back in
//! `CreateOptions::volume_sources`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{invalid, CreateError, CreateOptions, ImageInfo};
use crate::runtime::config::{MountKind, MountSpec};

/// A volume `build` needs resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum VolumeRequest {
    /// `-v NAME:/path`: looked up, or created with default options.
    Named(String),
    /// `-v /path`, or an image `VOLUME` nothing else is mounted on: a new
    /// volume with a random name, removed with the container by `rm -v`.
    Anonymous { target: String },
}

/// How the caller resolved a volume: what to mount in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSource {
    pub name: String,
    /// The volume's directory, a host directory (`o=bind`) or a device.
    pub source: PathBuf,
    /// `None`: bind `source`; otherwise mount it as this filesystem.
    pub fstype: Option<String>,
    /// Mount data (`o=` of the local driver).
    pub options: Vec<String>,
    /// The volume's own options say `ro`.
    pub read_only: bool,
}

/// Where a `-v` mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Host(PathBuf),
    Named(String),
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct VolumeFlag {
    origin: Origin,
    target: String,
    read_only: bool,
    no_copy: bool,
}

/// `[SOURCE:]TARGET[:ro|rw|nocopy,…]`; a source that is not an absolute
/// path names a volume (the volume store checks the name).
fn parse_volume(spec: &str) -> Result<VolumeFlag, CreateError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (origin, target, mode) = match parts.as_slice() {
        [t] => (Origin::Anonymous, *t, ""),
        [s, t] if !t.starts_with('/') && s.starts_with('/') => (Origin::Anonymous, *s, *t),
        [s, t] => (origin(s), *t, ""),
        [s, t, m] => (origin(s), *t, *m),
        _ => return Err(invalid("volume", spec, "expected [SOURCE:]TARGET[:ro|rw|nocopy]")),
    };
    if let Origin::Named(name) = &origin {
        if name.is_empty() {
            return Err(invalid("volume", spec, "the source is empty"));
        }
    }
    if !target.starts_with('/') {
        return Err(invalid("volume", spec, "the target must be an absolute path"));
    }
    let (mut read_only, mut no_copy) = (false, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" if !matches!(origin, Origin::Host(_)) => no_copy = true,
            other => return Err(invalid("volume", spec, format!("unknown mode {other:?}"))),
        }
    }
    Ok(VolumeFlag {
        origin,
        target: normalize(target),
        read_only,
        no_copy,
    })
}

fn origin(source: &str) -> Origin {
    if source.starts_with('/') {
        Origin::Host(PathBuf::from(source))
    } else {
        Origin::Named(source.to_string())
    }
}

/// `/data/` and `/data` are the same mount point.
fn normalize(target: &str) -> String {
    let trimmed = target.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

fn tmpfs_targets(options: &CreateOptions) -> impl Iterator<Item = String> + '_ {
    options
        .tmpfs
        .iter()
        .map(|t| normalize(t.split_once(':').map_or(t.as_str(), |(target, _)| target)))
}

/// The volumes `build` will need, in the order it mounts them.
pub fn volume_requests(options: &CreateOptions, image: &ImageInfo) -> Result<Vec<VolumeRequest>, CreateError> {
    let mut requests = Vec::new();
    let mut targets: BTreeSet<String> = tmpfs_targets(options).collect();
    for spec in &options.volumes {
        let flag = parse_volume(spec)?;
        match flag.origin {
            Origin::Host(_) => {}
            Origin::Named(name) => requests.push(VolumeRequest::Named(name)),
            Origin::Anonymous => requests.push(VolumeRequest::Anonymous {
                target: flag.target.clone(),
            }),
        }
        targets.insert(flag.target);
    }
    for target in &image.volumes {
        let target = normalize(target);
        if targets.insert(target.clone()) {
            requests.push(VolumeRequest::Anonymous { target });
        }
    }
    requests.dedup();
    Ok(requests)
}

pub(super) fn mounts(options: &CreateOptions, image: &ImageInfo) -> Result<Vec<MountSpec>, CreateError> {
    let sources = &options.volume_sources;
    let resolved = |request: VolumeRequest, spec: &str| {
        sources
            .get(&request)
            .ok_or_else(|| invalid("volume", spec, "the volume was not resolved before create"))
    };
    let mut mounts = Vec::new();
    for spec in &options.volumes {
        let flag = parse_volume(spec)?;
        let mount = match flag.origin.clone() {
            Origin::Host(source) => MountSpec {
                kind: MountKind::Bind,
                source: Some(source),
                target: flag.target,
                read_only: flag.read_only,
                options: Vec::new(),
                volume: None,
                fstype: None,
                no_copy: false,
            },
            Origin::Named(name) => volume_mount(resolved(VolumeRequest::Named(name), spec)?, flag),
            Origin::Anonymous => {
                let request = VolumeRequest::Anonymous {
                    target: flag.target.clone(),
                };
                volume_mount(resolved(request, spec)?, flag)
            }
        };
        mounts.push(mount);
    }
    for t in &options.tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t, ""));
        if !target.starts_with('/') {
            return Err(invalid("tmpfs", t, "the target must be an absolute path"));
        }
        let mut read_only = false;
        let mut kept = Vec::new();
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => read_only = true,
                "rw" => {}
                _ => kept.push(o.to_string()),
            }
        }
        mounts.push(MountSpec {
            kind: MountKind::Tmpfs,
            source: None,
            target: normalize(target),
            read_only,
            options: kept,
            volume: None,
            fstype: None,
            no_copy: false,
        });
    }
    let mut seen = BTreeMap::new();
    for m in &mounts {
        if seen.insert(m.target.clone(), ()).is_some() {
            return Err(invalid("volume", &m.target, "duplicate mount point"));
        }
    }
    // Image VOLUMEs nothing else covers get their anonymous volume.
    for target in &image.volumes {
        let target = normalize(target);
        if seen.insert(target.clone(), ()).is_none() {
            let request = VolumeRequest::Anonymous { target: target.clone() };
            let flag = VolumeFlag {
                origin: Origin::Anonymous,
                target,
                read_only: false,
                no_copy: false,
            };
            mounts.push(volume_mount(resolved(request, &flag.target)?, flag));
        }
    }
    Ok(mounts)
}

fn volume_mount(source: &VolumeSource, flag: VolumeFlag) -> MountSpec {
    MountSpec {
        kind: MountKind::Volume,
        source: Some(source.source.clone()),
        target: flag.target,
        read_only: flag.read_only || source.read_only,
        options: source.options.clone(),
        volume: Some(source.name.clone()),
        fstype: source.fstype.clone(),
        no_copy: flag.no_copy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str) -> VolumeSource {
        VolumeSource {
            name: name.into(),
            source: PathBuf::from(format!("/r/volumes/{name}/_data")),
            fstype: None,
            options: Vec::new(),
            read_only: false,
        }
    }

    #[test]
    fn volume_flags_parse() {
        let f = parse_volume("/srv:/data:ro").unwrap();
        assert_eq!(f.origin, Origin::Host("/srv".into()));
        assert!(f.read_only);
        let f = parse_volume("db:/var/lib/db/:ro,nocopy").unwrap();
        assert_eq!(f.origin, Origin::Named("db".into()));
        assert_eq!(f.target, "/var/lib/db");
        assert!(f.read_only && f.no_copy);
        assert_eq!(parse_volume("/cache").unwrap().origin, Origin::Anonymous);
        assert!(parse_volume("/cache:ro").unwrap().read_only);
        assert!(parse_volume("db:data").is_err(), "relative target");
        assert!(parse_volume("db:/d:rx").is_err());
        assert!(parse_volume("/h:/d:nocopy").is_err(), "nocopy is for volumes");
        assert!(parse_volume("a:b:c:d").is_err());
    }

    #[test]
    fn requests_cover_named_anonymous_and_image_volumes() {
        let options = CreateOptions {
            volumes: vec!["db:/db".into(), "/cache".into(), "/srv:/srv".into()],
            tmpfs: vec!["/run:size=1m".into()],
            ..Default::default()
        };
        let image = ImageInfo {
            volumes: vec!["/db".into(), "/run".into(), "/logs/".into()],
            ..Default::default()
        };
        assert_eq!(
            volume_requests(&options, &image).unwrap(),
            vec![
                VolumeRequest::Named("db".into()),
                VolumeRequest::Anonymous {
                    target: "/cache".into()
                },
                VolumeRequest::Anonymous { target: "/logs".into() },
            ]
        );
    }

    #[test]
    fn resolved_volumes_become_volume_mounts() {
        let mut sources = BTreeMap::new();
        sources.insert(VolumeRequest::Named("db".into()), source("db"));
        sources.insert(VolumeRequest::Anonymous { target: "/logs".into() }, source("f00"));
        let mut tmp = source("t");
        tmp.fstype = Some("tmpfs".into());
        tmp.options = vec!["size=1m".into()];
        tmp.read_only = true;
        sources.insert(VolumeRequest::Named("t".into()), tmp);
        let options = CreateOptions {
            volumes: vec!["db:/db:nocopy".into(), "t:/t".into()],
            volume_sources: sources,
            ..Default::default()
        };
        let image = ImageInfo {
            volumes: vec!["/logs".into()],
            ..Default::default()
        };
        let m = mounts(&options, &image).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].kind, MountKind::Volume);
        assert_eq!(m[0].source, Some(PathBuf::from("/r/volumes/db/_data")));
        assert_eq!(m[0].volume.as_deref(), Some("db"));
        assert!(m[0].no_copy && !m[0].read_only);
        assert_eq!(m[1].fstype.as_deref(), Some("tmpfs"));
        assert_eq!(m[1].options, vec!["size=1m"]);
        assert!(m[1].read_only, "the volume's own ro applies");
        assert_eq!((m[2].target.as_str(), m[2].volume.as_deref()), ("/logs", Some("f00")));

        let unresolved = CreateOptions {
            volumes: vec!["other:/o".into()],
            ..Default::default()
        };
        assert!(mounts(&unresolved, &ImageInfo::default()).is_err());
        let duplicate = CreateOptions {
            volumes: vec!["/a:/x".into(), "/b:/x/".into()],
            ..Default::default()
        };
        assert!(mounts(&duplicate, &ImageInfo::default())
            .unwrap_err()
            .to_string()
            .contains("duplicate mount point"));
    }
}
