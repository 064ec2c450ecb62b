//! `commit`: a container's overlay upper dir becomes a new layer on top of
//! its image.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::digest::{Digest, HashingWriter};
use super::import::{build_config, layer_media_type};
use super::index::Index;
use super::pack::{write_tree, TreeKind};
use super::reference::Reference;
use super::store::{ImageStore, ResolvedImage};
use super::unpack::Compression;
use super::{staging_name, ImageError};

impl ImageStore {
    /// Writes an overlay upper dir as a gzip layer blob (whiteouts as
    /// `.wh.` entries, opaque dirs as `.wh..wh..opq`): the tar is staged
    /// once, hashed for the diff id, then compressed into the blob store.
    /// Returns (diff id, blob digest); the staging file is always removed.
    pub(super) fn gzip_layer_from_upper(
        &self,
        upper: &Path,
        purpose: &str,
        level: flate2::Compression,
    ) -> Result<(Digest, Digest), ImageError> {
        let tmp = self.root.tmp_dir();
        crate::store::create_private_dir(&tmp).map_err(ImageError::io("cannot create", &tmp))?;
        let staging = tmp.join(staging_name(purpose));
        let result = (|| {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staging)
                .map_err(ImageError::io("cannot create", &staging))?;
            // Pass 1: the uncompressed tar, hashed for the diff id.
            let mut writer = HashingWriter::new(file);
            write_tree(upper, &mut writer, TreeKind::OverlayUpper)?;
            let (mut file, diff_id, _) = writer.finish();
            file.flush().map_err(ImageError::io("cannot write", &staging))?;
            // Pass 2: the gzip blob, hashed by the blob store.
            let tar = File::open(&staging).map_err(ImageError::io("cannot open", &staging))?;
            let gzip = flate2::read::GzEncoder::new(tar, level);
            let (blob, _) = self.blobs.write_blob_from_reader(gzip, None)?;
            Ok((diff_id, blob))
        })();
        let _ = fs::remove_file(&staging);
        result
    }

    /// Turns `upper_dir` into a gzip layer on top of `parent` (overlay
    /// whiteouts → `.wh.` files, opaque dirs → `.wh..wh..opq`), applies
    /// `changes`, names it `name` if given, and returns the image id.
    pub fn commit(
        &self,
        parent: &ResolvedImage,
        upper_dir: &Path,
        changes: &[String],
        message: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, ImageError> {
        let key = match name {
            Some(name) => Some(
                Reference::parse(name)?
                    .tagged()
                    .ok_or_else(|| ImageError::InvalidReference {
                        reference: name.to_string(),
                        reason: "a commit target cannot contain a digest".to_string(),
                    })?,
            ),
            None => None,
        };
        build_config(Some(&parent.config), &[], changes, "", None)?;
        let _content = self.content_lock()?;
        let (parent_manifest, _) = self.lookup(&Index::load(&self.root)?, &parent.id)?;
        let base = self.load_stored(&parent_manifest)?;

        let (diff_id, blob) = self.gzip_layer_from_upper(upper_dir, "commit", flate2::Compression::default())?;

        let media_type = layer_media_type(Compression::Gzip);
        let config = build_config(Some(&base.config), &[diff_id], changes, "berth commit", message)?;
        let config_bytes = serde_json::to_vec(&config).map_err(ImageError::json("image config"))?;
        let (config_digest, _) = self.blobs.write_blob(&config_bytes)?;
        let mut layers = Vec::new();
        for (digest, media_type) in base.layer_blobs()? {
            layers.push(self.descriptor(&media_type, &digest)?);
        }
        layers.push(self.descriptor(media_type, &blob)?);
        let manifest = self.write_manifest(
            self.descriptor("application/vnd.oci.image.config.v1+json", &config_digest)?,
            layers,
        )?;
        let id = self.register(&manifest, key.as_slice())?;
        Ok(id.to_string())
    }
}
