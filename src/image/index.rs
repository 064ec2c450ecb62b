//! The reference index, `images/index.json`: which names point at which
//! manifests, and what berth knows about each image it stores.
//!
//! The data structure is pure; [`Index::load`] and [`Index::update`] are the
//! only I/O, and `update` holds `Root::lock("images")` across its
//! read-modify-write so concurrent CLI calls never lose a tag.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::ImageError;
use crate::store::{create_private_dir, write_atomic, Root};

/// One stored image, keyed by its manifest digest in [`Index::images`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest: the image id.
    pub config: Digest,
    /// `created` from the config, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Uncompressed size of all layers, in bytes.
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Normalized `registry/repository:tag` → manifest digest.
    #[serde(default)]
    pub references: BTreeMap<String, Digest>,
    /// Manifest digest → record.
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
}

impl Index {
    pub fn load(root: &Root) -> Result<Self, ImageError> {
        let path = index_path(root);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(ImageError::json(format!("image index {}", path.display())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(ImageError::io("cannot read", path)(e)),
        }
    }

    /// Loads, applies `change` and writes back atomically, under the lock.
    pub fn update<T>(root: &Root, change: impl FnOnce(&mut Index) -> Result<T, ImageError>) -> Result<T, ImageError> {
        let dir = root.images_dir();
        create_private_dir(&dir).map_err(ImageError::io("cannot create", &dir))?;
        let _lock = root
            .lock("images")
            .map_err(ImageError::io("cannot lock", root.path().join("images.lock")))?;
        let mut index = Index::load(root)?;
        let before = index.clone();
        let result = change(&mut index)?;
        if index != before {
            let bytes = serde_json::to_vec_pretty(&index).map_err(ImageError::json("image index"))?;
            let path = index_path(root);
            write_atomic(&path, &bytes).map_err(ImageError::io("cannot write", path))?;
        }
        Ok(result)
    }

    /// Names (`name:tag`) pointing at `manifest`, sorted.
    pub fn names_of(&self, manifest: &Digest) -> Vec<String> {
        self.references
            .iter()
            .filter(|(_, m)| *m == manifest)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Manifests whose config (image id) is `id`.
    pub fn manifests_of(&self, id: &Digest) -> Vec<Digest> {
        self.images
            .iter()
            .filter(|(_, r)| r.config == *id)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Points `name` at `manifest`; returns the manifest it pointed at
    /// before, if it moved.
    pub fn tag(&mut self, name: &str, manifest: &Digest) -> Option<Digest> {
        self.references
            .insert(name.to_string(), manifest.clone())
            .filter(|old| old != manifest)
    }

    pub fn is_dangling(&self, manifest: &Digest) -> bool {
        !self.references.values().any(|m| m == manifest)
    }
}

fn index_path(root: &Root) -> std::path::PathBuf {
    root.images_dir().join("index.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_moves_names_and_leaves_dangling_images() {
        let (m1, m2) = (Digest::of(b"m1"), Digest::of(b"m2"));
        let mut index = Index::default();
        for m in [&m1, &m2] {
            index.images.insert(
                m.clone(),
                ImageRecord {
                    config: Digest::of(b"c"),
                    created: None,
                    size: 0,
                },
            );
        }
        assert_eq!(index.tag("docker.io/library/a:latest", &m1), None);
        assert_eq!(index.tag("docker.io/library/a:latest", &m1), None);
        assert_eq!(index.tag("docker.io/library/a:latest", &m2), Some(m1.clone()));
        assert!(index.is_dangling(&m1));
        assert_eq!(index.names_of(&m2), vec!["docker.io/library/a:latest"]);
        assert_eq!(index.manifests_of(&Digest::of(b"c")).len(), 2);
    }

    #[test]
    fn update_round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let m = Digest::of(b"m");
        Index::update(&root, |index| {
            index.tag("x:1", &m);
            Ok(())
        })
        .unwrap();
        assert_eq!(Index::load(&root).unwrap().references["x:1"], m);
    }
}
