//! Dockerfile builds with berth's own runtime (`berth image build`, and
//! compose `build:` through [`build_image`]).
//!
//! - [`dockerfile`]: the parser (pure): text → stages of instructions.
//! - [`ignore`]: `.dockerignore` and globs (pure).
//! - `context`: which context (or stage) files a COPY/ADD names, and
//!   their content hash for the cache.
//! - `config_ops`: metadata instructions applied to the image config the
//!   way docker does (pure).
//! - `cache`: step results keyed by parent, instruction and inputs.
//! - `executor`: stages in order; `run_step` runs RUN in a container of
//!   the image so far; `copy_step` writes COPY/ADD through an overlay.
//!
//! Each RUN/COPY/ADD becomes one layer (the diff of an overlay upper dir,
//! deletions as whiteouts); nothing is registered in the image store
//! until the last step of the target stage succeeded, so a failed build
//! leaves no image behind.

mod cache;
mod config_ops;
mod context;
mod copy_step;
pub mod dockerfile;
mod executor;
pub mod ignore;
mod run_step;

use std::path::PathBuf;

use crate::image::ImageError;
use crate::store::Root;

pub use dockerfile::ParseError;

/// What to build; the engine fills it from compose `build:`, the CLI
/// from `berth image build`.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (relative paths are relative to the context);
    /// `None` means `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text itself (compose `dockerfile_inline`); wins
    /// over `dockerfile`.
    pub dockerfile_inline: Option<String>,
    /// `--build-arg`: a `None` value takes the caller's environment.
    pub args: Vec<(String, Option<String>)>,
    pub target: Option<String>,
    /// `name[:tag]`s for the result.
    pub tags: Vec<String>,
    /// Labels added to the final image.
    pub labels: Vec<(String, String)>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    /// No step progress on stderr.
    pub quiet: bool,
}

/// Everything that can fail in a build; messages do not repeat their
/// source (print the chain: `{:#}` through anyhow, or [`BuildError::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A step failed; the source says how.
    #[error("{file}:{line}")]
    At {
        file: String,
        line: usize,
        #[source]
        source: Box<BuildError>,
    },
    #[error("RUN {command} exited with {code}{}", tail_text(tail))]
    RunFailed {
        command: String,
        code: i32,
        /// The last lines the command printed.
        tail: Vec<String>,
    },
    #[error("{message}")]
    Invalid { message: String },
    #[error("{context} {}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}")]
    Image {
        context: String,
        #[source]
        source: ImageError,
    },
    #[error("pulling {image}")]
    Pull {
        image: String,
        #[source]
        source: crate::image::registry::RegistryError,
    },
    #[error("RUN container")]
    Runtime {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut text = String::from("; last output:");
    for line in tail {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

impl BuildError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        BuildError::Invalid {
            message: message.into(),
        }
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BuildError::Io { context, path, source }
    }

    pub(crate) fn image(context: impl Into<String>) -> impl FnOnce(ImageError) -> Self {
        let context = context.into();
        move |source| BuildError::Image { context, source }
    }

    pub(crate) fn runtime(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        BuildError::Runtime {
            source: Box::new(source),
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

/// Builds the image `request` describes and returns its id
/// (`sha256:…`), tagged with `request.tags`.
pub fn build_image(root: &Root, request: &BuildRequest) -> Result<String, BuildError> {
    executor::build(root, request)
}
