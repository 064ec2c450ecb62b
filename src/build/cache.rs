//! The build cache: each step's resulting image draft, keyed by the
//! parent draft's identity, the instruction (variables expanded) and its
//! inputs (content hash of COPY/ADD sources, build args a RUN sees).
//!
//! Entries live in `<root>/build-cache/<key>.json`. An entry only names
//! blobs; if image removal has collected them since, the entry is a miss.

use std::fs;
use std::io;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::BuildError;
use crate::image::{ImageDraft, ImageStore};
use crate::store::{create_private_dir, write_atomic, Root};

pub struct Cache {
    dir: PathBuf,
}

/// The key of one step: parent, instruction and inputs, hashed.
pub fn key(parent: &str, instruction: &str, inputs: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"berth-build-cache-v1\0");
    hasher.update(parent.as_bytes());
    hasher.update(b"\0");
    hasher.update(instruction.as_bytes());
    for input in inputs {
        hasher.update(b"\0");
        hasher.update(input.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

impl Cache {
    pub fn new(root: &Root) -> Cache {
        Cache {
            dir: root.path().join("build-cache"),
        }
    }

    /// The draft recorded for `key`, if it is whole.
    pub fn get(&self, key: &str, store: &ImageStore) -> Option<ImageDraft> {
        let bytes = fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let draft: ImageDraft = serde_json::from_slice(&bytes).ok()?;
        store.has_layers(&draft.layers).then_some(draft)
    }

    pub fn put(&self, key: &str, draft: &ImageDraft) -> Result<(), BuildError> {
        create_private_dir(&self.dir).map_err(BuildError::io("cannot create", &self.dir))?;
        let path = self.dir.join(format!("{key}.json"));
        let bytes =
            serde_json::to_vec(draft).map_err(|e| BuildError::io("cannot encode", &path)(io::Error::other(e)))?;
        write_atomic(&path, &bytes).map_err(BuildError::io("cannot write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_every_part() {
        let base = key("p", "RUN x", &["a".into()]);
        assert_eq!(base, key("p", "RUN x", &["a".into()]));
        assert_ne!(base, key("q", "RUN x", &["a".into()]));
        assert_ne!(base, key("p", "RUN y", &["a".into()]));
        assert_ne!(base, key("p", "RUN x", &["b".into()]));
        assert_ne!(base, key("p", "RUN x", &[]));
    }

    #[test]
    fn entries_round_trip_and_missing_blobs_miss() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let store = ImageStore::open(&root).unwrap();
        let cache = Cache::new(&root);
        let draft = ImageDraft::scratch();
        cache.put("k", &draft).unwrap();
        assert_eq!(cache.get("k", &store), Some(draft.clone()));
        assert_eq!(cache.get("other", &store), None);
        let mut with_layer = draft;
        with_layer.layers.push(crate::image::LayerRef {
            blob: crate::image::Digest::of(b"gone"),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: crate::image::Digest::of(b"gone"),
        });
        cache.put("k2", &with_layer).unwrap();
        assert_eq!(cache.get("k2", &store), None);
    }
}
