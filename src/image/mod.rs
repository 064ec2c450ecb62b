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

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;

pub use blobs::BlobStore;
pub use changes::apply_changes;
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

/// Ids of the images containers under `root` were created from.
///
/// For now: the `"image_id"` field of `<root>/containers/*/config.json`.
/// The runtime owns that file and may change how this is answered.
pub fn images_in_use(root: &crate::store::Root) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(root.containers_dir()) else {
        return ids;
    };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("config.json")) else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if let Some(id) = value.get("image_id").and_then(|v| v.as_str()) {
            ids.insert(id.to_string());
        }
    }
    ids
}

/// The current time as RFC 3339 (UTC, seconds), as image configs record it.
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(secs)
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses the RFC 3339 timestamps image configs carry
/// (`2024-01-02T03:04:05.123Z`, `…+02:00`) into seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, m) = time[i + 1..].split_once(':')?;
        let sign = if &time[i..=i] == "-" { -1 } else { 1 };
        (&time[..i], sign * (num(h)? * 3600 + num(m)? * 60))
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.splitn(3, ':');
    let (hh, mm, ss) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

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
    fn rfc3339_round_trips() {
        for secs in [0_u64, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)), Some(secs as i64));
        }
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }
}
