//! [`ImageStore`]: the API the CLI and the runtime use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::blobs::BlobStore;
use super::digest::{chain_ids, is_sha256_hex, Digest};
use super::index::{ImageRecord, Index};
use super::reference::{familiar, split_tagged, Reference};
use super::snapshots::Snapshots;
use super::ImageError;
use crate::store::Root;

/// The local image store of one engine root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(super) root: Root,
    pub(super) blobs: BlobStore,
    pub(super) snapshots: Snapshots,
}

/// An image ready to run: every layer is unpacked.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// The normalized `name:tag` it was resolved by, if any.
    pub name: Option<String>,
    pub config: ImageConfiguration,
    /// Snapshot `fs` dirs, lowest layer first.
    pub layers: Vec<PathBuf>,
}

impl ResolvedImage {
    /// What the runtime needs of the image to create a container from it;
    /// `reference` names it when it has no tag.
    pub fn runtime_info(&self, reference: &str) -> crate::runtime::create::ImageInfo {
        let config = self.config.config().clone().unwrap_or_default();
        crate::runtime::create::ImageInfo {
            id: self.id.clone(),
            name: self.name.clone().unwrap_or_else(|| reference.to_string()),
            layers: self.layers.clone(),
            entrypoint: config.entrypoint().clone().unwrap_or_default(),
            cmd: config.cmd().clone().unwrap_or_default(),
            env: config.env().clone().unwrap_or_default(),
            working_dir: config.working_dir().clone(),
            user: config.user().clone(),
            stop_signal: config.stop_signal().clone(),
            volumes: config.volumes().clone().unwrap_or_default(),
        }
    }
}

/// One line of `berth image ls`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    pub id: String,
    /// Normalized `name:tag`s; empty for a dangling image.
    pub names: Vec<String>,
    pub created: Option<String>,
    pub size: u64,
}

/// A stored image, loaded from its blobs.
pub(super) struct StoredImage {
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub config_digest: Digest,
    pub diff_ids: Vec<Digest>,
}

impl StoredImage {
    /// Layer blob digests and media types, lowest first.
    pub fn layer_blobs(&self) -> Result<Vec<(Digest, String)>, ImageError> {
        self.manifest
            .layers()
            .iter()
            .map(|d| Ok((Digest::parse(d.digest().as_ref())?, d.media_type().to_string())))
            .collect()
    }
}

impl ImageStore {
    pub fn open(root: &Root) -> Result<Self, ImageError> {
        root.ensure()
            .map_err(ImageError::io("cannot create engine root", root.path()))?;
        Ok(ImageStore {
            root: root.clone(),
            blobs: BlobStore::new(root),
            snapshots: Snapshots::new(root),
        })
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Held by everything that adds content and by garbage collection, so
    /// a collection never removes blobs a concurrent load has written but
    /// not yet registered.
    pub(super) fn content_lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, ImageError> {
        self.root.lock("image-content").map_err(ImageError::io(
            "cannot lock",
            self.root.path().join("image-content.lock"),
        ))
    }

    pub(super) fn load_stored(&self, manifest_digest: &Digest) -> Result<StoredImage, ImageError> {
        let what = |kind: &str| format!("{kind} {manifest_digest}");
        let manifest: ImageManifest = serde_json::from_slice(&self.blobs.read_blob(manifest_digest)?)
            .map_err(ImageError::json(what("manifest")))?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
        let config: ImageConfiguration = serde_json::from_slice(&self.blobs.read_blob(&config_digest)?)
            .map_err(ImageError::json(what("config of manifest")))?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::InvalidImage {
                image: config_digest.to_string(),
                reason: format!(
                    "the manifest lists {} layers but the config {} diff ids",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        Ok(StoredImage {
            manifest,
            config,
            config_digest,
            diff_ids,
        })
    }

    /// Unpacks whatever layers of `image` are missing; returns the snapshot
    /// dirs (lowest first).
    pub(super) fn ensure_layers(&self, image: &StoredImage) -> Result<Vec<PathBuf>, ImageError> {
        let chain = chain_ids(&image.diff_ids);
        let mut dirs = Vec::with_capacity(chain.len());
        for ((chain_id, diff_id), (blob, media_type)) in chain.iter().zip(&image.diff_ids).zip(image.layer_blobs()?) {
            self.snapshots
                .ensure(chain_id, diff_id, Some(&media_type), || self.blobs.open_blob(&blob))
                .map_err(|source| ImageError::Layer {
                    layer: blob.clone(),
                    source: Box::new(source),
                })?;
            dirs.push(self.snapshots.fs_path(chain_id));
        }
        Ok(dirs)
    }

    /// The uncompressed size of an image's layers, as recorded when each
    /// was unpacked (one file per layer: read only where shown, not for
    /// every container start).
    fn layers_size(&self, image: &StoredImage) -> u64 {
        chain_ids(&image.diff_ids).iter().map(|c| self.snapshots.size(c)).sum()
    }

    /// Records an image whose blobs are stored: unpacks its layers, then
    /// points `names` (normalized `name:tag`) at it. Returns the image id.
    pub(super) fn register(&self, manifest_digest: &Digest, names: &[String]) -> Result<Digest, ImageError> {
        let image = self.load_stored(manifest_digest)?;
        self.ensure_layers(&image)?;
        let size = self.layers_size(&image);
        let record = ImageRecord {
            config: image.config_digest.clone(),
            created: image.config.created().clone(),
            size,
        };
        Index::update(&self.root, |index| {
            index.images.insert(manifest_digest.clone(), record);
            for name in names {
                index.tag(name, manifest_digest);
            }
            Ok(())
        })?;
        Ok(image.config_digest)
    }

    /// Finds the manifest `reference` names, and the name it was found by.
    pub(super) fn lookup(&self, index: &Index, reference: &str) -> Result<(Digest, Option<String>), ImageError> {
        let not_found = || ImageError::NotFound {
            reference: reference.to_string(),
        };
        let by_id = |id: &Digest| -> Option<Digest> {
            let mut manifests = index.manifests_of(id);
            // Prefer a manifest that has a name.
            manifests.sort_by_key(|m| index.is_dangling(m));
            manifests.into_iter().next()
        };
        if let Some(hex) = reference.strip_prefix("sha256:").filter(|h| is_sha256_hex(h)) {
            let digest = Digest::from_hex(hex)?;
            if let Some(manifest) = by_id(&digest) {
                return Ok((manifest, None));
            }
            if index.images.contains_key(&digest) {
                return Ok((digest, None));
            }
            return Err(not_found());
        }
        let parsed = Reference::parse(reference);
        if let Ok(parsed) = &parsed {
            if let Some(digest) = &parsed.digest {
                if index.images.contains_key(digest) {
                    return Ok((digest.clone(), parsed.tagged()));
                }
            } else if let Some(key) = parsed.tagged() {
                if let Some(manifest) = index.references.get(&key) {
                    return Ok((manifest.clone(), Some(key)));
                }
            }
        }
        let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
        let is_prefix = prefix.len() >= 4
            && prefix.len() <= 64
            && prefix.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if is_prefix {
            let ids: BTreeSet<&Digest> = index
                .images
                .values()
                .map(|r| &r.config)
                .filter(|id| id.hex().starts_with(prefix))
                .collect();
            match ids.len() {
                0 => {}
                1 => {
                    if let Some(manifest) = ids.into_iter().next().and_then(by_id) {
                        return Ok((manifest, None));
                    }
                }
                _ => {
                    return Err(ImageError::Ambiguous {
                        prefix: prefix.to_string(),
                        candidates: ids.iter().map(|d| d.short().to_string()).collect(),
                    })
                }
            }
        }
        match parsed {
            Err(error) if !is_prefix => Err(error),
            _ => Err(not_found()),
        }
    }

    /// By `name[:tag]`, `name@digest`, full or short (≥4 hex) image id.
    /// Every layer of the result is unpacked.
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let index = Index::load(&self.root)?;
        let (manifest, name) = self.lookup(&index, reference)?;
        let image = self.load_stored(&manifest)?;
        let layers = self.ensure_layers(&image)?;
        Ok(ResolvedImage {
            id: image.config_digest.to_string(),
            name,
            config: image.config,
            layers,
        })
    }

    /// One entry per image id, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let index = Index::load(&self.root)?;
        let mut by_id: BTreeMap<&Digest, ImageSummary> = BTreeMap::new();
        for (manifest, record) in &index.images {
            let summary = by_id.entry(&record.config).or_insert_with(|| ImageSummary {
                id: record.config.to_string(),
                names: Vec::new(),
                created: record.created.clone(),
                size: record.size,
            });
            summary.names.extend(index.names_of(manifest));
        }
        let mut list: Vec<ImageSummary> = by_id.into_values().collect();
        list.sort_by(|a, b| {
            let time = |s: &ImageSummary| s.created.as_deref().and_then(super::parse_rfc3339);
            time(b).cmp(&time(a)).then_with(|| a.id.cmp(&b.id))
        });
        Ok(list)
    }

    /// Points `target` (a `name[:tag]`) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let parsed = Reference::parse(target)?;
        let key = match (&parsed.digest, parsed.tagged()) {
            (None, Some(key)) => key,
            _ => {
                return Err(ImageError::InvalidReference {
                    reference: target.to_string(),
                    reason: "a tag target cannot contain a digest".to_string(),
                })
            }
        };
        Index::update(&self.root, |index| {
            let (manifest, _) = self.lookup(index, source)?;
            index.tag(&key, &manifest);
            Ok(())
        })
    }

    /// docker-inspect-like JSON for one image.
    pub fn inspect(&self, reference: &str) -> Result<serde_json::Value, ImageError> {
        let index = Index::load(&self.root)?;
        let (manifest, _) = self.lookup(&index, reference)?;
        let image = self.load_stored(&manifest)?;
        let record = index.images.get(&manifest);
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for m in index.manifests_of(&image.config_digest) {
            for name in index.names_of(&m) {
                let (repo, tag) = split_tagged(&name);
                repo_tags.push(format!("{}:{tag}", familiar(repo)));
                repo_digests.push(format!("{}@{m}", familiar(repo)));
            }
        }
        repo_digests.dedup();
        let config = &image.config;
        Ok(serde_json::json!({
            "Id": image.config_digest.to_string(),
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Created": config.created(),
            "Author": config.author().clone().unwrap_or_default(),
            "Architecture": config.architecture().to_string(),
            "Variant": config.variant(),
            "Os": config.os().to_string(),
            "Size": record.map_or(0, |r| r.size),
            "Config": config.config(),
            "RootFS": {
                "Type": "layers",
                "Layers": image.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
            "History": config.history(),
            "Descriptor": {
                "mediaType": image.manifest.media_type().as_ref().map_or_else(
                    || "application/vnd.oci.image.manifest.v1+json".to_string(),
                    ToString::to_string,
                ),
                "digest": manifest.to_string(),
                "size": self.blobs.blob_size(&manifest)?,
            },
        }))
    }
}
