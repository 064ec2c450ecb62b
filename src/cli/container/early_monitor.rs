//! `container run`'s monitor, started before the command line is parsed.
//!
//! The monitor's own start (exec, dynamic linking, runtime setup: ~1.4 ms
//! here) is on the critical path of `run`, while parsing berth's command
//! line takes ~0.5 ms of the CLI's. So `main` recognises the plain forms
//! of `berth [GLOBAL OPTIONS] container run …` from the raw arguments and
//! starts a [`PendingMonitor`] at once; `run` takes it if it was started
//! for the root that the parsed command line names, else starts its own.
//! A monitor nobody takes reads EOF on its orders and exits, having made
//! nothing.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::runtime::lifecycle::PendingMonitor;
use crate::store::Root;

/// The default engine root, as the `--root` option declares it.
const DEFAULT_ROOT: &str = "/var/lib/berth";

static EARLY: Mutex<Option<(PathBuf, PendingMonitor)>> = Mutex::new(None);

/// Starts the monitor when `args` (without the program name) are a
/// `container run` that [`root_of_container_run`] recognises.
pub fn start_if_container_run(args: &[OsString]) {
    let env_root = std::env::var_os("BERTH_ROOT");
    let Some(root) = root_of_container_run(args, env_root) else {
        return;
    };
    if let Ok(pending) = PendingMonitor::spawn_child(&Root::new(&root)) {
        if let Ok(mut early) = EARLY.lock() {
            *early = Some((root, pending));
        }
    }
}

/// The monitor started for `root` by [`start_if_container_run`], if any.
pub fn take(root: &Root) -> Option<PendingMonitor> {
    let (started_for, pending) = EARLY.lock().ok()?.take()?;
    (started_for == root.path()).then_some(pending)
}

/// Lets an unused early monitor go (it exits on EOF) and reaps it, so
/// that no process outlives the command.
pub fn discard() {
    let early = EARLY.lock().ok().and_then(|mut early| early.take());
    drop(early);
}

/// The engine root of a `container run` command line, from `--root`
/// before the verbs, else `BERTH_ROOT`, else the default; `None` for
/// anything else, and for a `--root` after the verbs (the run's own
/// arguments are not parsed here, so such a line is left to clap).
pub fn root_of_container_run(args: &[OsString], env_root: Option<OsString>) -> Option<PathBuf> {
    // Global options that take a value as the next argument.
    const WITH_VALUE: &[&str] = &[
        "-f",
        "--file",
        "-p",
        "--project-name",
        "--project-directory",
        "--profile",
        "--env-file",
        "--root",
        "--log-level",
        "--ansi",
        "--progress",
    ];
    let mut root: Option<PathBuf> = None;
    let mut words = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let text = arg.to_str()?;
        if words.len() == 2 {
            // The run's own arguments: only a global --root matters.
            if text == "--root" || text.starts_with("--root=") {
                return None;
            }
            continue;
        }
        if let Some(value) = text.strip_prefix("--root=") {
            root = Some(value.into());
        } else if text == "--root" {
            root = Some(rest.next()?.into());
        } else if WITH_VALUE.contains(&text) {
            rest.next()?;
        } else if text.starts_with('-') {
            if !text.contains('=') && !text.starts_with("--") && text.len() > 2 {
                // `-fFILE`-style short options: not worth guessing.
                return None;
            }
        } else {
            words.push(text);
        }
    }
    (words == ["container", "run"]).then(|| root.or(env_root.map(PathBuf::from)).unwrap_or(DEFAULT_ROOT.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(line: &str, env: Option<&str>) -> Option<PathBuf> {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        root_of_container_run(&args, env.map(OsString::from))
    }

    #[test]
    fn recognises_container_run_and_its_root() {
        assert_eq!(
            root_of("container run --rm busybox true", None),
            Some(DEFAULT_ROOT.into())
        );
        assert_eq!(root_of("--root /r container run busybox", None), Some("/r".into()));
        assert_eq!(
            root_of("--root=/r container run busybox", Some("/e")),
            Some("/r".into())
        );
        assert_eq!(root_of("container run busybox", Some("/e")), Some("/e".into()));
        assert_eq!(
            root_of("-f x.yaml --log-level debug container run -e A=B busybox ls", None),
            Some(DEFAULT_ROOT.into())
        );
        // The command's own arguments may say anything.
        assert_eq!(
            root_of("container run busybox ls -f container", None),
            Some(DEFAULT_ROOT.into())
        );
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        for line in [
            "container ls",
            "run web",
            "container",
            "image run",
            "--root",
            "container run --root /r busybox",
            "container run busybox --root=/r",
            "-fcompose.yaml container run busybox",
        ] {
            assert_eq!(root_of(line, None), None, "{line}");
        }
    }
}
