//! compose `volumes_from`: a container gets the mounts of another one.
//!
//! An entry is `SERVICE[:ro|:rw]` or `container:NAME[:ro|:rw]`. The
//! container gets every volume and bind mount of the source at the same
//! targets — the source's own volumes, not copies: an anonymous volume of
//! the source is mounted by its name — read-only with `:ro`, else with the
//! source's mode (docker's `volumes-from`: `RW = source RW && mode != ro`).
//! tmpfs mounts are not shared. Of a service with several replicas, the
//! first (the lowest number) is the source, as compose takes
//! `<project>-<service>-1`. The container's own mounts win at a target
//! both have, as docker mounts its binds over what `volumes-from` gave.
//!
//! Pure: the apply layer lists the containers and hands them in.

use std::collections::BTreeSet;

use super::labels;
use crate::runtime::config::{ContainerConfig, MountKind, MountSpec};

/// Where the mounts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A service of the same project: its first replica.
    Service(String),
    /// A container by name (`container:NAME`), of any project or none.
    Container(String),
}

/// One parsed `volumes_from` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumesFrom {
    /// The entry as written, for messages.
    pub entry: String,
    pub source: Source,
    /// `:ro`: every shared mount read-only.
    pub read_only: bool,
}

/// Parses `SERVICE[:MODE]` or `container:NAME[:MODE]`, MODE `ro` or `rw`;
/// the error says what is wrong with the entry.
pub fn parse(entry: &str) -> Result<VolumesFrom, String> {
    let (container, rest) = match entry.strip_prefix("container:") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let (name, mode) = match rest.split_once(':') {
        Some((name, mode)) => (name, Some(mode)),
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(format!("no {} name", if container { "container" } else { "service" }));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(format!("unknown mode {other:?} (ro or rw)")),
    };
    let source = if container {
        Source::Container(name.to_string())
    } else {
        Source::Service(name.to_string())
    };
    Ok(VolumesFrom {
        entry: entry.to_string(),
        source,
        read_only,
    })
}

/// The source container of `entry` among `containers`: the named one, or
/// the lowest-numbered replica (not a one-off) of the service in `project`.
pub fn source_container<'a>(
    containers: &[&'a ContainerConfig],
    project: &str,
    entry: &VolumesFrom,
) -> Option<&'a ContainerConfig> {
    match &entry.source {
        Source::Container(name) => containers.iter().copied().find(|c| c.name == *name),
        Source::Service(service) => containers
            .iter()
            .copied()
            .filter(|c| {
                let l = &c.labels;
                l.get(labels::PROJECT).map(String::as_str) == Some(project)
                    && l.get(labels::SERVICE) == Some(service)
                    && l.get(labels::ONEOFF).map(String::as_str) != Some("True")
            })
            .min_by_key(|c| {
                c.labels
                    .get(labels::NUMBER)
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            }),
    }
}

/// The `-v` specs that give a container the source's volume and bind
/// mounts (tmpfs left out). Volumes are not filled from the new
/// container's image (`nocopy`): they hold the source's data already.
///
/// # Errors
///
/// A bind source with a `:` in its path, which a `-v` spec cannot carry.
pub fn shared_mounts(mounts: &[MountSpec], read_only: bool) -> Result<Vec<String>, String> {
    let mut specs = Vec::new();
    for mount in mounts {
        let ro = read_only || mount.read_only;
        let spec = match (mount.kind, &mount.volume, &mount.source) {
            (MountKind::Tmpfs, _, _) => continue,
            (MountKind::Volume, Some(volume), _) => {
                let mode = if ro { "ro,nocopy" } else { "nocopy" };
                format!("{volume}:{}:{mode}", mount.target)
            }
            (MountKind::Bind | MountKind::Volume, _, Some(source)) => {
                let source = source.to_string_lossy();
                if source.contains(':') {
                    return Err(format!(
                        "the bind mount {source} at {} has a ':' in its path",
                        mount.target
                    ));
                }
                let mode = if ro { ":ro" } else { "" };
                format!("{source}:{}{mode}", mount.target)
            }
            (MountKind::Bind | MountKind::Volume, _, None) => continue,
        };
        specs.push(spec);
    }
    Ok(specs)
}

/// Adds `shared` specs to a container's `-v` list, leaving out targets it
/// mounts itself (its own volumes and tmpfs, or an earlier entry's).
pub fn add_shared(volumes: &mut Vec<String>, tmpfs: &[String], shared: Vec<String>) {
    let mut taken: BTreeSet<String> = volumes.iter().map(|v| normalize(volume_target(v))).collect();
    taken.extend(
        tmpfs
            .iter()
            .map(|t| normalize(t.split_once(':').map_or(t.as_str(), |(target, _)| target))),
    );
    for spec in shared {
        if taken.insert(normalize(volume_target(&spec))) {
            volumes.push(spec);
        }
    }
}

/// The target of a `-v` spec (`SRC:TARGET[:MODE]`, `TARGET[:MODE]` or
/// `TARGET`).
pub fn volume_target(spec: &str) -> &str {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [target] => target,
        [first, second, ..] if second.starts_with('/') || !first.starts_with('/') => second,
        [first, ..] => first,
        [] => "",
    }
}

fn normalize(target: &str) -> String {
    match target.trim_end_matches('/') {
        "" => "/".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn mount(kind: MountKind, source: Option<&str>, target: &str, read_only: bool, volume: Option<&str>) -> MountSpec {
        MountSpec {
            kind,
            source: source.map(PathBuf::from),
            target: target.into(),
            read_only,
            options: Vec::new(),
            volume: volume.map(str::to_string),
            fstype: None,
            no_copy: false,
        }
    }

    fn config(name: &str, labels: &[(&str, &str)]) -> ContainerConfig {
        let json = serde_json::json!({
            "id": format!("id-{name}"), "name": name, "image": "busybox", "image_id": "x", "layers": [],
            "args": ["sh"], "env": [], "working_dir": "/", "user": "", "group_add": [],
            "hostname": name, "domainname": null, "mounts": [], "devices": [],
            "resources": crate::runtime::cgroups::Resources::default(), "capabilities": [], "privileged": false,
            "read_only": false, "no_new_privileges": false, "seccomp": "default", "rlimits": [], "sysctls": {},
            "shm_size": 0, "init": false, "tty": false, "interactive": false,
            "stop_signal": "SIGTERM", "stop_timeout": 10, "network": "none",
            "auto_remove": false, "labels": {}, "log_max_size": 0, "log_max_files": 1,
            "created": "now",
        });
        let mut c: ContainerConfig = serde_json::from_value(json).unwrap();
        c.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c
    }

    #[test]
    fn entries_name_a_service_or_a_container_with_a_mode() {
        let service = |name: &str, read_only| VolumesFrom {
            entry: String::new(),
            source: Source::Service(name.into()),
            read_only,
        };
        let parsed = |e: &str| VolumesFrom {
            entry: String::new(),
            ..parse(e).unwrap()
        };
        assert_eq!(parsed("db"), service("db", false));
        assert_eq!(parsed("db:ro"), service("db", true));
        assert_eq!(parsed("db:rw"), service("db", false));
        assert_eq!(
            parse("container:data:ro").unwrap().source,
            Source::Container("data".into())
        );
        assert!(parse("container:data:ro").unwrap().read_only);
        assert!(!parse("container:data").unwrap().read_only);
        assert_eq!(parse("db:ro").unwrap().entry, "db:ro");
        assert!(parse("db:rx").unwrap_err().contains("\"rx\""));
        assert!(parse("container:").unwrap_err().contains("container name"));
        assert!(parse("").unwrap_err().contains("service name"));
    }

    #[test]
    fn a_service_source_is_its_first_replica_of_this_project() {
        let project = |p: &str, s: &str, n: &str, oneoff: &str| {
            vec![
                (labels::PROJECT, p.to_string()),
                (labels::SERVICE, s.to_string()),
                (labels::NUMBER, n.to_string()),
                (labels::ONEOFF, oneoff.to_string()),
            ]
        };
        let make = |name: &str, l: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            config(name, &pairs)
        };
        let all = [
            make("demo-db-2", project("demo", "db", "2", "False")),
            make("demo-db-run-1", project("demo", "db", "1", "True")),
            make("other-db-1", project("other", "db", "1", "False")),
            make("demo-db-1", project("demo", "db", "1", "False")),
            config("plain", &[]),
        ];
        let refs: Vec<&ContainerConfig> = all.iter().collect();
        let find = |entry: &str| source_container(&refs, "demo", &parse(entry).unwrap()).map(|c| c.name.clone());
        assert_eq!(find("db").as_deref(), Some("demo-db-1"));
        assert_eq!(find("web"), None);
        assert_eq!(find("container:plain:ro").as_deref(), Some("plain"));
        assert_eq!(find("container:other-db-1").as_deref(), Some("other-db-1"));
        assert_eq!(find("container:nosuch"), None);
    }

    #[test]
    fn volumes_and_binds_are_shared_at_their_targets_tmpfs_is_not() {
        let mounts = [
            mount(
                MountKind::Volume,
                Some("/r/volumes/demo_data/_data"),
                "/data",
                false,
                Some("demo_data"),
            ),
            mount(
                MountKind::Volume,
                Some("/r/volumes/3f2a/_data"),
                "/anon",
                false,
                Some("3f2a"),
            ),
            mount(MountKind::Bind, Some("/srv/conf"), "/etc/conf", true, None),
            mount(MountKind::Bind, Some("/srv/logs"), "/logs", false, None),
            mount(MountKind::Tmpfs, None, "/run", false, None),
        ];
        // rw (the default) keeps each mount's own mode.
        assert_eq!(
            shared_mounts(&mounts, false).unwrap(),
            vec![
                "demo_data:/data:nocopy",
                "3f2a:/anon:nocopy",
                "/srv/conf:/etc/conf:ro",
                "/srv/logs:/logs",
            ]
        );
        // ro makes every one read-only.
        assert_eq!(
            shared_mounts(&mounts, true).unwrap(),
            vec![
                "demo_data:/data:ro,nocopy",
                "3f2a:/anon:ro,nocopy",
                "/srv/conf:/etc/conf:ro",
                "/srv/logs:/logs:ro",
            ]
        );
        let odd = [mount(MountKind::Bind, Some("/srv/a:b"), "/x", false, None)];
        assert!(shared_mounts(&odd, false).unwrap_err().contains("/srv/a:b"));
    }

    #[test]
    fn the_containers_own_mounts_win_at_a_shared_target() {
        let mut volumes = vec!["own:/data".to_string(), "/host/x:/x/".to_string(), "/anon".to_string()];
        let shared = vec![
            "src:/data:nocopy".to_string(),
            "/srv/x:/x".to_string(),
            "v1:/anon:nocopy".to_string(),
            "v2:/run:nocopy".to_string(),
            "v3:/new:nocopy".to_string(),
            "v4:/new:nocopy".to_string(),
        ];
        add_shared(&mut volumes, &["/run:size=1m".to_string()], shared);
        assert_eq!(volumes, vec!["own:/data", "/host/x:/x/", "/anon", "v3:/new:nocopy"]);
    }

    #[test]
    fn targets_of_volume_specs() {
        assert_eq!(volume_target("/data"), "/data");
        assert_eq!(volume_target("vol:/data:ro"), "/data");
        assert_eq!(volume_target("/host:/data"), "/data");
        assert_eq!(volume_target("/data:ro"), "/data");
    }
}
