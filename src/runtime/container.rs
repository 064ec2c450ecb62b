//! A container on disk: `<root>/containers/<id>/` with `config.json`,
//! `state.json`, the overlay `upper`/`work` dirs, the `rootfs` mount point,
//! `container.log` and the files bind-mounted into /etc.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::config::{ContainerConfig, ContainerState, Status};
use crate::store::{write_atomic, Root};

#[derive(Debug, Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers match {0:?}: be more specific")]
    Ambiguous(String),
    #[error(
        "the container name \"/{name}\" is already in use by container \"{id}\"; remove it or choose another name"
    )]
    NameInUse { name: String, id: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A handle on one container's directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub config: ContainerConfig,
}

impl Container {
    pub fn config_path(dir: &Path) -> PathBuf {
        dir.join("config.json")
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("container.log")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn short_id(&self) -> &str {
        &self.config.id[..12.min(self.config.id.len())]
    }

    /// Creates the directory and writes config and state; the caller has
    /// checked the name is free (under the containers lock).
    pub fn create(root: &Root, config: ContainerConfig) -> Result<Container, ContainerError> {
        let dir = root.containers_dir().join(&config.id);
        for d in [dir.clone(), dir.join("work"), dir.join("rootfs")] {
            crate::store::create_private_dir(&d).map_err(io_error(&d))?;
        }
        // overlayfs gives the merged root the upper dir's owner and mode:
        // it must look like a normal `/` (0755). The container directory
        // around it stays private.
        let upper = dir.join("upper");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&upper)
            .map_err(io_error(&upper))?;
        let container = Container { dir, config };
        let path = Self::config_path(&container.dir);
        let bytes = serde_json::to_vec_pretty(&container.config).map_err(|source| ContainerError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes).map_err(io_error(&path))?;
        container.save_state(&ContainerState::created())?;
        Ok(container)
    }

    pub fn open(dir: &Path) -> Result<Container, ContainerError> {
        let path = Self::config_path(dir);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let config = serde_json::from_slice(&bytes).map_err(|source| ContainerError::Json { path, source })?;
        Ok(Container {
            dir: dir.to_path_buf(),
            config,
        })
    }

    pub fn state(&self) -> Result<ContainerState, ContainerError> {
        let path = self.state_path();
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let mut state: ContainerState =
            serde_json::from_slice(&bytes).map_err(|source| ContainerError::Json { path, source })?;
        // A monitor killed with the host (or by kill -9) cannot record the
        // exit: a running state whose monitor is gone is dead.
        if matches!(state.status, Status::Running | Status::Paused) && !state.monitor_pid.is_some_and(process_alive) {
            state.status = Status::Dead;
        }
        Ok(state)
    }

    pub fn save_state(&self, state: &ContainerState) -> Result<(), ContainerError> {
        let path = self.state_path();
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| ContainerError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes).map_err(io_error(&path))
    }

    /// The cgroup name of this container under an engine root.
    pub fn cgroup_name(root_tag: &str, id: &str) -> String {
        format!("berth-{root_tag}/{id}")
    }
}

/// Whether a process exists (signal 0).
pub fn process_alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Every container under the root, oldest first.
pub fn list(root: &Root) -> Result<Vec<Container>, ContainerError> {
    let dir = root.containers_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&dir)(e)),
    };
    let mut containers = Vec::new();
    for entry in entries.flatten() {
        // A directory without config is a create that never finished.
        if let Ok(c) = Container::open(&entry.path()) {
            containers.push(c);
        }
    }
    containers.sort_by(|a, b| a.config.created.cmp(&b.config.created));
    Ok(containers)
}

/// Finds a container by name, full id or unique id prefix.
pub fn find(root: &Root, reference: &str) -> Result<Container, ContainerError> {
    let all = list(root)?;
    let reference = reference.trim_start_matches('/');
    if let Some(c) = all
        .iter()
        .find(|c| c.config.name == reference || c.config.id == reference)
    {
        return Ok(c.clone());
    }
    let matches: Vec<&Container> = all.iter().filter(|c| c.config.id.starts_with(reference)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ContainerError::NotFound(reference.to_string())),
        _ => Err(ContainerError::Ambiguous(reference.to_string())),
    }
}

/// A new random 64-hex id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A docker-like default name (`adjective_noun`), derived from the id.
pub fn default_name(id: &str) -> String {
    const ADJECTIVES: &[&str] = &[
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud",
        "quiet", "sharp", "tender", "vivid",
    ];
    const NOUNS: &[&str] = &[
        "anchor",
        "beacon",
        "current",
        "dock",
        "ferry",
        "harbor",
        "jetty",
        "keel",
        "lighthouse",
        "mooring",
        "pier",
        "quay",
        "sail",
        "tide",
        "wharf",
        "yard",
    ];
    let byte = |i: usize| u8::from_str_radix(id.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0) as usize;
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % ADJECTIVES.len()],
        NOUNS[byte(2) % NOUNS.len()],
        &id[4..8.min(id.len())]
    )
}

/// RFC 3339 UTC with nanoseconds, as docker prints times.
pub fn now_rfc3339() -> String {
    format_rfc3339(std::time::SystemTime::now())
}

pub fn format_rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses the RFC 3339 form [`format_rfc3339`] writes (and whole seconds).
pub fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some(std::time::UNIX_EPOCH + std::time::Duration::new(u64::try_from(secs).ok()?, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_764_000_000, 123_456_789);
        let s = format_rfc3339(t);
        assert_eq!(s, "2025-11-24T16:00:00.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(format_rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn ids_and_names() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, new_id());
        let name = default_name(&id);
        assert!(name.contains('_'));
        assert_eq!(name, default_name(&id));
    }
}
