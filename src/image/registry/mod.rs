//! Pulling, pushing and searching images of OCI / docker registries over
//! the Distribution API.
//!
//! - [`config`]: the engine's registry settings (mirrors, insecure hosts).
//! - [`credentials`]: berth's credentials file and docker's `config.json`.
//! - [`auth`]: `WWW-Authenticate` challenges, basic auth and bearer tokens.
//! - [`client`]: one registry endpoint over HTTP, with retries.
//! - [`blob`]: blob downloads that resume where the connection broke.
//! - `layer`: one layer downloaded and unpacked at the same time.
//! - [`manifest`]: manifests, indexes and platform selection (pure).
//! - [`pull`]: a pull from reference to registered image.
//! - [`push`]: a push of a stored image to a repository and tag.
//! - [`search`]: Docker Hub's search API, or a registry's catalog.
//! - `upload`: what a push sends, blob by blob, and its manifest PUT.
//! - [`progress`]: what a pull reports as it goes.

pub mod auth;
pub mod blob;
pub mod client;
pub mod config;
pub mod credentials;
mod layer;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
mod upload;

use std::path::PathBuf;

use super::digest::Digest;
use super::ImageError;

pub use config::EngineConfig;
pub use credentials::{CredentialStore, Credentials};
pub use manifest::Platform;
pub use progress::{Progress, ProgressMode};
pub use pull::{PullOptions, PullOutcome, Puller};
pub use push::{PushError, PushOutcome, Pusher};

/// Everything a pull, login or logout can fail with. Messages do not repeat
/// their source: print the chain.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot pull {image}")]
    Pull {
        image: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("invalid platform {platform:?}: expected os/arch[/variant], like linux/arm64")]
    InvalidPlatform { platform: String },
    #[error("invalid manifest: {reason}")]
    InvalidManifest { reason: String },
    #[error("unsupported manifest type {media_type:?} (berth pulls OCI and docker schema 2 images)")]
    UnsupportedManifest { media_type: String },
    #[error("no image for platform {wanted} (available: {available}); choose one with --platform")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("the image is for {actual}, not the requested {wanted}")]
    PlatformMismatch { wanted: String, actual: String },
    #[error("cannot reach registry {registry} (is it running, and is the address right?)")]
    Unreachable {
        registry: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("repository {repository} not found on {registry} (or it needs `berth login {registry}`)")]
    RepositoryNotFound { registry: String, repository: String },
    #[error("manifest {reference} not found: no such tag or digest in {repository}")]
    ManifestNotFound { repository: String, reference: String },
    #[error("{registry} refused the credentials{}: check the user name and password (`berth login {registry}`)", detail_suffix(.detail))]
    Unauthorized { registry: String, detail: String },
    #[error("{registry} requires authentication{}: run `berth login {registry}`", detail_suffix(.detail))]
    AuthenticationRequired { registry: String, detail: String },
    #[error("access to {repository} on {registry} denied{}", detail_suffix(.detail))]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{url} answered {status}{}", detail_suffix(.detail))]
    Status { url: String, status: u16, detail: String },
    #[error("the token server {realm} gave no usable token: {reason}")]
    Token { realm: String, reason: String },
    #[error("download of blob {digest} failed after {attempts} attempts")]
    Download {
        digest: Digest,
        attempts: u32,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("the connection broke after {received} of {expected} bytes")]
    Truncated {
        received: u64,
        expected: u64,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("cannot read the answer of {url}")]
    Body {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} is larger than the {expected} bytes its descriptor states")]
    Oversized { digest: Digest, expected: u64 },
    #[error("stopped: another download of this pull failed")]
    Cancelled,
    #[error("{context} {}", path.display())]
    File {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} {}: {reason}", path.display())]
    InvalidFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("invalid registry address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("cannot search {place} for {term:?}")]
    Search {
        place: String,
        term: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{registry} offers neither a search API nor a catalog (GET /v2/_catalog answered {status}){hint}")]
    NoCatalog {
        registry: String,
        status: String,
        hint: String,
    },
    #[error("{url} gave an answer berth cannot read: {reason}")]
    InvalidAnswer { url: String, reason: String },
    #[error(transparent)]
    Store(#[from] ImageError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl RegistryError {
    pub fn file(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RegistryError::File { context, path, source }
    }

    /// Worth another try: the network or the server hiccupped.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Truncated { .. } | RegistryError::Body { .. } => true,
            RegistryError::Http { source, .. } => !source.is_builder() && !source.is_redirect(),
            RegistryError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
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
}
