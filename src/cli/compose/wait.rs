//! `berth wait SERVICE…`: blocks until the services' containers exit,
//! printing each exit code; exits with the code of the last one to exit
//! (compose `wait`). `--down-project` runs `down` once the first exits.

use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::bail;
use clap::Args;

use super::{containers, operation, project_name};
use crate::cli::{load_project, Cli};
use crate::engine::project::DownRequest;
use crate::runtime::lifecycle;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Stop and remove the project when the first container exits.
    #[arg(long)]
    pub down_project: bool,
    #[arg(required = true)]
    pub services: Vec<String>,
}

pub fn wait(cli: &Cli, args: &WaitArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let project = project_name(cli)?;
    let list = containers(&root, &project, &args.services)?;
    if list.is_empty() {
        bail!("no containers for services {}", args.services.join(", "));
    }
    let (tx, rx) = mpsc::channel();
    for c in list.clone() {
        let tx = tx.clone();
        // Detached: with --down-project the verb returns while the others
        // still wait, and the process exit ends them.
        std::thread::spawn(move || {
            let code = lifecycle::wait_exit(&c, None).map(Option::unwrap_or_default);
            let _ = tx.send((c.config.name.clone(), code));
        });
    }
    drop(tx);
    let mut last = 0;
    let mut failed = false;
    for (name, code) in rx {
        match code {
            Ok(code) => {
                println!("container {name:?} exited with status code {code}");
                last = code;
            }
            Err(e) => {
                eprintln!("waiting for {name}: {e}");
                failed = true;
            }
        }
        if args.down_project {
            let loaded = load_project(cli, false)?;
            let body = serde_json::json!({ "project": loaded.project, "request": DownRequest::default() });
            operation(&root, &format!("/v1/projects/{}/down", loaded.project.name), &body)?;
            break;
        }
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::from(u8::try_from(last.clamp(0, 255)).unwrap_or(255)))
}
