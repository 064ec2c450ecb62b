//! `berth image build`: flags → [`BuildRequest`]; the image id on stdout,
//! step progress on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::build::{build_image, BuildRequest};
use crate::store::Root;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name the image `name[:tag]` (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; a relative path is
    /// looked up in the current directory, then in CONTEXT).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A build-time variable `KEY=VALUE` (`KEY` alone takes it from the
    /// environment); repeatable.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the build cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Pull base images even when they are stored.
    #[arg(long)]
    pub pull: bool,
    /// A label `KEY=VALUE` on the image (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

pub fn run(root: &Root, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let mut labels = Vec::new();
    for (key, value) in crate::cli::key_values(&args.labels, "--label")? {
        labels.push((key, value));
    }
    let mut build_args = Vec::new();
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some(("", _)) => bail!("invalid --build-arg {arg:?}: expected KEY=VALUE"),
            Some((key, value)) => build_args.push((key.to_string(), Some(value.to_string()))),
            None => build_args.push((arg.clone(), None)),
        }
    }
    let request = BuildRequest {
        context: args.context.clone(),
        dockerfile: args.file.clone(),
        dockerfile_inline: None,
        args: build_args,
        target: args.target.clone(),
        tags: args.tags.clone(),
        labels,
        no_cache: args.no_cache,
        pull: args.pull,
        quiet: args.quiet,
    };
    // `-f` relative to the current directory, as docker reads it.
    let request = match &request.dockerfile {
        Some(file) if file.is_relative() && file.exists() => BuildRequest {
            dockerfile: Some(std::env::current_dir()?.join(file)),
            ..request
        },
        _ => request,
    };
    let id = build_image(root, &request)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
