//! `berth events [--json] [SERVICE…]`: follows the lifecycle events of the
//! project's containers until interrupted. Events are derived by polling
//! the container states (see `engine::events` for why and what it means).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::project_name;
use crate::cli::Cli;
use crate::engine::events::{diff, snapshot};
use crate::store::Root;

/// Short enough that a `run` of a second is seen as its start and its
/// exit; each poll reads one small state file per container.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    pub services: Vec<String>,
}

pub fn events(cli: &Cli, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let project = project_name(cli)?;
    let mut before = snapshot(&root, &project, &args.services)?;
    let mut out = std::io::stdout().lock();
    loop {
        std::thread::sleep(POLL);
        let after = snapshot(&root, &project, &args.services)?;
        for event in diff(&before, &after, &crate::rfc3339::now()) {
            let line = if args.json {
                serde_json::to_string(&event)?
            } else {
                event.line()
            };
            // A reader that went away (`| head`) ends the follow quietly.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        before = after;
    }
}
