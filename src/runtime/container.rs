//! A container on disk: `<root>/containers/<id>/` with `config.json`,
//! `state.json`, the overlay `upper`/`work` dirs, the `rootfs` mount point,
//! `container.log` and the files bind-mounted into /etc.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::config::{ContainerConfig, ContainerState, Status};
use crate::store::{write_atomic, write_atomic_volatile, Root};

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

impl ContainerError {
    /// A file of the container is missing: it was removed meanwhile.
    pub fn is_gone(&self) -> bool {
        matches!(self, ContainerError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
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
        // Made under a hidden name and renamed into place once complete, so
        // that a create killed part way is never listed (the engine's
        // recovery removes the leftover).
        let dir = root.containers_dir().join(format!(".{}.creating", config.id));
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
        // No fsync (every `run` and `up` waits for it, milliseconds on a
        // busy disk; runc does not sync its state either): the rename
        // below publishes the directory, and a host crash before writeback
        // can leave an empty config, which listing skips and the engine's
        // recovery removes (`engine::recovery`).
        write_atomic_volatile(&path, &bytes).map_err(io_error(&path))?;
        container.save_state(&ContainerState::created())?;
        let done = root.containers_dir().join(&container.config.id);
        fs::rename(&container.dir, &done).map_err(io_error(&done))?;
        Ok(Container {
            dir: done,
            config: container.config,
        })
    }

    /// Rewrites the configuration (`network connect`/`disconnect` change
    /// the attachments of an existing container).
    pub fn save_config(&self) -> Result<(), ContainerError> {
        let path = Self::config_path(&self.dir);
        let bytes = serde_json::to_vec_pretty(&self.config).map_err(|source| ContainerError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes).map_err(io_error(&path))
    }

    /// Takes the container out of the list at once (a rename), so that a
    /// removal killed part way leaves no half container behind: only a
    /// hidden directory that [`remove_hidden`] or recovery deletes.
    pub fn hide(&self, root: &Root) -> Result<PathBuf, ContainerError> {
        let hidden = root.containers_dir().join(format!(".{}.removing", self.config.id));
        fs::rename(&self.dir, &hidden).map_err(io_error(&hidden))?;
        Ok(hidden)
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
        // The monitor died with the host.
        if emptied_by_a_crash(&bytes) {
            return Ok(ContainerState {
                status: Status::Dead,
                ..ContainerState::created()
            });
        }
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
        // A throwaway container's state is worth nothing after a crash.
        match self.config.removed_on_exit {
            true => crate::store::write_atomic_unflushed(&path, &bytes),
            false => write_atomic_volatile(&path, &bytes),
        }
        .map_err(io_error(&path))
    }

    /// The cgroup name of this container under an engine root: one
    /// directory at the top of each hierarchy, as runc's `/<id>`. A shared
    /// per-root parent would cost a `mkdir` and an `rmdir` in every
    /// hierarchy per container (the last container out removes it) and
    /// race between one container's removal and the next one's creation.
    pub fn cgroup_name(root_tag: &str, id: &str) -> String {
        format!("berth-{root_tag}-{id}")
    }
}

/// Whether a state file lost its content in a host crash: written without
/// a flush, it can come back empty or as zeros.
fn emptied_by_a_crash(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0 || b.is_ascii_whitespace())
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
        // Hidden: a create or removal in progress (or killed part way).
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Ok(c) = Container::open(&entry.path()) {
            containers.push(c);
        }
    }
    containers.sort_by(|a, b| a.config.created.cmp(&b.config.created));
    Ok(containers)
}

/// The image ids containers in this root were created from: images
/// `image rm`/`prune` must keep.
pub fn images_in_use(root: &Root) -> Result<std::collections::BTreeSet<String>, ContainerError> {
    Ok(list(root)?.into_iter().map(|c| c.config.image_id).collect())
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

pub use crate::rfc3339::{format as format_rfc3339, now as now_rfc3339, parse as parse_rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_emptied_by_a_crash_is_recognised() {
        assert!(emptied_by_a_crash(b""));
        assert!(emptied_by_a_crash(&[0; 250]));
        assert!(!emptied_by_a_crash(br#"{"status":"running"}"#));
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
