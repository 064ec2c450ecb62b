//! `berth container cp|export|commit`: a container's files and its image.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{ArgAction, Args};

use crate::image::ImageStore;
use crate::runtime::config::Status;
use crate::runtime::container::{self, Container};
use crate::runtime::files::{self, CopyOptions};
use crate::runtime::lifecycle;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode: keep uid/gid (default: the copy belongs to root).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow a symlink given as SRC.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// `CONTAINER:PATH`, a local path, or `-` for a tar stream on stdin.
    pub src: String,
    /// `CONTAINER:PATH`, a local path, or `-` for a tar stream on stdout.
    pub dst: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A Dockerfile instruction for the image config (repeatable).
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author (accepted for docker compatibility; not recorded yet).
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Pause a running container while committing.
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// `NAME[:TAG]` for the new image.
    pub name: Option<String>,
}

/// One side of `cp`, split the way docker does: an absolute path, or one
/// whose first part starts with `.`, is local even with a `:` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End<'a> {
    Local(&'a str),
    Container { name: &'a str, path: &'a str },
}

fn end(arg: &str) -> End<'_> {
    if arg.starts_with('/') {
        return End::Local(arg);
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() && !name.starts_with('.') && !name.contains('/') => {
            End::Container { name, path }
        }
        _ => End::Local(arg),
    }
}

/// The container path as absolute (docker takes them relative to `/`).
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

pub fn cp(root: &Root, args: &CpArgs) -> anyhow::Result<ExitCode> {
    let options = CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    match (end(&args.src), end(&args.dst)) {
        (End::Container { .. }, End::Container { .. }) => bail!("copying between containers is not supported"),
        (End::Local(_), End::Local(_)) => bail!("must specify at least one container source"),
        (End::Local(src), End::Container { name, path }) => {
            let c = container::find(root, name)?;
            let path = absolute(path);
            files::with_container_root(root, &c, |fs_root| {
                if src == "-" {
                    files::copy_in_tar(fs_root, io::stdin().lock(), &path, options)
                } else {
                    files::copy_in(fs_root, Path::new(src), &path, options)
                }
            })
            .with_context(|| format!("copying {src} to {}:{path}", c.config.name))?;
        }
        (End::Container { name, path }, End::Local(dst)) => {
            let c = container::find(root, name)?;
            let path = absolute(path);
            let label = c.config.name.clone();
            files::with_container_root(root, &c, |fs_root| {
                if dst == "-" {
                    let mut out = io::stdout().lock();
                    files::copy_out_tar(fs_root, &label, &path, &mut out, options)?;
                    out.flush().map_err(|e| files::FilesError::Tar(e.to_string()))
                } else {
                    files::copy_out(fs_root, &label, &path, Path::new(dst), options)
                }
            })
            .with_context(|| format!("copying {label}:{path} to {dst}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(root: &Root, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(root, &args.container)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => {
            if atty_stdout() {
                bail!("cowardly refusing to save to a terminal; use the -o flag or redirect");
            }
            Box::new(io::stdout().lock())
        }
    };
    files::export_tar(root, &c, &mut out).with_context(|| format!("exporting container {}", c.config.name))?;
    out.flush().context("writing the export")?;
    Ok(ExitCode::SUCCESS)
}

fn atty_stdout() -> bool {
    nix::unistd::isatty(io::stdout()).unwrap_or(false)
}

pub fn commit(root: &Root, args: &CommitArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(root, &args.container)?;
    if args.author.is_some() {
        eprintln!("WARN: --author is not recorded in berth images yet; ignoring it");
    }
    let store = ImageStore::open(root)?;
    let parent = store
        .resolve(&c.config.image_id)
        .with_context(|| format!("the image of container {}", c.config.name))?;
    // As docker: a paused container cannot change its upper dir mid-commit.
    let paused = args.pause && c.state()?.status == Status::Running;
    if paused {
        lifecycle::pause(root, &c)?;
    }
    let result = store.commit(
        &parent,
        &c.upper(),
        &args.changes,
        args.message.as_deref(),
        args.name.as_deref(),
    );
    if paused {
        lifecycle::unpause(root, &c)?;
    }
    let id = result
        .map_err(|e| anyhow::anyhow!(e.chain()))
        .with_context(|| commit_context(&c))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

fn commit_context(c: &Container) -> String {
    format!("committing container {}", c.config.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments_split_like_docker() {
        assert_eq!(
            end("web:/etc/hosts"),
            End::Container {
                name: "web",
                path: "/etc/hosts"
            }
        );
        assert_eq!(
            end("web:etc"),
            End::Container {
                name: "web",
                path: "etc"
            }
        );
        assert_eq!(end("/tmp/a:b"), End::Local("/tmp/a:b"));
        assert_eq!(end("./a:b"), End::Local("./a:b"));
        assert_eq!(end("dir/a:b"), End::Local("dir/a:b"));
        assert_eq!(end("-"), End::Local("-"));
        assert_eq!(absolute("etc"), "/etc");
    }
}
