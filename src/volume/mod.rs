//! Named volumes (driver `local`), as docker has them: data that outlives
//! containers, under `<root>/volumes/<name>/` with `_data/` (0755, what the
//! container sees) and `volume.json`.
//!
//! A volume is in use while any container's `config.json` names it in a
//! mount; anonymous volumes (`-v /path`, image `VOLUME`s) go with their
//! container on `rm -v` and `run --rm`. Creating and removing happen under
//! the `volumes` lock of the root ([`VolumeStore::lock`]), which the CLI
//! also holds while it creates a container, so `volume rm` cannot slip in
//! between resolving a volume and recording its use.

pub mod options;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::runtime::config::ContainerConfig;
use crate::runtime::container::{self, ContainerError};
use crate::runtime::create::VolumeSource;
use crate::store::{create_private_dir, write_atomic, Root};
use options::LocalMount;

pub const LOCAL_DRIVER: &str = "local";

#[derive(Debug, Error)]
pub enum VolumeError {
    #[error(
        "{0:?} includes invalid characters for a local volume name, only \"{pat}\" are allowed \
         (at least two characters); if you intended to pass a host directory, use an absolute path",
        pat = options::NAME_PATTERN
    )]
    InvalidName(String),
    #[error("volume {name}: {reason}")]
    InvalidOption { name: String, reason: String },
    #[error("volume driver {0:?} is not supported: berth has only \"local\"")]
    UnknownDriver(String),
    #[error("volume {0} already exists with different options: remove it first, or create it with the same options")]
    Conflict(String),
    #[error("No such volume: {0}")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse { name: String, containers: Vec<String> },
    #[error("volume {name}: bind device {device} is not a directory on the host")]
    MissingDevice { name: String, device: PathBuf },
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
    #[error("finding the containers that use volumes: {0}")]
    Containers(#[from] ContainerError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created: String,
    /// Made for one container (`-v /path`, image `VOLUME`): removed with
    /// it by `rm -v`, and by `volume prune` without `-a`.
    #[serde(default)]
    pub anonymous: bool,
}

/// The volumes of one engine root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: Root,
    dir: PathBuf,
}

impl VolumeStore {
    /// Opens (and creates) `<root>/volumes`.
    pub fn open(root: &Root) -> Result<VolumeStore, VolumeError> {
        root.ensure().map_err(io_error(root.path()))?;
        let dir = root.path().join("volumes");
        create_private_dir(&dir).map_err(io_error(&dir))?;
        Ok(VolumeStore {
            root: root.clone(),
            dir,
        })
    }

    /// Takes the `volumes` lock for changes; reads need none.
    pub fn lock(&self) -> Result<LockedVolumes<'_>, VolumeError> {
        let lock = self.root.lock("volumes").map_err(io_error(self.root.path()))?;
        Ok(LockedVolumes {
            store: self,
            _lock: lock,
        })
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where the data lives on the host: `<root>/volumes/<name>/_data`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if !options::valid_name(name) {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        let path = self.volume_dir(name).join("volume.json");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(VolumeError::NotFound(name.to_string())),
            Err(e) => return Err(io_error(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| VolumeError::Json { path, source })
    }

    /// Every volume, by name. A directory without `volume.json` is a
    /// create that never finished, and is skipped.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let mut volumes = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error(&self.dir))?.flatten() {
            match self.get(&entry.file_name().to_string_lossy()) {
                Ok(v) => volumes.push(v),
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Names of the containers whose mounts use each volume.
    pub fn users(&self) -> Result<BTreeMap<String, Vec<String>>, VolumeError> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in container::list(&self.root)? {
            for name in volumes_of(&c.config) {
                users.entry(name.to_string()).or_default().push(c.config.name.clone());
            }
        }
        Ok(users)
    }

    /// What the runtime mounts for this volume (checked now, so a bind
    /// volume whose host directory went away fails at create, not start).
    pub fn source(&self, volume: &Volume) -> Result<VolumeSource, VolumeError> {
        let invalid = |reason| VolumeError::InvalidOption {
            name: volume.name.clone(),
            reason,
        };
        let (source, fstype, options, read_only) = match options::parse(&volume.driver_opts).map_err(invalid)? {
            LocalMount::Directory => (self.mountpoint(&volume.name), None, Vec::new(), false),
            LocalMount::Bind { device, read_only } => {
                if !device.is_dir() {
                    return Err(VolumeError::MissingDevice {
                        name: volume.name.clone(),
                        device,
                    });
                }
                (device, None, Vec::new(), read_only)
            }
            LocalMount::Filesystem {
                fstype,
                device,
                data,
                read_only,
            } => (PathBuf::from(device), Some(fstype), data, read_only),
        };
        Ok(VolumeSource {
            name: volume.name.clone(),
            source,
            fstype,
            options,
            read_only,
        })
    }
}

/// The volumes a container's mounts name.
pub fn volumes_of(config: &ContainerConfig) -> impl Iterator<Item = &str> {
    config.mounts.iter().filter_map(|m| m.volume.as_deref())
}

/// The store with its lock held: the operations that change volumes.
pub struct LockedVolumes<'a> {
    store: &'a VolumeStore,
    _lock: Flock<File>,
}

impl std::ops::Deref for LockedVolumes<'_> {
    type Target = VolumeStore;
    fn deref(&self) -> &VolumeStore {
        self.store
    }
}

impl LockedVolumes<'_> {
    /// `volume create`: idempotent for the same driver, options and
    /// labels; an error when they differ. No name: a random one.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::UnknownDriver(driver.to_string()));
        }
        let volume = Volume {
            name: name.map_or_else(container::new_id, str::to_string),
            driver: LOCAL_DRIVER.into(),
            driver_opts,
            labels,
            created: container::now_rfc3339(),
            anonymous: false,
        };
        if !options::valid_name(&volume.name) {
            return Err(VolumeError::InvalidName(volume.name));
        }
        options::parse(&volume.driver_opts).map_err(|reason| VolumeError::InvalidOption {
            name: volume.name.clone(),
            reason,
        })?;
        match self.get(&volume.name) {
            Ok(existing) if existing.driver_opts == volume.driver_opts && existing.labels == volume.labels => {
                Ok(existing)
            }
            Ok(_) => Err(VolumeError::Conflict(volume.name)),
            Err(VolumeError::NotFound(_)) => self.write_new(volume),
            Err(e) => Err(e),
        }
    }

    /// Looks up (or creates) the volumes a container needs; anonymous ones
    /// are new, and their names come back so a failed create can remove them.
    pub fn resolve_for_container(
        &self,
        requests: &[crate::runtime::create::VolumeRequest],
    ) -> Result<
        (
            BTreeMap<crate::runtime::create::VolumeRequest, VolumeSource>,
            Vec<String>,
        ),
        VolumeError,
    > {
        use crate::runtime::create::VolumeRequest;
        let mut sources = BTreeMap::new();
        let mut anonymous = Vec::new();
        let mut resolve = |request: &VolumeRequest| -> Result<(), VolumeError> {
            let volume = match request {
                VolumeRequest::Named(name) => self.get_or_create(name)?,
                VolumeRequest::Anonymous { .. } => {
                    let volume = self.create_anonymous()?;
                    anonymous.push(volume.name.clone());
                    volume
                }
            };
            sources.insert(request.clone(), self.source(&volume)?);
            Ok(())
        };
        if let Err(e) = requests.iter().try_for_each(&mut resolve) {
            for name in &anonymous {
                let _ = self.remove(name, true);
            }
            return Err(e);
        }
        Ok((sources, anonymous))
    }

    /// `-v NAME:/path`: the volume as it is, or a new one with defaults.
    pub fn get_or_create(&self, name: &str) -> Result<Volume, VolumeError> {
        if !options::valid_name(name) {
            return Err(VolumeError::InvalidName(name.to_string()));
        }
        match self.get(name) {
            Err(VolumeError::NotFound(_)) => self.create(Some(name), LOCAL_DRIVER, BTreeMap::new(), BTreeMap::new()),
            other => other,
        }
    }

    /// A new anonymous volume with a random 64-hex name.
    pub fn create_anonymous(&self) -> Result<Volume, VolumeError> {
        self.write_new(Volume {
            name: container::new_id(),
            driver: LOCAL_DRIVER.into(),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            created: container::now_rfc3339(),
            anonymous: true,
        })
    }

    fn write_new(&self, volume: Volume) -> Result<Volume, VolumeError> {
        let dir = self.volume_dir(&volume.name);
        // Left by a create that never finished (no volume.json).
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        let result = (|| {
            create_private_dir(&dir).map_err(io_error(&dir))?;
            // `_data` is the root of the mount: the container sees its mode.
            let data = dir.join("_data");
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .map_err(io_error(&data))?;
            let path = dir.join("volume.json");
            let bytes = serde_json::to_vec_pretty(&volume).map_err(|source| VolumeError::Json {
                path: path.clone(),
                source,
            })?;
            write_atomic(&path, &bytes).map_err(io_error(&path))
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(volume)
    }

    /// `volume rm`: refused while a container uses the volume, unless
    /// `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        self.get(name)?;
        if !force {
            if let Some(containers) = self.users()?.remove(name) {
                return Err(VolumeError::InUse {
                    name: name.to_string(),
                    containers,
                });
            }
        }
        self.delete(name)
    }

    fn delete(&self, name: &str) -> Result<(), VolumeError> {
        let dir = self.volume_dir(name);
        fs::remove_dir_all(&dir).map_err(io_error(&dir))
    }

    /// `volume prune`: unused anonymous volumes, or every unused one with
    /// `all`. Returns the names removed.
    pub fn prune(&self, all: bool) -> Result<Vec<String>, VolumeError> {
        let users = self.users()?;
        let mut removed = Vec::new();
        for v in self.list()? {
            if (all || v.anonymous) && !users.contains_key(&v.name) {
                self.delete(&v.name)?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }

    /// `rm -v`: the anonymous volumes of a removed container that no other
    /// container uses; named volumes stay (docker's rule).
    pub fn remove_anonymous_of(&self, config: &ContainerConfig) -> Result<(), VolumeError> {
        let users = self.users()?;
        for name in volumes_of(config) {
            if users.contains_key(name) {
                continue;
            }
            match self.get(name) {
                Ok(v) if v.anonymous => self.delete(name)?,
                Ok(_) | Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(&Root::new(dir.path().join("root"))).unwrap();
        (dir, store)
    }

    #[test]
    fn create_is_idempotent_for_the_same_options() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, store) = store();
        let locked = store.lock().unwrap();
        let opts: BTreeMap<_, _> = [("type".to_string(), "tmpfs".to_string())].into();
        let v = locked
            .create(Some("db"), "local", opts.clone(), BTreeMap::new())
            .unwrap();
        assert_eq!(locked.create(Some("db"), "local", opts, BTreeMap::new()).unwrap(), v);
        assert!(matches!(
            locked.create(Some("db"), "local", BTreeMap::new(), BTreeMap::new()),
            Err(VolumeError::Conflict(_))
        ));
        assert_eq!(locked.get_or_create("db").unwrap(), v, "-v uses it as it is");
        let mode = fs::metadata(store.mountpoint("db")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert!(matches!(
            locked.create(Some("x"), "local", BTreeMap::new(), BTreeMap::new()),
            Err(VolumeError::InvalidName(_))
        ));
        assert!(matches!(
            locked.create(Some("nfs"), "nfs", BTreeMap::new(), BTreeMap::new()),
            Err(VolumeError::UnknownDriver(_))
        ));
        let source = store.source(&v).unwrap();
        assert_eq!(
            (source.fstype.as_deref(), source.source),
            (Some("tmpfs"), PathBuf::from("tmpfs"))
        );
    }

    #[test]
    fn prune_takes_anonymous_unless_all() {
        let (_dir, store) = store();
        let locked = store.lock().unwrap();
        locked.get_or_create("keep").unwrap();
        let anon = locked.create_anonymous().unwrap();
        assert_eq!(anon.name.len(), 64);
        assert_eq!(store.source(&anon).unwrap().source, store.mountpoint(&anon.name));
        assert_eq!(locked.prune(false).unwrap(), vec![anon.name]);
        assert_eq!(locked.prune(true).unwrap(), vec!["keep".to_string()]);
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(locked.remove("keep", false), Err(VolumeError::NotFound(_))));
    }
}
