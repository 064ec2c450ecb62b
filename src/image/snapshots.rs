//! Unpacked layers: `images/snapshots/<chain id hex>/fs`, shared by every
//! image whose layer stack has that prefix.
//!
//! A layer is unpacked into a staging directory under the root's tmp dir
//! and renamed into place only when complete and verified, so a snapshot
//! directory that exists is always whole; a failed or refused unpack is
//! removed on the spot (and by [`Staged`]'s drop if we unwind).

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use super::digest::{is_sha256_hex, Digest};
use super::unpack::{unpack_layer, UnpackedLayer};
use super::{staging_name, ImageError};
use crate::store::{create_private_dir, Root};

#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A layer unpacked into staging, not yet published.
pub struct Staged {
    path: PathBuf,
    pub layer: UnpackedLayer,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.path.exists() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl Snapshots {
    pub fn new(root: &Root) -> Self {
        Snapshots {
            dir: root.snapshots_dir(),
            tmp: root.tmp_dir(),
        }
    }

    /// Where the snapshot's files are (whether or not it exists yet).
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex()).join("fs")
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.fs_path(chain_id).is_dir()
    }

    /// Unpacks a layer into a fresh staging directory. On error nothing is
    /// left behind.
    pub fn stage(&self, reader: impl Read, media_type: Option<&str>) -> Result<Staged, ImageError> {
        create_private_dir(&self.tmp).map_err(ImageError::io("cannot create", &self.tmp))?;
        let path = self.tmp.join(staging_name("unpack"));
        create_private_dir(&path).map_err(ImageError::io("cannot create", &path))?;
        let fs_dir = path.join("fs");
        let result = fs::create_dir(&fs_dir)
            .map_err(ImageError::io("cannot create", &fs_dir))
            .and_then(|()| unpack_layer(reader, media_type, &fs_dir));
        match result {
            Ok(layer) => Ok(Staged { path, layer }),
            Err(error) => {
                let _ = fs::remove_dir_all(&path);
                Err(error)
            }
        }
    }

    /// Publishes a staged layer as `chain_id`. If another process won the
    /// race, theirs is kept and ours dropped.
    pub fn publish(&self, staged: Staged, chain_id: &Digest) -> Result<PathBuf, ImageError> {
        create_private_dir(&self.dir).map_err(ImageError::io("cannot create", &self.dir))?;
        let size_file = staged.path.join("size");
        fs::write(&size_file, staged.layer.size.to_string()).map_err(ImageError::io("cannot write", &size_file))?;
        let target = self.dir.join(chain_id.hex());
        match fs::rename(&staged.path, &target) {
            Ok(()) => {}
            Err(e) if self.exists(chain_id) && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(ImageError::io("cannot publish snapshot", target)(e)),
        }
        drop(staged);
        Ok(self.fs_path(chain_id))
    }

    /// Makes sure the layer `chain_id` is unpacked, reading it from `open`
    /// only when missing and checking that it really has `diff_id`.
    pub fn ensure(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        media_type: Option<&str>,
        open: impl FnOnce() -> Result<fs::File, ImageError>,
    ) -> Result<Option<UnpackedLayer>, ImageError> {
        if self.exists(chain_id) {
            return Ok(None);
        }
        let staged = self.stage(open()?, media_type)?;
        if staged.layer.diff_id != *diff_id {
            return Err(ImageError::DigestMismatch {
                what: "uncompressed layer (diff id)".to_string(),
                expected: diff_id.clone(),
                actual: staged.layer.diff_id.clone(),
            });
        }
        let layer = staged.layer.clone();
        self.publish(staged, chain_id)?;
        Ok(Some(layer))
    }

    /// The uncompressed size recorded when the layer was unpacked.
    pub fn size(&self, chain_id: &Digest) -> u64 {
        fs::read_to_string(self.dir.join(chain_id.hex()).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io("cannot list", self.dir.as_path())(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ImageError::io("cannot list", self.dir.as_path()))?;
            if let Some(hex) = entry.file_name().to_str().filter(|n| is_sha256_hex(n)) {
                ids.push(Digest::from_hex(hex)?);
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn remove(&self, chain_id: &Digest) -> Result<(), ImageError> {
        let path = self.dir.join(chain_id.hex());
        // Move aside first so a half-removed snapshot never looks complete.
        let doomed = self.tmp.join(staging_name("remove"));
        match fs::rename(&path, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(ImageError::io("cannot remove", doomed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("cannot remove snapshot", path)(e)),
        }
    }
}
