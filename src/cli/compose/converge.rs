//! `create` (= `up --no-start`) and `scale` (= `up --scale … --no-recreate`
//! of the named services): both are the engine's `up` with other flags.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use super::operation;
use crate::cli::{load_project, Cli};
use crate::engine::project::UpRequest;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Build images before creating containers.
    #[arg(long)]
    pub build: bool,
    #[arg(long)]
    pub force_recreate: bool,
    #[arg(long)]
    pub no_recreate: bool,
    /// Pull images: always, missing (default), never.
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    #[arg(long)]
    pub remove_orphans: bool,
    /// `SERVICE=N` (repeatable).
    #[arg(long)]
    pub scale: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Don't start the services they depend on.
    #[arg(long)]
    pub no_deps: bool,
    /// `SERVICE=N` (at least one).
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub scale: Vec<String>,
}

/// `SERVICE=N` pairs.
fn replicas(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    pairs
        .iter()
        .map(|pair| {
            let (service, n) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid scale {pair:?}: expected SERVICE=NUMBER"))?;
            let n = n
                .parse::<u64>()
                .map_err(|_| anyhow!("invalid scale {pair:?}: {n:?} is not a number"))?;
            Ok((service.to_string(), n))
        })
        .collect()
}

fn up(cli: &Cli, request: &UpRequest) -> anyhow::Result<ExitCode> {
    let project = load_project(cli, false)?.project;
    let root = Root::new(&cli.root);
    root.ensure()
        .map_err(|e| anyhow!("creating the engine root {}: {e}", root.path().display()))?;
    let body = serde_json::json!({ "project": project, "request": request });
    operation(&root, &format!("/v1/projects/{}/up", project.name), &body)?;
    Ok(ExitCode::SUCCESS)
}

pub fn create(cli: &Cli, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    up(
        cli,
        &UpRequest {
            services: args.services.clone(),
            build: args.build,
            force_recreate: args.force_recreate,
            no_recreate: args.no_recreate,
            pull: args.pull.clone(),
            remove_orphans: args.remove_orphans,
            scale: replicas(&args.scale)?,
            no_start: true,
            ..UpRequest::default()
        },
    )
}

pub fn scale(cli: &Cli, args: &ScaleArgs) -> anyhow::Result<ExitCode> {
    let scale = replicas(&args.scale)?;
    up(
        cli,
        &UpRequest {
            services: scale.keys().cloned().collect(),
            scale,
            no_recreate: true,
            no_deps: args.no_deps,
            ..UpRequest::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_pairs() {
        let map = replicas(&["web=3".into(), "db=0".into()]).unwrap();
        assert_eq!(map, BTreeMap::from([("db".into(), 0), ("web".into(), 3)]));
        assert!(replicas(&["web".into()]).is_err());
        assert!(replicas(&["web=x".into()]).is_err());
    }
}
