//! `berth watch [SERVICE…]` and `berth up --watch`: the session around
//! `crate::watch` — the watcher, batches, and their effects: mirroring
//! into containers, restarts, execs, rebuilds and project reloads through
//! the engine. Status lines go to stderr (`⦿ …`), the services' logs (under
//! `up --watch`) to stdout, interleaved.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::Args;

use super::logs::{Style, Tail, POLL};
use super::{containers, operation};
use crate::cli::{load_project, Cli};
use crate::engine::labels;
use crate::engine::project::{FetchRequest, UpRequest};
use crate::runtime::config::Status;
use crate::runtime::container::Container;
use crate::runtime::lifecycle;
use crate::spec::model::lifecycle::ServiceHook;
use crate::spec::LoadedProject;
use crate::store::Root;
use crate::watch::{self, Debouncer, ServiceBatch, Trigger, Watcher};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Do not run `up` first (the services must be running).
    #[arg(long)]
    pub no_up: bool,
    /// Services to watch (default: every service with `develop.watch`).
    pub services: Vec<String>,
}

/// How long the loop sleeps when nothing is pending and no logs are
/// shown: the watcher wakes it on any event, so this only bounds how late
/// Ctrl-C is noticed — and keeps an idle session near zero CPU.
const IDLE: Duration = Duration::from_millis(250);

/// SIGINT/SIGTERM received during the session.
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

/// A status line on stderr, between log lines.
fn status(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "⦿ {text}");
}

fn millis(since: Instant) -> String {
    let d = since.elapsed();
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `berth watch`: converge the services (unless `--no-up`), then watch
/// until interrupted; the stack keeps running afterwards.
pub fn watch(cli: &Cli, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_project(cli, false)?;
    let root = Root::new(&cli.root);
    let request = UpRequest {
        services: args.services.clone(),
        ..UpRequest::default()
    };
    if !args.no_up {
        root.ensure()
            .map_err(|e| anyhow!("creating the engine root {}: {e}", root.path().display()))?;
        let body = serde_json::json!({ "project": loaded.project, "request": request });
        operation(&root, &format!("/v1/projects/{}/up", loaded.project.name), &body)?;
    }
    install_interrupt_handler()?;
    let mut session = Session::start(cli, root, loaded, request, None)?;
    session.run()?;
    Ok(ExitCode::SUCCESS)
}

/// `berth up --watch`, once `up` has converged: logs (unless detached)
/// and watch until interrupted; Ctrl-C then stops the containers, as the
/// foreground of `up` does.
pub fn after_up(
    cli: &Cli,
    request: &UpRequest,
    style: Option<Style>,
    timeout: Option<u64>,
) -> anyhow::Result<ExitCode> {
    install_interrupt_handler()?;
    let loaded = load_project(cli, false)?;
    let root = Root::new(&cli.root);
    let foreground = style.is_some();
    let mut session = Session::start(cli, root, loaded, request.clone(), style)?;
    session.run()?;
    if foreground {
        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        let all = containers(&session.root, &session.loaded.project.name, &[])?;
        super::up::stop_all(&session.root, &all, timeout);
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// The services' logs, following containers as they are recreated.
struct Logs {
    style: Style,
    tails: Vec<Tail>,
}

impl Logs {
    fn refresh(&mut self, root: &Root, project: &str) {
        let Ok(current) = containers(root, project, &[]) else {
            return;
        };
        let width = current.iter().map(|c| c.config.name.len()).max().unwrap_or(0);
        self.tails
            .retain(|t| current.iter().any(|c| c.config.id == t.container.config.id));
        for c in current {
            if !self.tails.iter().any(|t| t.container.config.id == c.config.id) {
                let index = self.tails.len();
                self.tails.push(Tail::new(c, index, width, self.style));
            }
        }
    }

    fn pump(&mut self) {
        let mut out = std::io::stdout().lock();
        for tail in &mut self.tails {
            let _ = tail.pump(&mut out, self.style);
        }
        let _ = out.flush();
    }
}

struct Session<'a> {
    cli: &'a Cli,
    root: Root,
    loaded: LoadedProject,
    /// What a reload converges: `up`'s flags, or the watched services.
    request: UpRequest,
    triggers: Vec<Trigger>,
    stack: BTreeSet<PathBuf>,
    watcher: Watcher,
    logs: Option<Logs>,
}

impl<'a> Session<'a> {
    fn start(
        cli: &'a Cli,
        root: Root,
        loaded: LoadedProject,
        mut request: UpRequest,
        style: Option<Style>,
    ) -> anyhow::Result<Session<'a>> {
        // A reload converges the file; the first `up` built and waited.
        request.build = false;
        request.wait = false;
        let triggers = watch::triggers(&loaded.project, &request.services)?;
        if triggers.is_empty() {
            bail!("none of the selected services is configured for watch: add develop.watch rules (see docs/watch.md)");
        }
        let stack = stack_files(cli, &loaded)?;
        let watcher = open_watcher(&triggers, &stack)?;
        let mut logs = style.map(|style| Logs {
            style,
            tails: Vec::new(),
        });
        if let Some(logs) = &mut logs {
            logs.refresh(&root, &loaded.project.name);
        }
        let mut session = Session {
            cli,
            root,
            loaded,
            request,
            triggers,
            stack,
            watcher,
            logs,
        };
        let initial: Vec<PathBuf> = session
            .triggers
            .iter()
            .filter(|t| t.initial_sync)
            .map(|t| t.path.clone())
            .collect();
        if !initial.is_empty() {
            let mut paths = session.watcher.everything(&initial);
            paths.extend(initial);
            session.batch(&paths, true);
        }
        status(&format!(
            "Watch enabled for {} (Ctrl+C to stop watching)",
            services_of(&session.triggers).join(", ")
        ));
        Ok(session)
    }

    /// The loop: events into batches until interrupted.
    fn run(&mut self) -> anyhow::Result<()> {
        let mut pending = Debouncer::default();
        while INTERRUPTS.load(Ordering::SeqCst) == 0 {
            if let Some(logs) = &mut self.logs {
                logs.pump();
            }
            let idle = if self.logs.is_some() { POLL } else { IDLE };
            let timeout = pending.wait(Instant::now()).map_or(idle, |w| w.min(idle));
            let changes = self.watcher.wait(timeout)?;
            for warning in &changes.warnings {
                status(&format!("watch: {warning}"));
            }
            let now = Instant::now();
            for path in changes.paths {
                pending.push(path, now);
            }
            if pending.due(Instant::now()) {
                let paths = pending.take();
                self.batch(&paths, false);
            }
        }
        Ok(())
    }

    /// One batch: reload first (it may recreate containers), then each
    /// service's work. Failures are reported; the session goes on.
    fn batch(&mut self, paths: &[PathBuf], initial: bool) {
        let plan = watch::plan(paths, &self.triggers, &self.stack, initial);
        if plan.reload {
            self.reload();
        }
        for service in &plan.services {
            if let Err(e) = self.apply(service) {
                status(&format!("{}: {e:#}", service.service));
            }
        }
    }

    /// The stack's files changed: load them again and converge. An
    /// invalid file leaves everything as it runs.
    fn reload(&mut self) {
        let started = Instant::now();
        status("Stack file changed: reloading the project");
        let loaded = match load_project(self.cli, false) {
            Ok(loaded) => loaded,
            Err(e) => {
                status(&format!("{e:#}"));
                status("The stack keeps running as it was; fix the file to apply it");
                return;
            }
        };
        let reloaded = watch::triggers(&loaded.project, &self.request.services)
            .map_err(anyhow::Error::from)
            .and_then(|triggers| Ok((triggers, stack_files(self.cli, &loaded)?)))
            .and_then(|(triggers, stack)| Ok((open_watcher(&triggers, &stack)?, triggers, stack)));
        let (watcher, triggers, stack) = match reloaded {
            Ok(parts) => parts,
            Err(e) => {
                status(&format!("{e:#}"));
                status("The stack keeps running as it was; fix the file to apply it");
                return;
            }
        };
        let body = serde_json::json!({ "project": loaded.project, "request": self.request });
        let path = format!("/v1/projects/{}/up", loaded.project.name);
        if let Err(e) = operation(&self.root, &path, &body) {
            status(&format!("Reloading failed: {e:#}"));
            return;
        }
        (self.loaded, self.triggers, self.stack, self.watcher) = (loaded, triggers, stack, watcher);
        if let Some(logs) = &mut self.logs {
            logs.refresh(&self.root, &self.loaded.project.name);
        }
        status(&format!("Reloaded the project ({})", millis(started)));
    }

    fn apply(&mut self, batch: &ServiceBatch) -> anyhow::Result<()> {
        let service = &batch.service;
        if batch.rebuild {
            return self.rebuild(service);
        }
        let running: Vec<(Container, i32)> =
            containers(&self.root, &self.loaded.project.name, std::slice::from_ref(service))?
                .into_iter()
                .filter_map(|c| {
                    let state = c.state().ok()?;
                    let pid = state.pid.filter(|_| state.status == Status::Running)?;
                    Some((c, pid))
                })
                .collect();
        if running.is_empty() {
            bail!("no running container to update: start it with `berth up {service}`");
        }
        if !batch.changes.is_empty() {
            let started = Instant::now();
            let mut files = 0;
            for (c, pid) in &running {
                let report = watch::mirror(Path::new(&format!("/proc/{pid}/root")), &batch.changes);
                files = files.max(report.files());
                for error in &report.errors {
                    status(&format!("{}: {error}", c.config.name));
                }
            }
            let noun = if files == 1 { "file" } else { "files" };
            status(&format!(
                "Syncing {files} {noun} to service {service} ({})",
                millis(started)
            ));
        }
        if batch.restart {
            let started = Instant::now();
            status(&format!("Restarting {service}"));
            for (c, _) in &running {
                let timeout = Duration::from_secs(c.config.stop_timeout);
                let monitor = c.state().ok().and_then(|s| s.monitor_pid);
                lifecycle::stop(&self.root, c, timeout)?;
                wait_gone(monitor);
                lifecycle::start(&self.root, c)?;
            }
            status(&format!("Restarted {service} ({})", millis(started)));
        }
        for hook in &batch.execs {
            for (c, _) in &running {
                self.exec(service, c, hook)?;
            }
        }
        Ok(())
    }

    /// Rebuilds the service's image through the engine, then converges the
    /// service alone: its container is recreated on the new image.
    fn rebuild(&mut self, service: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        status(&format!("Rebuilding service {service}"));
        let project = &self.loaded.project;
        let fetch = FetchRequest {
            services: vec![service.to_string()],
            no_cache: false,
        };
        let body = serde_json::json!({ "project": project, "request": fetch });
        operation(&self.root, &format!("/v1/projects/{}/build", project.name), &body)?;
        let up = UpRequest {
            services: vec![service.to_string()],
            no_deps: true,
            timeout: self.request.timeout,
            ..UpRequest::default()
        };
        let body = serde_json::json!({ "project": project, "request": up });
        operation(&self.root, &format!("/v1/projects/{}/up", project.name), &body)?;
        if let Some(logs) = &mut self.logs {
            logs.refresh(&self.root, &project.name);
        }
        status(&format!("Rebuilt service {service} ({})", millis(started)));
        Ok(())
    }

    /// `sync+exec`: the rule's command through `berth exec`, a process of
    /// its own: exec forks, and this one has the watcher's thread.
    fn exec(&self, service: &str, c: &Container, hook: &ServiceHook) -> anyhow::Result<()> {
        let started = Instant::now();
        // /proc/self/exe: still this program when a rebuild replaced the file.
        let exe = PathBuf::from("/proc/self/exe");
        let index = c
            .config
            .labels
            .get(labels::NUMBER)
            .cloned()
            .unwrap_or_else(|| "1".into());
        let mut command = Command::new(exe);
        command
            .arg("--root")
            .arg(self.root.path())
            .args(["-p", &self.loaded.project.name, "exec", "-T", "--index", &index])
            .stdin(Stdio::null());
        if let Some(user) = &hook.user {
            command.args(["--user", user]);
        }
        if let Some(dir) = &hook.working_dir {
            command.args(["--workdir", dir]);
        }
        if hook.privileged == Some(true) {
            command.arg("--privileged");
        }
        for (key, value) in &hook.environment.0 {
            if let Some(value) = value {
                command.arg("-e").arg(format!("{key}={value}"));
            }
        }
        command.arg(service).args(&hook.command.0);
        let shown = hook.command.0.join(" ");
        let code = command.status().map_err(|e| anyhow!("running berth exec: {e}"))?;
        match code.success() {
            true => status(&format!("Ran `{shown}` in {} ({})", c.config.name, millis(started))),
            false => status(&format!("`{shown}` in {} failed: {code}", c.config.name)),
        }
        Ok(())
    }
}

/// Waits (up to 5 s) for a stopped container's old monitor to exit: it
/// records the exit before it removes its attach socket on the way out,
/// and a new monitor started in between would lose its own socket.
fn wait_gone(monitor: Option<i32>) {
    let Some(pid) = monitor else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn services_of(triggers: &[Trigger]) -> Vec<String> {
    let set: BTreeSet<&str> = triggers.iter().map(|t| t.service.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

fn open_watcher(triggers: &[Trigger], stack: &BTreeSet<PathBuf>) -> anyhow::Result<Watcher> {
    let paths: Vec<PathBuf> = triggers.iter().map(|t| t.path.clone()).collect();
    let files: Vec<PathBuf> = stack.iter().cloned().collect();
    Ok(Watcher::new(&paths, &files)?)
}

/// The stack's files as the loader read them: `.env` comes from the
/// working directory unless `--env-file`s replace it.
fn stack_files(cli: &Cli, loaded: &LoadedProject) -> anyhow::Result<BTreeSet<PathBuf>> {
    let cwd = std::env::current_dir()?;
    let env_files: Vec<PathBuf> = match cli.env_files.is_empty() {
        true => vec![cwd.join(".env"), loaded.project_dir.join(".env")],
        false => cli.env_files.iter().map(|f| cwd.join(f)).collect(),
    };
    Ok(watch::stack_files(&loaded.files, &env_files, &loaded.project))
}
