//! `berth run`: a one-off container of a service, in the foreground
//! attached to this terminal (its exit code becomes ours), or with `-d` in
//! the background. Dependencies are started first by the engine's `up`;
//! the container itself is created here, in the CLI process, since the
//! foreground session must attach to this terminal from its first byte.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use super::{operation, print_event};
use crate::cli::{attach, load_project, Cli};
use crate::engine::oneoff::{self, RunRequest};
use crate::engine::project::UpRequest;
use crate::runtime::lifecycle;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container name.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Set a variable (`KEY=VALUE`, or `KEY` to take it from this
    /// environment; repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Override the image's entrypoint (split as a shell would).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container name (default `<project>-<service>-run-<slug>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Don't start the services it depends on.
    #[arg(long)]
    pub no_deps: bool,
    /// Publish the service's ports (never published otherwise).
    #[arg(long)]
    pub service_ports: bool,
    /// No pseudo-terminal (the default when stdin or stdout is not one).
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub service: String,
    /// The command, replacing the service's.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `-e`: `KEY=VALUE`, or `KEY` from this environment (left out when unset,
/// as compose does).
fn environment(pairs: &[String]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.to_string(), Some(value.to_string())),
            None => (pair.clone(), std::env::var(pair).ok()),
        })
        .collect()
}

fn is_terminal(fd: impl std::os::fd::AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let project = load_project(cli, false)?.project;
    let root = Root::new(&cli.root);
    root.ensure()
        .map_err(|e| anyhow!("creating the engine root {}: {e}", root.path().display()))?;
    let service = project
        .services
        .get(&args.service)
        .ok_or_else(|| anyhow!("no such service: {}", args.service))?;
    let dependencies: Vec<String> = service
        .depends_on
        .keys()
        .filter(|d| project.services.contains_key(*d))
        .cloned()
        .collect();
    if !args.no_deps && !dependencies.is_empty() {
        let request = UpRequest {
            services: dependencies,
            ..UpRequest::default()
        };
        let body = serde_json::json!({ "project": project, "request": request });
        operation(&root, &format!("/v1/projects/{}/up", project.name), &body)?;
    }
    let tty = !args.detach && !args.no_tty && is_terminal(std::io::stdin()) && is_terminal(std::io::stdout());
    let request = RunRequest {
        service: args.service.clone(),
        command: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env: environment(&args.env),
        name: args.name.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        service_ports: args.service_ports,
        tty,
        interactive: !args.detach,
        // In the foreground the CLI removes it after reading the exit
        // code; detached, its monitor does.
        auto_remove: args.rm && args.detach,
        removed_on_exit: args.rm,
    };
    let container = oneoff::create(&root, &project, &request, &|e| print_event(e))?;
    let ready = if args.no_deps {
        Ok(())
    } else {
        oneoff::wait_for_dependencies(&root, &project, &args.service)
    };
    let started = ready.map_err(anyhow::Error::from).and_then(|()| {
        if args.detach {
            lifecycle::start(&root, &container).map(|_| None)
        } else {
            lifecycle::start_attached(&root, &container).map(|(_, client)| Some(client))
        }
        .map_err(anyhow::Error::from)
    });
    let client = match started {
        Ok(client) => client,
        Err(e) => {
            // A one-off that cannot start is not left behind.
            let _ = lifecycle::remove_with_volumes(&root, &container, true);
            return Err(e);
        }
    };
    let Some(client) = client else {
        println!("{}", container.config.name);
        return Ok(ExitCode::SUCCESS);
    };
    attach::install_signal_handlers()?;
    let code = attach::session(client, &container, request.interactive, tty)?;
    if args.rm {
        lifecycle::remove_after_exit_with_volumes(&root, &container)?;
    }
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_and_names_from_this_environment() {
        let env = environment(&[
            "A=1".into(),
            "B=".into(),
            "BERTH_SURELY_UNSET_VAR".into(),
            "PATH".into(),
        ]);
        assert_eq!(env["A"].as_deref(), Some("1"));
        assert_eq!(env["B"].as_deref(), Some(""));
        assert_eq!(env["BERTH_SURELY_UNSET_VAR"], None);
        assert!(env["PATH"].is_some());
    }
}
