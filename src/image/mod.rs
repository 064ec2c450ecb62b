//! Local images: content store, references, layer unpacking, archives.
//!
//! Layout under the engine root (see [`crate::store::Root`]):
//! - `images/blobs/sha256/<hex>`: content-addressed blobs (manifests,
//!   configs, layers as shipped), verified while written.
//! - `images/index.json`: references (`name:tag` → manifest digest) and
//!   image records (manifest digest → config digest, created, size).
//! - `images/snapshots/<chain id hex>/fs`: each layer unpacked once,
//!   shared between images, published by rename when complete.
//!
//! The image id is the config digest, as with docker.

mod archive;
mod blobs;
mod changes;
mod commit;
mod draft;

pub mod digest;
mod import;
mod pack;

mod index;

pub mod reference;
pub mod registry;
mod remove;
mod snapshots;
mod store;

mod unpack;
mod xattrs;

use std::io;
use std::path::PathBuf;

pub use blobs::BlobStore;
pub use changes::apply_changes;
pub use draft::{ImageDraft, LayerRef};
pub use pack::write_rootfs_tar;

pub use digest::Digest;

pub use reference::Reference;
pub use store::{ImageStore, ImageSummary, ResolvedImage};

/// Everything that can go wrong with images; each variant names what to fix.
///
/// Messages do not repeat their source: print the chain (`{:#}` through
/// anyhow, or [`ImageError::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{context} {}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("no such image: {reference}")]
    NotFound { reference: String },
    #[error("image id prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous { prefix: String, candidates: Vec<String> },
    #[error("content of {what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {digest} is missing from the store")]
    BlobMissing { digest: Digest },
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeLayerEntry { entry: String, reason: String },
    #[error("layer {layer}")]
    Layer {
        layer: Digest,
        #[source]
        source: Box<ImageError>,
    },
    #[error("cannot unpack layer entry {entry:?}")]
    Unpack {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image {image}: {reason}")]
    InvalidImage { image: String, reason: String },
    #[error("invalid image archive {}: {reason}", path.display())]
    InvalidArchive { path: PathBuf, reason: String },
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { media_type: String, what: String },
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    #[error("image {reference} ({id}) is in use by a container; use --force to untag only")]
    InUse { reference: String, id: String },
    #[error("image {reference} ({id}) is referenced by several names; use --force or remove by name")]
    MultipleReferences { reference: String, id: String },
}

impl ImageError {
    /// An I/O error with what was being done and where.
    pub fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { context, path, source }
    }

    /// This error and its sources, joined with `: `.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(error) = source {
            text.push_str(&format!(": {error}"));
            source = error.source();
        }
        text
    }

    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| ImageError::Json { what, source }
    }
}

pub(crate) use crate::rfc3339::now_secs as now_rfc3339;
pub use crate::rfc3339::{format_secs as format_rfc3339, parse_secs as parse_rfc3339};

/// Sizes as docker prints them (decimal units): `4.26MB`, `512B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$}{}", UNITS[unit])
}

/// A unique name for a staging entry under the root's tmp dir.
pub(crate) fn staging_name(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{kind}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }
}
