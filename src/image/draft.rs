//! Images under construction (for `berth image build`): a config kept as
//! JSON, so docker's config keys that the OCI types lack (`Healthcheck`,
//! `OnBuild`, `Shell`) survive, plus its layer list. Layers are written
//! as blobs one at a time; an image is registered only when the caller
//! stores the finished draft.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;

use super::digest::{chain_ids, Digest};
use super::import::{host_arch, layer_media_type};
use super::index::Index;
use super::reference::Reference;
use super::store::ImageStore;
use super::unpack::Compression;
use super::ImageError;

/// One layer: its blob as the manifest lists it, and its diff id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub blob: Digest,
    pub media_type: String,
    pub diff_id: Digest,
}

/// An image being built.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageDraft {
    /// The image config (OCI/docker JSON).
    pub config: serde_json::Value,
    pub layers: Vec<LayerRef>,
}

impl ImageDraft {
    /// An empty image (`FROM scratch`) for the host platform.
    pub fn scratch() -> ImageDraft {
        ImageDraft {
            config: serde_json::json!({
                "architecture": host_arch(),
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
        }
    }

    /// A stable identity of the draft's content (its config names every
    /// layer by diff id), for build cache keys.
    pub fn identity(&self) -> Digest {
        Digest::of(self.config.to_string().as_bytes())
    }
}

impl ImageStore {
    /// The stored image `reference` names, as a draft to build on; with
    /// its id.
    pub fn draft_of(&self, reference: &str) -> Result<(String, ImageDraft), ImageError> {
        let (manifest, _) = self.lookup(&Index::load(&self.root)?, reference)?;
        let image = self.load_stored(&manifest)?;
        let config = serde_json::from_slice(&self.blobs.read_blob(&image.config_digest)?)
            .map_err(ImageError::json(format!("config {}", image.config_digest)))?;
        let layers = image
            .layer_blobs()?
            .into_iter()
            .zip(&image.diff_ids)
            .map(|((blob, media_type), diff_id)| LayerRef {
                blob,
                media_type,
                diff_id: diff_id.clone(),
            })
            .collect();
        Ok((image.config_digest.to_string(), ImageDraft { config, layers }))
    }

    /// Whether every layer blob of `layers` is still stored (a cache
    /// entry whose blobs were collected is not usable).
    pub fn has_layers(&self, layers: &[LayerRef]) -> bool {
        layers.iter().all(|l| self.blobs.has_blob(&l.blob))
    }

    /// The unpacked snapshot dirs of `layers` (lowest first), unpacking
    /// the missing ones.
    pub fn layer_dirs(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>, ImageError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let mut dirs = Vec::with_capacity(layers.len());
        for (chain_id, layer) in chain_ids(&diff_ids).iter().zip(layers) {
            self.snapshots
                .ensure(chain_id, &layer.diff_id, Some(&layer.media_type), || {
                    self.blobs.open_blob(&layer.blob)
                })
                .map_err(|source| ImageError::Layer {
                    layer: layer.blob.clone(),
                    source: Box::new(source),
                })?;
            dirs.push(self.snapshots.fs_path(chain_id));
        }
        Ok(dirs)
    }

    /// Writes the overlay upper dir `upper` as a gzip layer blob
    /// (whiteouts as `.wh.` entries, opaque dirs as `.wh..wh..opq`).
    pub fn layer_from_upper(&self, upper: &Path) -> Result<LayerRef, ImageError> {
        // Fast compression: a build's layers are written on every cache
        // miss and read back at once.
        let (diff_id, blob) = self.gzip_layer_from_upper(upper, "build-layer", flate2::Compression::fast())?;
        Ok(LayerRef {
            blob,
            media_type: layer_media_type(Compression::Gzip).to_string(),
            diff_id,
        })
    }

    /// Registers a finished draft under `names` (`name[:tag]`); returns
    /// the image id.
    pub fn store_draft(&self, draft: &ImageDraft, names: &[String]) -> Result<String, ImageError> {
        let mut keys = Vec::new();
        for name in names {
            keys.push(
                Reference::parse(name)?
                    .tagged()
                    .ok_or_else(|| ImageError::InvalidReference {
                        reference: name.clone(),
                        reason: "a build tag cannot contain a digest".to_string(),
                    })?,
            );
        }
        let bytes = serde_json::to_vec(&draft.config).map_err(ImageError::json("image config"))?;
        // The store reads configs through the OCI types: refuse one they
        // would not load.
        serde_json::from_slice::<ImageConfiguration>(&bytes).map_err(ImageError::json("built image config"))?;
        let _content = self.content_lock()?;
        let (config_digest, _) = self.blobs.write_blob(&bytes)?;
        let mut layers = Vec::with_capacity(draft.layers.len());
        for layer in &draft.layers {
            layers.push(self.descriptor(&layer.media_type, &layer.blob)?);
        }
        let manifest = self.write_manifest(
            self.descriptor("application/vnd.oci.image.config.v1+json", &config_digest)?,
            layers,
        )?;
        let id = self.register(&manifest, &keys)?;
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_drafts_load_as_oci_configs_and_have_stable_identity() {
        let draft = ImageDraft::scratch();
        let bytes = serde_json::to_vec(&draft.config).unwrap();
        serde_json::from_slice::<ImageConfiguration>(&bytes).unwrap();
        assert_eq!(draft.identity(), ImageDraft::scratch().identity());
    }

    #[test]
    fn docker_only_keys_survive_in_the_draft_and_do_not_break_oci_loading() {
        let mut draft = ImageDraft::scratch();
        draft.config["config"]["Healthcheck"] = serde_json::json!({"Test": ["CMD", "true"]});
        draft.config["config"]["OnBuild"] = serde_json::json!(["RUN true"]);
        let bytes = serde_json::to_vec(&draft.config).unwrap();
        serde_json::from_slice::<ImageConfiguration>(&bytes).unwrap();
    }
}
