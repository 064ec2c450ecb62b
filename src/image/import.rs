//! `import`: a rootfs tarball becomes a one-layer image.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os, RootFsBuilder,
};

use super::changes::apply_changes;
use super::digest::Digest;
use super::reference::Reference;
use super::store::ImageStore;
use super::unpack::{detect_compression, Compression};
use super::ImageError;

/// The host architecture in GOARCH terms, as image configs name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

pub(super) fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// A config for a new image: `base` (or an empty linux config) with
/// `diff_ids` appended, `changes` applied and a history line added.
pub(super) fn build_config(
    base: Option<&ImageConfiguration>,
    diff_ids: &[Digest],
    changes: &[String],
    created_by: &str,
    comment: Option<&str>,
) -> Result<ImageConfiguration, ImageError> {
    let oci = |e: oci_spec::OciSpecError| ImageError::InvalidImage {
        image: "(new)".to_string(),
        reason: e.to_string(),
    };
    let now = super::now_rfc3339();
    let mut config = match base {
        Some(base) => base.clone(),
        None => ImageConfigurationBuilder::default()
            .architecture(Arch::from(host_arch()))
            .os(Os::Linux)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(Vec::<String>::new())
                    .build()
                    .map_err(oci)?,
            )
            .build()
            .map_err(oci)?,
    };
    let mut exec = match config.config() {
        Some(exec) => exec.clone(),
        None => ConfigBuilder::default().build().map_err(oci)?,
    };
    apply_changes(&mut exec, changes)?;
    config.set_config(Some(exec));
    config
        .rootfs_mut()
        .diff_ids_mut()
        .extend(diff_ids.iter().map(ToString::to_string));
    let mut history = HistoryBuilder::default()
        .created(now.clone())
        .created_by(created_by.to_string());
    if let Some(comment) = comment {
        history = history.comment(comment.to_string());
    }
    let history = history.build().map_err(oci)?;
    config.history_mut().get_or_insert_with(Vec::new).push(history);
    config.set_created(Some(now));
    Ok(config)
}

impl ImageStore {
    /// Like `docker import`: `tarball` (a path, or `-` for stdin; plain,
    /// gzip or zstd) becomes the single layer of a new image, named `name`
    /// if not empty. Returns the image id.
    pub fn import_rootfs(&self, tarball: &Path, name: &str, changes: &[String]) -> Result<String, ImageError> {
        self.import_with_message(tarball, name, changes, None)
    }

    /// [`Self::import_rootfs`] with a history comment (`-m`).
    pub fn import_with_message(
        &self,
        tarball: &Path,
        name: &str,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<String, ImageError> {
        // Validate everything before storing anything.
        let key = if name.is_empty() {
            None
        } else {
            let parsed = Reference::parse(name)?;
            Some(parsed.tagged().ok_or_else(|| ImageError::InvalidReference {
                reference: name.to_string(),
                reason: "an import target cannot contain a digest".to_string(),
            })?)
        };
        build_config(None, &[], changes, "", None)?;
        let _content = self.content_lock()?;
        let reader: Box<dyn Read> = if tarball == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(File::open(tarball).map_err(ImageError::io("cannot open", tarball))?)
        };
        let (blob, _) = self.blobs.write_blob_from_reader(reader, None)?;
        let mut head = [0_u8; 4];
        let n = self.blobs.open_blob(&blob)?.read(&mut head).unwrap_or(0);
        let media_type = layer_media_type(detect_compression(None, &head[..n])?);
        let staged = self.snapshots.stage(self.blobs.open_blob(&blob)?, Some(media_type))?;
        let diff_id = staged.layer.diff_id.clone();
        // A single-layer stack: its chain id is its diff id.
        self.snapshots.publish(staged, &diff_id)?;
        let source = if tarball == Path::new("-") {
            "-".to_string()
        } else {
            tarball.display().to_string()
        };
        let config = build_config(None, &[diff_id], changes, &format!("berth import {source}"), message)?;
        let config_bytes = serde_json::to_vec(&config).map_err(ImageError::json("image config"))?;
        let (config_digest, _) = self.blobs.write_blob(&config_bytes)?;
        let manifest = self.write_manifest(
            self.descriptor("application/vnd.oci.image.config.v1+json", &config_digest)?,
            vec![self.descriptor(media_type, &blob)?],
        )?;
        let id = self.register(&manifest, key.as_slice())?;
        Ok(id.to_string())
    }
}
