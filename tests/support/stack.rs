//! A compose project for tests: a directory with its stack file, driven by
//! the built `berth` on a private engine root (whose engine the verbs start
//! on demand and [`Stack`] stops when dropped).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{network_engine, stderr, stdout, Engine};

/// A project directory with a compose file, and the engine it runs on.
pub struct Stack {
    pub engine: Engine,
    pub dir: PathBuf,
    pub project: String,
}

impl Stack {
    pub fn new(project: &str, yaml: &str) -> Stack {
        let engine = network_engine();
        let dir = engine.dir.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let stack = Stack {
            engine,
            dir,
            project: project.to_string(),
        };
        stack.write("compose.yaml", yaml);
        stack
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes a file of the project, making its directories.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// `berth --root ROOT -p PROJECT ARGS…` in the project directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .current_dir(&self.dir)
            .arg("--root")
            .arg(self.engine.root.path())
            .args(["-p", &self.project])
            .args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout then stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// `ps -a --format json`.
    pub fn ps_json(&self) -> Vec<serde_json::Value> {
        let text = self.ok(&["ps", "-a", "--format", "json"]);
        let line = text.lines().find(|l| l.starts_with('[')).unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// One container's `ps` entry.
    pub fn summary(&self, name: &str) -> Option<serde_json::Value> {
        self.ps_json().into_iter().find(|c| c["Name"] == name)
    }

    pub fn engine_log(&self) -> String {
        std::fs::read_to_string(self.engine.root.path().join("engine.log")).unwrap_or_default()
    }

    /// Stops the root's engine (auto-started by the verbs).
    pub fn stop_engine(&self) {
        let _ = self.engine.berth(&["engine", "--stop"]);
    }

    /// `down -v --remove-orphans`, then nothing of the root may remain:
    /// containers, mounts, cgroups, processes (the engine stopped), links,
    /// nftables, network records and volumes.
    pub fn down_and_check(&self) {
        self.ok(&["down", "-v", "--remove-orphans", "-t", "1"]);
        self.stop_engine();
        self.engine.assert_no_residue();
        let volumes = berth::volume::VolumeStore::open(&self.engine.root)
            .unwrap()
            .list()
            .unwrap();
        assert!(volumes.is_empty(), "volumes left: {volumes:?}");
    }

    /// Polls `done` for up to 60 s; a timeout shows `ps`, the engine log
    /// and `context`.
    pub fn wait_with(&self, what: &str, context: impl Fn() -> String, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            if Instant::now() > deadline {
                let ps = self.run(&["ps", "-a", "--format", "json"]);
                panic!(
                    "timed out waiting for {what}\nps: {}\n{}\nengine log:\n{}",
                    stdout(&ps),
                    context(),
                    self.engine_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for(&self, what: &str, done: impl FnMut() -> bool) {
        self.wait_with(what, String::new, done);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A failed test must not leave its engine running.
        self.stop_engine();
    }
}
