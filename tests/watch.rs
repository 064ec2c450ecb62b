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
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::stack::Stack;
use support::stdout;

/// `ps -a --format json`: name → (id, state).
fn containers(stack: &Stack) -> BTreeMap<String, (String, String)> {
    stack
        .ps_json()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap().to_string();
            (text("Name"), (text("Id"), text("State")))
        })
        .collect()
}

/// The file's content in the service's container, `None` when absent.
fn read(stack: &Stack, service: &str, path: &str) -> Option<String> {
    let out = stack.run(&["exec", service, "cat", path]);
    out.status.success().then(|| stdout(&out))
}

/// `berth watch ARGS…` in the background, its output in a file.
fn start_watch(stack: &Stack, args: &[&str]) -> Watch {
    let log = stack.engine.dir.path().join(format!("watch-{}.log", stack.project));
    let file = std::fs::File::create(&log).unwrap();
    let child = stack
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

/// Polls `done`; a timeout shows the watcher's output too.
fn wait_watch(stack: &Stack, what: &str, watch: &Watch, done: impl FnMut() -> bool) {
    stack.wait_with(what, || format!("watch output:\n{}", watch.output()), done);
}

/// Kills the watcher, `down -v`, stops the engine: nothing may remain.
fn finish(stack: &Stack, mut watch: Watch) {
    watch.stop();
    stack.down_and_check();
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
    let watch = start_watch(&stack, &[]);

    stack.write("src/index.html", "v1\n");
    wait_watch(&stack, "index.html v1", &watch, || {
        read(&stack, "web", "/app/index.html").as_deref() == Some("v1\n")
    });
    stack.write("src/index.html", "v2\n");
    wait_watch(&stack, "index.html v2", &watch, || {
        read(&stack, "web", "/app/index.html").as_deref() == Some("v2\n")
    });

    // A mode survives the trip.
    stack.write("src/run.sh", "#!/bin/sh\necho ran\n");
    std::fs::set_permissions(
        stack.path("src/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    wait_watch(&stack, "run.sh", &watch, || {
        stack.run(&["exec", "web", "/app/run.sh"]).status.success()
    });

    // Ignored paths, then a file after them: once the file is there, the
    // ignored ones had their chance.
    stack.write("src/secret.txt", "no\n");
    stack.write("src/cache/blob", "no\n");
    stack.write("src/after.txt", "yes\n");
    wait_watch(&stack, "after.txt", &watch, || {
        read(&stack, "web", "/app/after.txt").is_some()
    });
    assert_eq!(read(&stack, "web", "/app/secret.txt"), None);
    assert_eq!(read(&stack, "web", "/app/cache/blob"), None);

    // Deletion.
    std::fs::remove_file(stack.path("src/index.html")).unwrap();
    wait_watch(&stack, "index.html removed", &watch, || {
        read(&stack, "web", "/app/index.html").is_none()
    });

    // A directory with contents moved in whole.
    stack.write("staging/deep/file.txt", "moved\n");
    std::fs::rename(stack.path("staging"), stack.path("src/moved")).unwrap();
    wait_watch(&stack, "moved/deep/file.txt", &watch, || {
        read(&stack, "web", "/app/moved/deep/file.txt").as_deref() == Some("moved\n")
    });

    // The watched directory deleted and created again keeps working.
    std::fs::remove_dir_all(stack.path("src")).unwrap();
    wait_watch(&stack, "/app emptied", &watch, || {
        read(&stack, "web", "/app/after.txt").is_none()
    });
    stack.write("src/again.txt", "again\n");
    wait_watch(&stack, "again.txt", &watch, || {
        read(&stack, "web", "/app/again.txt").as_deref() == Some("again\n")
    });
    std::thread::sleep(Duration::from_millis(200));
    stack.write("src/later.txt", "later\n");
    wait_watch(&stack, "later.txt", &watch, || {
        read(&stack, "web", "/app/later.txt").as_deref() == Some("later\n")
    });

    finish(&stack, watch);
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
    let watch = start_watch(&stack, &[]);
    let starts = || stack.ok(&["logs", "app"]).matches("started").count();
    assert_eq!(starts(), 1);

    for burst in 1..=2 {
        // An editor's save and its neighbours, as one quick burst.
        for i in 0..20 {
            stack.write(&format!("conf/{i}.conf"), &format!("burst {burst}\n"));
        }
        wait_watch(&stack, "the restart", &watch, || watch.count("Restarted app") >= burst);
        assert_eq!(watch.count("Restarting app"), burst, "{}", watch.output());
        wait_watch(&stack, "the start's log line", &watch, || starts() == burst + 1);
        assert_eq!(
            read(&stack, "app", "/etc/app/19.conf").as_deref(),
            Some(format!("burst {burst}\n").as_str())
        );
    }
    // Nothing more arrives once the bursts are over.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(watch.count("Restarting app"), 2, "{}", watch.output());
    assert_eq!(starts(), 3);

    finish(&stack, watch);
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
    let watch = start_watch(&stack, &[]);
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
    assert_eq!(read(&stack, "web", "/app/many/f0999.txt").as_deref(), Some("999\n"));

    finish(&stack, watch);
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
    let watch = start_watch(&stack, &[]);
    let before = containers(&stack);
    assert_eq!(before.len(), 2, "{before:?}");

    // Saved the way editors do: a new file renamed over the old one.
    stack.write("compose.yaml.tmp", &two_services("two", "10.203.4.0/24"));
    std::fs::rename(stack.path("compose.yaml.tmp"), stack.path("compose.yaml")).unwrap();
    watch.wait_for("Reloaded the project", 60);
    let after = containers(&stack);
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
    assert_eq!(containers(&stack), after, "the stack changed after a broken edit");

    // Watching goes on: a sync still works after the failed reload.
    stack.write("front/x.txt", "still\n");
    wait_watch(&stack, "front/x.txt", &watch, || {
        read(&stack, "front", "/app/x.txt").as_deref() == Some("still\n")
    });

    // Fixed again: reloaded (nothing to recreate), and `down` can read it.
    stack.write("compose.yaml", &two_services("two", "10.203.4.0/24"));
    wait_watch(&stack, "the second reload", &watch, || {
        watch.count("Reloaded the project") == 2
    });
    assert_eq!(containers(&stack), after);
    finish(&stack, watch);
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
    let watch = start_watch(&stack, &[]);

    stack.write("hooks/a.txt", "hooked\n");
    wait_watch(&stack, "the exec's output", &watch, || {
        read(&stack, "app", "/tmp/ran").as_deref() == Some("hooked\n")
    });
    // The file appears as the exec's command ends; the watch reports it
    // right after, once the exec has returned.
    watch.wait_for("Ran `sh -c", 10);
    assert_eq!(watch.count("Ran `sh -c"), 1, "{}", watch.output());

    let before = containers(&stack)["wrebuild-app-1"].clone();
    stack.write("app/msg", "second\n");
    watch.wait_for("Rebuilt service app", 120);
    assert_eq!(read(&stack, "app", "/msg").as_deref(), Some("second\n"));
    let after = containers(&stack)["wrebuild-app-1"].clone();
    assert_ne!(after.0, before.0, "recreated");
    assert_eq!(after.1, "running");

    finish(&stack, watch);
}
