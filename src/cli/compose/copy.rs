//! `berth cp SERVICE:SRC DST` and `cp SRC SERVICE:DST`: `berth container
//! cp` on the service's containers. From a service: its replica `--index`
//! (default the first). To a service: that replica, or every replica when
//! no `--index` is given (compose's behaviour).

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;

use super::{containers, project_name};
use crate::cli::container::{cp as container_cp, CpArgs as ContainerCpArgs};
use crate::cli::Cli;
use crate::engine::labels;
use crate::runtime::container::Container;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode: keep uid/gid.
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow a symlink given as SRC.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Which replica (1-based).
    #[arg(long)]
    pub index: Option<u32>,
    /// `SERVICE:PATH`, a local path, or `-` for a tar stream on stdin.
    pub src: String,
    /// `SERVICE:PATH`, a local path, or `-` for a tar stream on stdout.
    pub dst: String,
}

/// `SERVICE:PATH` → `(service, path)`; a path that is absolute, or whose
/// part before the colon starts with `.` or holds a `/`, is local (the
/// same rule as `container cp`).
fn service_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') {
        return None;
    }
    let (service, path) = arg.split_once(':')?;
    (!service.is_empty() && !service.starts_with('.') && !service.contains('/')).then_some((service, path))
}

fn number(c: &Container) -> Option<u32> {
    c.config.labels.get(labels::NUMBER).and_then(|n| n.parse().ok())
}

pub fn cp(cli: &Cli, args: &CpArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let (service, path, to_service) = match (service_path(&args.src), service_path(&args.dst)) {
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("one of the source or destination must be SERVICE:PATH"),
        (Some((service, path)), None) => (service, path, false),
        (None, Some((service, path))) => (service, path, true),
    };
    let project = project_name(cli)?;
    let mut targets = containers(&root, &project, &[service.to_string()])?;
    if targets.is_empty() {
        bail!("no container found for service {service:?}");
    }
    match args.index {
        Some(index) => {
            targets.retain(|c| number(c) == Some(index));
            if targets.is_empty() {
                return Err(anyhow!("service {service:?} has no container with index {index}"));
            }
        }
        None if !to_service => targets.truncate(1),
        None => {}
    }
    for c in &targets {
        let end = format!("{}:{path}", c.config.name);
        let (src, dst) = if to_service {
            (args.src.clone(), end)
        } else {
            (end, args.dst.clone())
        };
        container_cp(
            &root,
            &ContainerCpArgs {
                archive: args.archive,
                follow_link: args.follow_link,
                src,
                dst,
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths() {
        assert_eq!(service_path("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(service_path("/tmp/a:b"), None);
        assert_eq!(service_path("./a:b"), None);
        assert_eq!(service_path("dir/a:b"), None);
        assert_eq!(service_path("-"), None);
        assert_eq!(service_path(":x"), None);
    }
}
