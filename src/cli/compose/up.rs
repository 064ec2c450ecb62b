//! `up` (detached and foreground), `down` and `logs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail};
use clap::Args;

use super::logs::{history, Style, Tail, POLL};
use super::{containers, operation, print_event, project_name};
use crate::cli::{load_project, Cli};
use crate::engine::project::{DownRequest, FetchRequest, UpReport, UpRequest};
use crate::runtime::config::Status;
use crate::runtime::lifecycle;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub force_recreate: bool,
    #[arg(long)]
    pub no_recreate: bool,
    #[arg(long)]
    pub no_deps: bool,
    #[arg(long)]
    pub always_recreate_deps: bool,
    #[arg(long)]
    pub remove_orphans: bool,
    #[arg(long)]
    pub no_start: bool,
    /// Build images before starting containers.
    #[arg(long)]
    pub build: bool,
    /// Pull images: always, missing (default), never.
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// `SERVICE=N` (repeatable).
    #[arg(long)]
    pub scale: Vec<String>,
    /// Wait until the services are running and healthy (implies -d).
    #[arg(long)]
    pub wait: bool,
    /// Seconds `--wait` waits at most.
    #[arg(long)]
    pub wait_timeout: Option<u64>,
    /// Stop timeout in seconds.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Stop every container when one exits (foreground).
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Exit with this service's exit code (implies --abort-on-container-exit).
    #[arg(long)]
    pub exit_code_from: Option<String>,
    /// Show only these services' logs (foreground).
    #[arg(long)]
    pub attach: Vec<String>,
    #[arg(long)]
    pub no_log_prefix: bool,
    #[arg(long)]
    pub no_color: bool,
    /// Watch the services' develop.watch paths and the stack file (see `berth watch`).
    #[arg(short = 'w', long)]
    pub watch: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes and anonymous volumes.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(long)]
    pub remove_orphans: bool,
    /// Stop timeout in seconds.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end of each container's log (`all` for everything).
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub no_color: bool,
    #[arg(long)]
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

/// SIGINT/SIGTERM received while `up` runs in the foreground.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_interrupt(_: i32) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

fn install_interrupt_handler() -> anyhow::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only increments an atomic.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

fn scale(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (service, n) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --scale {pair:?}: expected SERVICE=NUMBER"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| anyhow!("invalid --scale {pair:?}: {n:?} is not a number"))?;
        map.insert(service.to_string(), n);
    }
    Ok(map)
}

/// `configs`/`secrets` with an `environment` source take their content from
/// the caller's environment, here, before the project goes to the engine.
fn inline_environment_sources(project: &mut crate::spec::model::Project) -> anyhow::Result<()> {
    for (key, object) in project.configs.iter_mut().chain(project.secrets.iter_mut()) {
        if let (Some(variable), None) = (&object.environment, &object.content) {
            let value =
                std::env::var(variable).map_err(|_| anyhow!("{key}: environment variable {variable} is not set"))?;
            object.content = Some(value);
        }
    }
    Ok(())
}

pub fn up(cli: &Cli, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_project(cli, false)?;
    let mut project = loaded.project;
    inline_environment_sources(&mut project)?;
    let root = Root::new(&cli.root);
    root.ensure()
        .map_err(|e| anyhow!("creating the engine root {}: {e}", root.path().display()))?;
    let request = UpRequest {
        services: args.services.clone(),
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        no_deps: args.no_deps,
        always_recreate_deps: args.always_recreate_deps,
        remove_orphans: args.remove_orphans,
        no_start: args.no_start,
        timeout: args.timeout,
        scale: scale(&args.scale)?,
        wait: args.wait,
        wait_timeout: args.wait_timeout,
        build: args.build,
        pull: args.pull.clone(),
    };
    let foreground = !args.detach && !args.wait && !args.no_start;
    if foreground {
        install_interrupt_handler()?;
    }
    let body = serde_json::json!({ "project": project, "request": request });
    let result = operation(&root, &format!("/v1/projects/{}/up", project.name), &body)?;
    let report: UpReport = serde_json::from_value(result)?;
    if !report.orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            report.orphans.join(", ")
        );
    }
    if args.watch {
        let style = (!args.detach).then(|| Style::detect(args.no_color, args.no_log_prefix, false));
        return super::watch::after_up(cli, &request, style, args.timeout);
    }
    if !foreground {
        return Ok(ExitCode::SUCCESS);
    }
    attach(&root, &project.name, args)
}

/// The foreground of `up`: the services' logs until every container has
/// exited, or until Ctrl-C (stop gracefully; a second one kills).
fn attach(root: &Root, project: &str, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let style = Style::detect(args.no_color, args.no_log_prefix, false);
    let all = containers(root, project, &[])?;
    let shown: Vec<_> = all
        .iter()
        .filter(|c| {
            args.attach.is_empty()
                || c.config
                    .labels
                    .get(crate::engine::labels::SERVICE)
                    .is_some_and(|s| args.attach.contains(s))
        })
        .cloned()
        .collect();
    let width = shown.iter().map(|c| c.config.name.len()).max().unwrap_or(0);
    let mut tails: Vec<Tail> = shown
        .into_iter()
        .enumerate()
        .map(|(i, c)| Tail::new(c, i, width, style))
        .collect();
    let abort = args.abort_on_container_exit || args.exit_code_from.is_some();
    let mut stdout = std::io::stdout().lock();
    let mut stopping = false;
    let code = loop {
        for tail in &mut tails {
            let _ = tail.pump(&mut stdout, style);
        }
        let _ = stdout.flush();
        let interrupts = INTERRUPTS.load(Ordering::SeqCst);
        if interrupts >= 2 {
            eprintln!("Killing...");
            for c in &all {
                let _ = lifecycle::kill_container(c, nix::sys::signal::Signal::SIGKILL);
            }
            break 130;
        }
        if interrupts == 1 && !stopping {
            stopping = true;
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            stop_all(root, &all, args.timeout);
            continue;
        }
        let states: Vec<_> = all.iter().map(|c| c.state().ok()).collect();
        let exited: Vec<(usize, i32)> = states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| matches!(s.status, Status::Exited | Status::Dead))
                    .map(|s| (i, s.exit_code.unwrap_or(0)))
            })
            .collect();
        if abort && !exited.is_empty() && !stopping {
            for tail in &mut tails {
                let _ = tail.pump(&mut stdout, style);
            }
            eprintln!("Aborting on container exit...");
            stop_all(root, &all, args.timeout);
            let from = args.exit_code_from.as_deref();
            let code = match from {
                Some(service) => all
                    .iter()
                    .position(|c| {
                        c.config.labels.get(crate::engine::labels::SERVICE).map(String::as_str) == Some(service)
                    })
                    .and_then(|i| all[i].state().ok().and_then(|s| s.exit_code))
                    .unwrap_or(0),
                None => exited[0].1,
            };
            break code;
        }
        let restarting = all.iter().any(|c| {
            c.config.restart != crate::runtime::config::RestartPolicy::No && c.state().is_ok_and(|s| !s.stopped_by_user)
        });
        if exited.len() == all.len() && (!restarting || stopping) {
            for tail in &mut tails {
                let _ = tail.pump(&mut stdout, style);
            }
            break if stopping { 130 } else { 0 };
        }
        std::thread::sleep(POLL);
    };
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)))
}

pub(super) fn stop_all(root: &Root, containers: &[crate::runtime::container::Container], timeout: Option<u64>) {
    std::thread::scope(|scope| {
        for c in containers {
            scope.spawn(move || {
                let t = Duration::from_secs(timeout.unwrap_or(c.config.stop_timeout));
                print_event(crate::engine::apply::Event::new(
                    "Container",
                    &c.config.name,
                    "Stopping",
                ));
                let _ = lifecycle::stop(root, c, t);
                print_event(crate::engine::apply::Event::new("Container", &c.config.name, "Stopped"));
            });
        }
    });
}

pub fn down(cli: &Cli, args: &DownArgs) -> anyhow::Result<ExitCode> {
    // Without a stack file, `-p NAME` names a project the engine rebuilds
    // from its containers' and resources' labels (as compose does).
    let (name, project) = match load_project(cli, false) {
        Ok(loaded) => (loaded.project.name.clone(), Some(loaded.project)),
        Err(e) => match (&cli.project_name, e.downcast_ref::<crate::spec::LoadError>()) {
            (Some(name), Some(crate::spec::LoadError::NoConfigFile { .. })) if cli.files.is_empty() => {
                (crate::spec::environment::normalize_project_name(name), None)
            }
            _ => return Err(e),
        },
    };
    let root = Root::new(&cli.root);
    let request = DownRequest {
        services: args.services.clone(),
        remove_volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
    };
    let body = serde_json::json!({ "project": project, "request": request });
    operation(&root, &format!("/v1/projects/{name}/down"), &body)?;
    Ok(ExitCode::SUCCESS)
}

fn parse_time(text: &str, what: &str) -> anyhow::Result<SystemTime> {
    if let Some(t) = crate::rfc3339::parse(text) {
        return Ok(t);
    }
    let d = crate::spec::syntax::units::parse_duration(text).map_err(|e| anyhow!("invalid --{what} {text:?}: {e}"))?;
    Ok(SystemTime::now() - d)
}

pub fn logs(cli: &Cli, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let project = project_name(cli)?;
    let root = Root::new(&cli.root);
    let list = containers(&root, &project, &args.services)?;
    if list.is_empty() && !args.services.is_empty() {
        bail!("no containers for services {}", args.services.join(", "));
    }
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| anyhow!("invalid --tail {n:?}"))?),
    };
    let since = args.since.as_deref().map(|s| parse_time(s, "since")).transpose()?;
    let until = args.until.as_deref().map(|s| parse_time(s, "until")).transpose()?;
    let style = Style::detect(args.no_color, args.no_log_prefix, args.timestamps);
    let width = list.iter().map(|c| c.config.name.len()).max().unwrap_or(0);
    let mut tails: Vec<Tail> = list
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, c)| Tail::new(c, i, width, style))
        .collect();
    let mut out = std::io::stdout().lock();
    for (i, entry) in history(&list, tail, since, until) {
        super::logs::print_line(&mut out, &tails[i].label, &entry, style)?;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    for t in &mut tails {
        t.skip_existing();
    }
    loop {
        for t in &mut tails {
            t.pump(&mut out, style)?;
        }
        out.flush()?;
        let done = tails.iter().all(|t| {
            t.container
                .state()
                .map_or(true, |s| matches!(s.status, Status::Exited | Status::Dead))
        });
        if done {
            for t in &mut tails {
                t.pump(&mut out, style)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL);
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[arg(long)]
    pub no_cache: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    pub services: Vec<String>,
}

/// `build` and `pull`: the engine fetches the services' images.
pub fn fetch(cli: &Cli, verb: &str, services: &[String], no_cache: bool) -> anyhow::Result<ExitCode> {
    let loaded = load_project(cli, false)?;
    let root = Root::new(&cli.root);
    let request = FetchRequest {
        services: services.to_vec(),
        no_cache,
    };
    let body = serde_json::json!({ "project": loaded.project, "request": request });
    operation(&root, &format!("/v1/projects/{}/{verb}", loaded.project.name), &body)?;
    Ok(ExitCode::SUCCESS)
}
