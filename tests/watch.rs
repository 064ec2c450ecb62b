//! `berth watch` on the real kernel: a stack brought up with `up -d`, then
//! `berth watch` as a child process while the test edits files on the
//! host and reads them back with `berth exec`.
//!
//! Each test has its own engine root, project and 10.203.x.0/24 subnet,
//! so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{network_engine, stderr, stdout, Engine};

/// A project directory with a compose file, and the engine it runs on.
struct Stack {
    engine: Engine,
    dir: PathBuf,
    project: String,
}

impl Stack {
    fn new(project: &str, yaml: &str) -> Stack {
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

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .current_dir(&self.dir)
            .arg("--root")
            .arg(self.engine.root.path())
            .args(["-p", &self.project])
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
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

    /// `ps -a --format json`: name → (id, state).
    fn ps(&self) -> BTreeMap<String, (String, String)> {
        let text = self.ok(&["ps", "-a", "--format", "json"]);
        let json_line = text.lines().find(|l| l.starts_with('[')).unwrap();
        let list: Vec<serde_json::Value> = serde_json::from_str(json_line).unwrap();
        list.iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_string(),
                    (
                        c["Id"].as_str().unwrap().to_string(),
                        c["State"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect()
    }

    /// The file's content in the service's container, `None` when absent.
    fn read(&self, service: &str, path: &str) -> Option<String> {
        let out = self.run(&["exec", service, "cat", path]);
        out.status.success().then(|| stdout(&out))
    }

    /// `berth watch ARGS…` in the background, its output in files.
    fn watch(&self, args: &[&str]) -> Watch {
        let log = self.engine.dir.path().join(format!("watch-{}.log", self.project));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command(&[&["watch"], args].concat())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let watch = Watch { child, log };
        watch.wait_for("Watch enabled", 60);
        watch
    }

    /// Polls `done` for up to 20 s.
    fn wait_for(&self, what: &str, watch: &Watch, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.engine.root.path().join("engine.log")).unwrap_or_default();
                panic!(
                    "timed out waiting for {what}\nwatch output:\n{}\nengine log:\n{log}",
                    watch.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the watcher, `down -v`, stops the engine: nothing may remain.
    fn finish(&self, mut watch: Watch) {
        watch.stop();
        self.ok(&["down", "-v", "-t", "1"]);
        self.stop_engine();
        self.engine.assert_no_residue();
        let networks = berth::network::NetworkStore::new(&self.engine.root).list().unwrap();
        assert!(networks.is_empty(), "networks left: {networks:?}");
    }

    fn stop_engine(&self) {
        let _ = self.engine.berth(&["engine", "--stop"]);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A failed test must not leave its engine running.
        self.stop_engine();
    }
}

/// The `berth watch` child.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Watch {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn count(&self, needle: &str) -> usize {
        self.output().matches(needle).count()
    }

    fn wait_for(&self, needle: &str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from berth watch:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

fn network(subnet: &str) -> String {
    format!("networks:\n  default:\n    ipam: {{config: [{{subnet: {subnet}}}]}}\n")
}

/// A service that logs `started` each time it starts and stops at once.
const LOOP: &str = r#"["sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done"]"#;

#[test]
fn edits_deletions_and_new_directories_sync_and_ignored_paths_never_do() {
    let yaml = format!(
        r#"
services:
  web:
    image: busybox
    command: {LOOP}
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          ignore: [secret.txt, "cache/"]
{}"#,
        network("10.203.1.0/24")
    );
    let stack = Stack::new("wsync", &yaml);
    stack.write("src/keep.txt", "kept\n");
    stack.ok(&["up", "-d"]);
    let watch = stack.watch(&[]);

    stack.write("src/index.html", "v1\n");
    stack.wait_for("index.html v1", &watch, || {
        stack.read("web", "/app/index.html").as_deref() == Some("v1\n")
    });
    stack.write("src/index.html", "v2\n");
    stack.wait_for("index.html v2", &watch, || {
        stack.read("web", "/app/index.html").as_deref() == Some("v2\n")
    });

    // A mode survives the trip.
    stack.write("src/run.sh", "#!/bin/sh\necho ran\n");
    std::fs::set_permissions(
        stack.path("src/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    stack.wait_for("run.sh", &watch, || {
        stack.run(&["exec", "web", "/app/run.sh"]).status.success()
    });

    // Ignored paths, then a file after them: once the file is there, the
    // ignored ones had their chance.
    stack.write("src/secret.txt", "no\n");
    stack.write("src/cache/blob", "no\n");
    stack.write("src/after.txt", "yes\n");
    stack.wait_for("after.txt", &watch, || stack.read("web", "/app/after.txt").is_some());
    assert_eq!(stack.read("web", "/app/secret.txt"), None);
    assert_eq!(stack.read("web", "/app/cache/blob"), None);

    // Deletion.
    std::fs::remove_file(stack.path("src/index.html")).unwrap();
    stack.wait_for("index.html removed", &watch, || {
        stack.read("web", "/app/index.html").is_none()
    });

    // A directory with contents moved in whole.
    stack.write("staging/deep/file.txt", "moved\n");
    std::fs::rename(stack.path("staging"), stack.path("src/moved")).unwrap();
    stack.wait_for("moved/deep/file.txt", &watch, || {
        stack.read("web", "/app/moved/deep/file.txt").as_deref() == Some("moved\n")
    });

    // The watched directory deleted and created again keeps working.
    std::fs::remove_dir_all(stack.path("src")).unwrap();
    stack.wait_for("/app emptied", &watch, || stack.read("web", "/app/after.txt").is_none());
    stack.write("src/again.txt", "again\n");
    stack.wait_for("again.txt", &watch, || {
        stack.read("web", "/app/again.txt").as_deref() == Some("again\n")
    });
    std::thread::sleep(Duration::from_millis(200));
    stack.write("src/later.txt", "later\n");
    stack.wait_for("later.txt", &watch, || {
        stack.read("web", "/app/later.txt").as_deref() == Some("later\n")
    });

    stack.finish(watch);
}

#[test]
fn sync_restart_restarts_exactly_once_per_burst() {
    let yaml = format!(
        r#"
services:
  app:
    image: busybox
    command: {LOOP}
    stop_grace_period: 5s
    develop:
      watch:
        - path: ./conf
          action: sync+restart
          target: /etc/app
{}"#,
        network("10.203.2.0/24")
    );
    let stack = Stack::new("wrestart", &yaml);
    std::fs::create_dir_all(stack.path("conf")).unwrap();
    stack.ok(&["up", "-d"]);
    let watch = stack.watch(&[]);
    let starts = || stack.ok(&["logs", "app"]).matches("started").count();
    assert_eq!(starts(), 1);

    for burst in 1..=2 {
        // An editor's save and its neighbours, as one quick burst.
        for i in 0..20 {
            stack.write(&format!("conf/{i}.conf"), &format!("burst {burst}\n"));
        }
        stack.wait_for("the restart", &watch, || watch.count("Restarted app") >= burst);
        assert_eq!(watch.count("Restarting app"), burst, "{}", watch.output());
        stack.wait_for("the start's log line", &watch, || starts() == burst + 1);
        assert_eq!(
            stack.read("app", "/etc/app/19.conf").as_deref(),
            Some(format!("burst {burst}\n").as_str())
        );
    }
    // Nothing more arrives once the bursts are over.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(watch.count("Restarting app"), 2, "{}", watch.output());
    assert_eq!(starts(), 3);

    stack.finish(watch);
}

#[test]
fn a_thousand_files_arrive_in_one_batch() {
    let yaml = format!(
        r#"
services:
  web:
    image: busybox
    command: {LOOP}
    develop:
      watch:
        - {{path: ./src, action: sync, target: /app}}
{}"#,
        network("10.203.3.0/24")
    );
    let stack = Stack::new("wmany", &yaml);
    std::fs::create_dir_all(stack.path("src/many")).unwrap();
    stack.ok(&["up", "-d"]);
    let watch = stack.watch(&[]);
    // Contents prepared first, so the writes come as one quick burst, as
    // a `git checkout` does.
    let files: Vec<(PathBuf, String)> = (0..1000)
        .map(|i| (stack.path(&format!("src/many/f{i:04}.txt")), format!("{i}\n")))
        .collect();
    for (path, content) in &files {
        std::fs::write(path, content).unwrap();
    }
    watch.wait_for("Syncing", 20);
    std::thread::sleep(Duration::from_millis(300));
    let out = watch.output();
    let syncs: Vec<&str> = out.lines().filter(|l| l.contains("Syncing")).collect();
    assert_eq!(syncs.len(), 1, "one batch expected:\n{out}");
    assert!(syncs[0].contains("Syncing 1000 files to service web"), "{out}");
    let count = stack.ok(&["exec", "web", "sh", "-c", "ls /app/many | wc -l"]);
    assert_eq!(count.trim(), "1000");
    assert_eq!(stack.read("web", "/app/many/f0999.txt").as_deref(), Some("999\n"));

    stack.finish(watch);
}

fn two_services(value: &str, subnet: &str) -> String {
    format!(
        r#"
services:
  front:
    image: busybox
    command: {LOOP}
    environment: {{COLOR: blue}}
    develop:
      watch:
        - {{path: ./front, action: sync, target: /app}}
  back:
    image: busybox
    command: {LOOP}
    environment: {{MODE: {value}}}
{}"#,
        network(subnet)
    )
}

#[test]
fn a_stack_file_edit_recreates_only_the_changed_service_and_a_broken_one_changes_nothing() {
    let stack = Stack::new("wreload", &two_services("one", "10.203.4.0/24"));
    std::fs::create_dir_all(stack.path("front")).unwrap();
    stack.ok(&["up", "-d"]);
    let watch = stack.watch(&[]);
    let before = stack.ps();
    assert_eq!(before.len(), 2, "{before:?}");

    // Saved the way editors do: a new file renamed over the old one.
    stack.write("compose.yaml.tmp", &two_services("two", "10.203.4.0/24"));
    std::fs::rename(stack.path("compose.yaml.tmp"), stack.path("compose.yaml")).unwrap();
    watch.wait_for("Reloaded the project", 60);
    let after = stack.ps();
    assert_eq!(after["wreload-front-1"], before["wreload-front-1"], "front untouched");
    assert_ne!(after["wreload-back-1"].0, before["wreload-back-1"].0, "back recreated");
    assert_eq!(after["wreload-back-1"].1, "running");
    let env = stack.ok(&["exec", "back", "sh", "-c", "echo $MODE"]);
    assert_eq!(env.trim(), "two");

    // A broken edit: reported with file:line:col, the stack left running.
    stack.write("compose.yaml", "services:\n  front:\n    image: [busybox\n");
    watch.wait_for("keeps running", 30);
    let out = watch.output();
    assert!(out.contains("compose.yaml:"), "{out}");
    let located = out.lines().any(|l| {
        l.split("compose.yaml:").nth(1).is_some_and(|rest| {
            let mut parts = rest.split(':');
            parts.next().is_some_and(|n| n.parse::<u32>().is_ok())
                && parts.next().is_some_and(|n| n.parse::<u32>().is_ok())
        })
    });
    assert!(located, "no file:line:col in:\n{out}");
    assert_eq!(stack.ps(), after, "the stack changed after a broken edit");

    // Watching goes on: a sync still works after the failed reload.
    stack.write("front/x.txt", "still\n");
    stack.wait_for("front/x.txt", &watch, || {
        stack.read("front", "/app/x.txt").as_deref() == Some("still\n")
    });

    // Fixed again: reloaded (nothing to recreate), and `down` can read it.
    stack.write("compose.yaml", &two_services("two", "10.203.4.0/24"));
    stack.wait_for("the second reload", &watch, || watch.count("Reloaded the project") == 2);
    assert_eq!(stack.ps(), after);
    stack.finish(watch);
}

#[test]
fn sync_exec_runs_after_the_sync_and_rebuild_recreates_on_a_new_image() {
    let yaml = format!(
        r#"
services:
  app:
    build: ./app
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    develop:
      watch:
        - {{path: ./app, action: rebuild}}
        - path: ./hooks
          action: sync+exec
          target: /hooks
          exec: {{command: [sh, -c, "cat /hooks/*.txt > /tmp/ran"]}}
{}"#,
        network("10.203.5.0/24")
    );
    let stack = Stack::new("wrebuild", &yaml);
    stack.write("app/Dockerfile", "FROM busybox\nCOPY msg /msg\n");
    stack.write("app/msg", "first\n");
    std::fs::create_dir_all(stack.path("hooks")).unwrap();
    stack.ok(&["up", "-d"]);
    let watch = stack.watch(&[]);

    stack.write("hooks/a.txt", "hooked\n");
    stack.wait_for("the exec's output", &watch, || {
        stack.read("app", "/tmp/ran").as_deref() == Some("hooked\n")
    });
    assert_eq!(watch.count("Ran `sh -c"), 1, "{}", watch.output());

    let before = stack.ps()["wrebuild-app-1"].clone();
    stack.write("app/msg", "second\n");
    watch.wait_for("Rebuilt service app", 120);
    assert_eq!(stack.read("app", "/msg").as_deref(), Some("second\n"));
    let after = stack.ps()["wrebuild-app-1"].clone();
    assert_ne!(after.0, before.0, "recreated");
    assert_eq!(after.1, "running");

    stack.finish(watch);
}
