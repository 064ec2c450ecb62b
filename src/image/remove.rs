//! Removing images (`rm`, `prune`) and collecting the blobs and snapshots
//! no remaining image needs.

use std::collections::BTreeSet;

use super::digest::{chain_ids, Digest};
use super::index::Index;
use super::reference::{familiar, split_tagged, Reference};
use super::store::ImageStore;
use super::{human_size, ImageError};

fn familiar_tagged(key: &str) -> String {
    let (name, tag) = split_tagged(key);
    format!("{}:{tag}", familiar(name))
}

/// Drops every manifest of image `id` and the names pointing at them.
fn delete_image(index: &mut Index, id: &Digest, lines: &mut Vec<String>) {
    let manifests: BTreeSet<Digest> = index.manifests_of(id).into_iter().collect();
    index.references.retain(|name, manifest| {
        let keep = !manifests.contains(manifest);
        if !keep {
            lines.push(format!("Untagged: {}", familiar_tagged(name)));
        }
        keep
    });
    index.images.retain(|manifest, _| !manifests.contains(manifest));
    lines.push(format!("Deleted: {id}"));
}

fn names_of_id(index: &Index, id: &Digest) -> Vec<String> {
    index.manifests_of(id).iter().flat_map(|m| index.names_of(m)).collect()
}

impl ImageStore {
    /// Like `docker rmi`: by name, untags (and deletes the image with its
    /// last name); by id, deletes. An image a container uses is refused,
    /// or with `force` only untagged.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, ImageError> {
        let _content = self.content_lock()?;
        let lines = Index::update(&self.root, |index| {
            let (manifest, found_name) = self.lookup(index, reference)?;
            let id = index
                .images
                .get(&manifest)
                .map(|r| r.config.clone())
                .ok_or_else(|| ImageError::NotFound {
                    reference: reference.to_string(),
                })?;
            let used = in_use(&id.to_string());
            let names = names_of_id(index, &id);
            let by_tag = Reference::parse(reference).is_ok_and(|r| r.digest.is_none());
            let mut lines = Vec::new();
            let refused = || ImageError::InUse {
                reference: reference.to_string(),
                id: id.short().to_string(),
            };
            match (by_tag, found_name) {
                (true, Some(name)) if names.len() > 1 || (used && force) => {
                    index.references.remove(&name);
                    lines.push(format!("Untagged: {}", familiar_tagged(&name)));
                }
                _ if used && !force => return Err(refused()),
                _ if used => {
                    for name in names {
                        index.references.remove(&name);
                        lines.push(format!("Untagged: {}", familiar_tagged(&name)));
                    }
                }
                (false, _) | (true, None) if names.len() > 1 && !force => {
                    return Err(ImageError::MultipleReferences {
                        reference: reference.to_string(),
                        id: id.short().to_string(),
                    })
                }
                _ => delete_image(index, &id, &mut lines),
            }
            Ok(lines)
        })?;
        self.collect_garbage()?;
        Ok(lines)
    }

    /// Removes dangling images no container uses, then unreferenced
    /// blobs and snapshots.
    pub fn prune(&self, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>, ImageError> {
        self.prune_with(false, in_use)
    }

    /// `prune`, and with `all` every image no container uses.
    pub fn prune_with(&self, all: bool, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>, ImageError> {
        let _content = self.content_lock()?;
        let mut lines = Index::update(&self.root, |index| {
            let ids: BTreeSet<Digest> = index.images.values().map(|r| r.config.clone()).collect();
            let mut lines = Vec::new();
            for id in ids {
                let dangling = names_of_id(index, &id).is_empty();
                if (dangling || all) && !in_use(&id.to_string()) {
                    delete_image(index, &id, &mut lines);
                }
            }
            Ok(lines)
        })?;
        let reclaimed = self.collect_garbage()?;
        lines.push(format!("Total reclaimed space: {}", human_size(reclaimed)));
        Ok(lines)
    }

    /// Removes blobs and snapshots no recorded image refers to; returns
    /// the bytes freed. Callers hold the content lock.
    fn collect_garbage(&self) -> Result<u64, ImageError> {
        let index = Index::load(&self.root)?;
        let mut blobs = BTreeSet::new();
        let mut snapshots = BTreeSet::new();
        for manifest in index.images.keys() {
            blobs.insert(manifest.clone());
            // A broken image keeps what can be named; never guess wider.
            let Ok(image) = self.load_stored(manifest) else {
                continue;
            };
            blobs.insert(image.config_digest.clone());
            for (blob, _) in image.layer_blobs()? {
                blobs.insert(blob);
            }
            snapshots.extend(chain_ids(&image.diff_ids));
        }
        let mut freed = 0;
        for blob in self.blobs.list()? {
            if !blobs.contains(&blob) {
                freed += self.blobs.blob_size(&blob).unwrap_or(0);
                self.blobs.remove(&blob)?;
            }
        }
        for snapshot in self.snapshots.list()? {
            if !snapshots.contains(&snapshot) {
                freed += self.snapshots.size(&snapshot);
                self.snapshots.remove(&snapshot)?;
            }
        }
        Ok(freed)
    }
}
