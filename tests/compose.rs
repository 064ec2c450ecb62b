//! The compose verbs on the real kernel: `up` converging multi-service
//! stacks (dependency conditions, recreation, orphans, scale), the
//! foreground session, `down` leaving nothing behind.
//!
//! Each test has its own engine root, project, 10.202.x.0/24 subnet and
//! host ports 182xx, so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::stack::Stack;
use support::{stderr, stdout};

/// `ps -a --format json`: name → (id, state, health).
fn containers(stack: &Stack) -> BTreeMap<String, (String, String, String)> {
    stack
        .ps_json()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap().to_string();
            (text("Name"), (text("Id"), text("State"), text("Health")))
        })
        .collect()
}

/// GET http://127.0.0.1:PORT/PATH, retried while the server comes up.
fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200") => return body,
            other if Instant::now() > deadline => panic!("GET :{port}{path} failed: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn healthy_and_completed_dependencies_gate_the_start_and_down_leaves_nothing() {
    let stack = Stack::new(
        "gates",
        r#"
services:
  db:
    image: busybox
    command: sh -c "sleep 1; mkdir -p /www; echo dbok > /www/index.html; exec httpd -f -p 80 -h /www"
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1/ | grep -q dbok"]
      interval: 300ms
      start_interval: 100ms
      start_period: 10s
  seed:
    image: busybox
    command: sh -c "echo seeded > /shared/seed"
    volumes: [shared:/shared]
  web:
    image: busybox
    command: sh -c "wget -qO- http://db/ && cat /shared/seed && exec httpd -f -p 80 -h /shared"
    volumes: [shared:/shared]
    ports: ["18201:80"]
    depends_on:
      db: {condition: service_healthy}
      seed: {condition: service_completed_successfully}
networks:
  default:
    ipam: {config: [{subnet: 10.202.1.0/24}]}
volumes:
  shared: {}
"#,
    );
    let out = stack.ok(&["up", "-d"]);
    assert!(out.contains("Container gates-db-1  Healthy"), "{out}");
    let ps = containers(&stack);
    assert_eq!(ps["gates-db-1"].1, "running");
    assert_eq!(ps["gates-db-1"].2, "healthy");
    assert_eq!(ps["gates-seed-1"].1, "exited");
    assert_eq!(ps["gates-web-1"].1, "running");
    // The web service found the database by name and the seed's volume.
    assert!(http_get(18201, "/seed").contains("seeded"));
    let logs = stack.ok(&["logs", "web"]);
    assert!(logs.contains("gates-web-1  | dbok"), "{logs}");
    assert!(logs.contains("gates-web-1  | seeded"), "{logs}");
    // Converged: a second up does nothing to the running services.
    let again = stack.ok(&["up", "-d", "web", "db"]);
    assert!(!again.contains("Created") && !again.contains("Recreate"), "{again}");
    assert_eq!(containers(&stack)["gates-web-1"].0, ps["gates-web-1"].0);
    stack.down_and_check();
}

#[test]
fn a_failing_dependency_fails_up_naming_it() {
    let stack = Stack::new(
        "failing",
        r#"
services:
  init:
    image: busybox
    command: sh -c "exit 3"
  app:
    image: busybox
    command: sleep 60
    depends_on:
      init: {condition: service_completed_successfully}
  sick:
    image: busybox
    command: sleep 60
    healthcheck: {test: ["CMD", "false"], interval: 100ms, retries: 2}
  needs-sick:
    image: busybox
    command: sleep 60
    depends_on:
      sick: {condition: service_healthy}
  missing:
    image: no-such-image:1
    pull_policy: never
networks:
  default:
    ipam: {config: [{subnet: 10.202.2.0/24}]}
"#,
    );
    let out = stack.run(&["up", "-d", "missing"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("\"missing\""), "{}", stderr(&out));
    let out = stack.run(&["up", "-d", "app"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("service \"init\" didn't complete successfully: exit 3"),
        "{}",
        stderr(&out)
    );
    let out = stack.run(&["up", "-d", "needs-sick"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("failing-sick-1 is unhealthy"), "{}", stderr(&out));
    stack.down_and_check();
}

#[test]
fn only_changed_services_and_their_restart_dependents_are_recreated() {
    let yaml = |a_env: &str, c_cmd: &str| {
        format!(
            r#"
services:
  a:
    image: busybox
    command: sleep 300
    environment: [VERSION={a_env}]
  b:
    image: busybox
    command: sleep 300
    depends_on:
      a: {{condition: service_started, restart: true}}
  c:
    image: busybox
    command: {c_cmd}
networks:
  default:
    ipam: {{config: [{{subnet: 10.202.3.0/24}}]}}
"#
        )
    };
    let stack = Stack::new("recreate", &yaml("1", "sleep 300"));
    stack.ok(&["up", "-d", "-t", "1"]);
    let first = containers(&stack);
    stack.write("compose.yaml", &yaml("2", "sleep 300"));
    let out = stack.ok(&["up", "-d", "-t", "1"]);
    let second = containers(&stack);
    assert_ne!(first["recreate-a-1"].0, second["recreate-a-1"].0, "{out}");
    assert_ne!(first["recreate-b-1"].0, second["recreate-b-1"].0, "{out}");
    assert_eq!(first["recreate-c-1"].0, second["recreate-c-1"].0, "{out}");
    stack.write("compose.yaml", &yaml("2", "sleep 301"));
    stack.ok(&["up", "-d", "-t", "1"]);
    let third = containers(&stack);
    assert_eq!(second["recreate-a-1"].0, third["recreate-a-1"].0);
    assert_eq!(second["recreate-b-1"].0, third["recreate-b-1"].0);
    assert_ne!(second["recreate-c-1"].0, third["recreate-c-1"].0);
    assert!(third.values().all(|(_, state, _)| state == "running"), "{third:?}");
    stack.ok(&["up", "-d", "--force-recreate", "-t", "1", "c"]);
    assert_ne!(containers(&stack)["recreate-c-1"].0, third["recreate-c-1"].0);
    stack.down_and_check();
}

#[test]
fn orphans_are_kept_until_asked_and_scale_moves_both_ways() {
    let both = r#"
services:
  x:
    image: busybox
    command: sleep 300
  y:
    image: busybox
    command: sleep 300
networks:
  default:
    ipam: {config: [{subnet: 10.202.4.0/24}]}
"#;
    let stack = Stack::new("orphans", both);
    stack.ok(&["up", "-d"]);
    stack.write(
        "compose.yaml",
        &both.replace("  y:\n    image: busybox\n    command: sleep 300\n", ""),
    );
    let out = stack.ok(&["up", "-d"]);
    assert!(out.contains("Found orphan containers (orphans-y-1)"), "{out}");
    assert!(containers(&stack).contains_key("orphans-y-1"));
    stack.ok(&["up", "-d", "--remove-orphans", "-t", "1"]);
    assert!(!containers(&stack).contains_key("orphans-y-1"));
    stack.ok(&["up", "-d", "--scale", "x=3"]);
    let ps = containers(&stack);
    for n in 1..=3 {
        assert_eq!(ps[&format!("orphans-x-{n}")].1, "running", "{ps:?}");
    }
    stack.ok(&["up", "-d", "--scale", "x=1", "-t", "1"]);
    let ps = containers(&stack);
    assert_eq!(ps.keys().collect::<Vec<_>>(), vec!["orphans-x-1"]);
    stack.down_and_check();
}

#[test]
fn concurrent_ups_of_one_project_serialize() {
    let stack = Stack::new(
        "concurrent",
        r#"
services:
  s:
    image: busybox
    command: sleep 300
    deploy: {replicas: 2}
networks:
  default:
    ipam: {config: [{subnet: 10.202.5.0/24}]}
"#,
    );
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(|| stack.run(&["up", "-d"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let ps = containers(&stack);
    assert_eq!(ps.len(), 2, "{ps:?}");
    stack.down_and_check();
}

#[test]
fn foreground_up_streams_logs_and_stops_on_interrupt() {
    let stack = Stack::new(
        "fg",
        r#"
services:
  talker:
    image: busybox
    command: sh -c "echo talker ready; exec sleep 300"
  done:
    image: busybox
    command: echo finished
networks:
  default:
    ipam: {config: [{subnet: 10.202.6.0/24}]}
"#,
    );
    let mut child = stack
        .command(&["up", "--no-color", "-t", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        text
    });
    stack.wait_for("talker running", || {
        containers(&stack).get("fg-talker-1").is_some_and(|c| c.1 == "running")
    });
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let text = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("fg-talker-1  | talker ready"), "{text}");
    assert!(text.contains("fg-done-1    | finished"), "{text}");
    let ps = containers(&stack);
    assert_eq!(ps["fg-talker-1"].1, "exited", "{ps:?}");
    stack.down_and_check();
}

#[test]
fn abort_on_container_exit_returns_the_chosen_exit_code() {
    let stack = Stack::new(
        "abort",
        r#"
services:
  server:
    image: busybox
    command: sleep 300
  tests:
    image: busybox
    command: sh -c "echo testing; exit 7"
networks:
  default:
    ipam: {config: [{subnet: 10.202.7.0/24}]}
"#,
    );
    let out = stack.run(&["up", "--exit-code-from", "tests", "-t", "1"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(stdout(&out).contains("testing"));
    assert_eq!(containers(&stack)["abort-server-1"].1, "exited");
    stack.down_and_check();
}

#[test]
fn restart_policies_back_off_give_up_and_respect_stop() {
    let stack = Stack::new(
        "restarts",
        r#"
services:
  crash:
    image: busybox
    command: sh -c "echo crashing; exit 1"
    restart: on-failure:3
  always:
    image: busybox
    command: sh -c "echo running; sleep 0.2"
    restart: always
  never:
    image: busybox
    command: sh -c "exit 2"
networks:
  default:
    ipam: {config: [{subnet: 10.202.8.0/24}]}
"#,
    );
    stack.ok(&["up", "-d"]);
    stack.wait_for("crash to give up after 3 restarts", || {
        stack
            .summary("restarts-crash-1")
            .is_some_and(|c| c["RestartCount"] == 3 && c["State"] == "exited")
    });
    stack.wait_for("always to be restarted 3 times", || {
        stack
            .summary("restarts-always-1")
            .is_some_and(|c| c["RestartCount"].as_u64().unwrap_or(0) >= 3)
    });
    // Gave up: no fourth run, however long we wait for the backoff.
    std::thread::sleep(Duration::from_secs(2));
    let crash = stack.summary("restarts-crash-1").unwrap();
    assert_eq!(
        (crash["RestartCount"].as_u64(), crash["ExitCode"].as_i64()),
        (Some(3), Some(1))
    );
    let logs = stack.ok(&["logs", "crash"]);
    assert_eq!(logs.matches("crashing").count(), 4, "{logs}");
    let never = stack.summary("restarts-never-1").unwrap();
    assert_eq!(
        (never["RestartCount"].as_u64(), never["State"].as_str()),
        (Some(0), Some("exited"))
    );
    // A stopped container stays stopped.
    stack.ok(&["stop", "-t", "1", "always"]);
    let count = stack.summary("restarts-always-1").unwrap()["RestartCount"].clone();
    std::thread::sleep(Duration::from_secs(1));
    let always = stack.summary("restarts-always-1").unwrap();
    assert_eq!(always["State"], "exited");
    assert_eq!(always["RestartCount"], count);
    stack.down_and_check();
}

/// The engine's pid, from its version answer.
fn engine_pid(stack: &Stack) -> i32 {
    let client = berth::engine::api::Client::new(berth::engine::api::socket_path(&stack.engine.root));
    let version = client.request("GET", "/v1/version", None).unwrap();
    i32::try_from(version["pid"].as_i64().unwrap()).unwrap()
}

#[test]
fn an_engine_killed_at_any_point_recovers_and_converges() {
    let yaml = |generation: u32| {
        format!(
            r#"
services:
  a:
    image: busybox
    command: sleep 300
    environment: [GENERATION={generation}]
    deploy: {{replicas: 2}}
  b:
    image: busybox
    command: sleep 300
    depends_on: [a]
    environment: [GENERATION={generation}]
networks:
  default:
    ipam: {{config: [{{subnet: 10.202.9.0/24}}]}}
  extra:
    ipam: {{config: [{{subnet: 10.202.10.0/24}}]}}
"#
        )
    };
    let stack = Stack::new("killed", &yaml(0));
    stack.ok(&["up", "-d", "-t", "0"]);
    let running_before = containers(&stack);
    // The containers outlive their engine.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(engine_pid(&stack)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(containers(&stack), running_before);
    for (generation, delay_ms) in [(1, 5), (2, 40), (3, 120), (4, 250), (5, 600)] {
        eprintln!("generation {generation}");
        stack.write("compose.yaml", &yaml(generation));
        let pid = engine_pid(&stack);
        let mut child = stack
            .command(&["up", "-d", "-t", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        // The next verb starts a new engine, which repairs and converges.
        let out = stack.run(&["up", "-d", "-t", "0"]);
        if !out.status.success() {
            let log = std::fs::read_to_string(stack.engine.root.path().join("engine.log")).unwrap_or_default();
            panic!(
                "generation {generation}: up failed: {}\nengine log:\n{log}",
                stderr(&out)
            );
        }
        let ps = containers(&stack);
        assert_eq!(ps.len(), 3, "generation {generation}: {ps:?}");
        assert!(
            ps.values().all(|(_, state, _)| state == "running"),
            "generation {generation}: {ps:?}"
        );
    }
    // Converged: a further up has nothing to do.
    let again = stack.ok(&["up", "-d"]);
    assert!(!again.contains("Creat") && !again.contains("Start"), "{again}");
    // Killed during `down` too: the next `down` finishes the job.
    for delay_ms in [30, 150] {
        let pid = engine_pid(&stack);
        let mut child = stack
            .command(&["down", "-v", "-t", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        stack.ok(&["up", "-d", "-t", "0"]);
    }
    stack.down_and_check();
}

#[test]
fn down_by_project_name_alone_and_up_wait() {
    let stack = Stack::new(
        "byname",
        r#"
services:
  db:
    image: busybox
    command: sh -c "sleep 1; touch /tmp/ok; exec sleep 300"
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 200ms, start_interval: 100ms, start_period: 10s}
    volumes: [data:/data]
  app:
    image: busybox
    command: sleep 300
    depends_on: [db]
networks:
  default:
    ipam: {config: [{subnet: 10.202.11.0/24}]}
volumes:
  data: {}
"#,
    );
    // --wait returns once the healthcheck passes.
    stack.ok(&["up", "--wait", "-t", "0"]);
    let ps = containers(&stack);
    assert_eq!(ps["byname-db-1"].2, "healthy", "{ps:?}");
    // Elsewhere, with only the name: the project is found by its labels.
    let elsewhere = stack.engine.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(&elsewhere)
        .arg("--root")
        .arg(stack.engine.root.path())
        .args(["-p", "byname", "down", "-v", "-t", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Network byname_default  Removed"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("Volume byname_data  Removed"), "{}", stderr(&out));
    stack.down_and_check();
}

#[test]
fn restart_policies_are_honoured_by_a_new_engine() {
    let stack = Stack::new(
        "reborn",
        r#"
services:
  worker:
    image: busybox
    command: sh -c "echo started; sleep 300"
    restart: always
networks:
  default:
    ipam: {config: [{subnet: 10.202.12.0/24}]}
"#,
    );
    stack.ok(&["up", "-d"]);
    stack.stop_engine();
    // The worker dies while no engine runs.
    let state = berth::runtime::container::find(&stack.engine.root, "reborn-worker-1")
        .unwrap()
        .state()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(state.pid.unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let c = berth::runtime::container::find(&stack.engine.root, "reborn-worker-1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.state().unwrap().status == berth::runtime::config::Status::Running {
        assert!(Instant::now() < deadline, "the worker did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Any verb starts an engine, which restarts it.
    stack.wait_for("the worker to be restarted", || {
        stack
            .summary("reborn-worker-1")
            .is_some_and(|c| c["State"] == "running" && c["RestartCount"] == 1)
    });
    stack.down_and_check();
}

#[test]
fn logs_tail_timestamps_and_no_start() {
    let stack = Stack::new(
        "logs",
        r#"
services:
  counter:
    image: busybox
    command: sh -c "for i in 1 2 3 4 5; do echo line$$i; done; sleep 300"
  later:
    image: busybox
    command: sh -c "echo later"
networks:
  default:
    ipam: {config: [{subnet: 10.202.13.0/24}]}
"#,
    );
    let json = stack.ok(&["--progress", "json", "up", "-d", "--no-start"]);
    assert!(
        json.contains(r#"{"kind":"Container","name":"logs-counter-1","status":"Created"}"#),
        "{json}"
    );
    let ps = containers(&stack);
    assert!(ps.values().all(|(_, state, _)| state == "created"), "{ps:?}");
    let quiet = stack.run(&["--progress", "quiet", "start"]);
    assert!(
        quiet.status.success() && stderr(&quiet).is_empty(),
        "{}",
        stderr(&quiet)
    );
    stack.wait_for("five lines", || stack.ok(&["logs", "counter"]).contains("line5"));
    let tail = stack.ok(&["logs", "--tail", "2", "--no-log-prefix", "counter"]);
    assert_eq!(tail.lines().collect::<Vec<_>>(), vec!["line4", "line5"], "{tail}");
    let stamped = stack.ok(&["logs", "-t", "--tail", "1", "counter"]);
    assert!(
        stamped.contains("logs-counter-1  | 20") && stamped.contains("Z line5"),
        "{stamped}"
    );
    let colored = stack.ok(&["--ansi", "always", "logs", "--tail", "1", "counter"]);
    assert!(
        colored.contains("\x1b[36mlogs-counter-1  |\x1b[0m line5"),
        "{colored:?}"
    );
    let future = stack.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "counter"]);
    assert!(future.trim().is_empty(), "{future}");
    // `logs -f` ends when the containers it follows have exited.
    let out = stack.ok(&["logs", "-f", "later"]);
    assert!(out.contains("logs-later-1  | later"), "{out}");
    stack.down_and_check();
}

#[test]
fn configs_secrets_and_a_taken_port_refused_before_anything_is_made() {
    let stack = Stack::new(
        "files",
        r#"
services:
  app:
    image: busybox
    command: sh -c "cat /site.conf /etc/inline.conf /run/secrets/token; ls -l /etc/inline.conf; sleep 300"
    configs:
      - source: site
        target: /site.conf
      - source: inline
        target: /etc/inline.conf
        mode: 0440
    secrets: [token]
  web:
    image: busybox
    command: httpd -f -p 80
    ports: ["18213:80"]
configs:
  site: {file: ./site.conf}
  inline: {content: "inline-config"}
secrets:
  token: {environment: BERTH_TEST_TOKEN}
networks:
  default:
    ipam: {config: [{subnet: 10.202.14.0/24}]}
"#,
    );
    std::fs::write(stack.dir.join("site.conf"), "site-config\n").unwrap();
    // Something else holds the web's port: nothing of the project is made.
    let holder = std::net::TcpListener::bind("0.0.0.0:18213").unwrap();
    let out = stack
        .command(&["up", "-d"])
        .env("BERTH_TEST_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("service \"web\"") && err.contains("18213"), "{err}");
    assert!(containers(&stack).is_empty());
    assert!(berth::network::NetworkStore::new(&stack.engine.root)
        .list()
        .unwrap()
        .is_empty());
    drop(holder);
    let out = stack
        .command(&["up", "-d"])
        .env("BERTH_TEST_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stack.wait_for("the app's output", || stack.ok(&["logs", "app"]).contains("-r--r-----"));
    let logs = stack.ok(&["logs", "--no-log-prefix", "app"]);
    assert!(
        logs.contains("site-config") && logs.contains("inline-config") && logs.contains("s3cret"),
        "{logs}"
    );
    let denied = stack.run(&["exec", "-T", "app", "sh", "-c", "echo x > /site.conf"]);
    assert!(!denied.status.success(), "configs are read-only");
    stack.down_and_check();
    assert!(!stack.engine.root.path().join("projects/files").exists());
}

#[test]
fn up_build_builds_both_services_and_rebuilds_what_changed() {
    let stack = Stack::new(
        "built",
        r#"
services:
  api:
    build: ./api
    command: sh -c "cat /message; sleep 300"
  worker:
    build:
      context: ./worker
      args: {GREETING: hello-worker}
    image: built-worker:dev
    command: sh -c "cat /message; sleep 300"
networks:
  default:
    ipam: {config: [{subnet: 10.202.15.0/24}]}
"#,
    );
    for (dir, dockerfile) in [
        ("api", "FROM busybox\nRUN echo api-v1 > /message\n"),
        ("worker", "FROM busybox\nARG GREETING\nRUN echo $GREETING > /message\n"),
    ] {
        std::fs::create_dir_all(stack.dir.join(dir)).unwrap();
        std::fs::write(stack.dir.join(dir).join("Dockerfile"), dockerfile).unwrap();
    }
    // Missing images of services with `build:` are built by a plain `up`.
    let out = stack.ok(&["up", "-d", "-t", "0"]);
    assert!(
        out.contains("Image built-api  Built") && out.contains("Image built-worker:dev  Built"),
        "{out}"
    );
    stack.wait_for("both messages", || {
        let logs = stack.ok(&["logs", "--no-log-prefix"]);
        logs.contains("api-v1") && logs.contains("hello-worker")
    });
    let before = containers(&stack);
    // `up --build` rebuilds; only the service whose image changed is recreated.
    std::fs::write(
        stack.dir.join("api/Dockerfile"),
        "FROM busybox\nRUN echo api-v2 > /message\n",
    )
    .unwrap();
    stack.ok(&["up", "-d", "--build", "-t", "0"]);
    let after = containers(&stack);
    assert_ne!(before["built-api-1"].0, after["built-api-1"].0);
    assert_eq!(before["built-worker-1"].0, after["built-worker-1"].0);
    stack.wait_for("the new api message", || stack.ok(&["logs", "api"]).contains("api-v2"));
    stack.down_and_check();
}

#[test]
fn the_image_healthcheck_gates_dependents() {
    let stack = Stack::new(
        "imagehealth",
        r#"
services:
  db:
    build: ./db
    command: sh -c "sleep 1; touch /tmp/ok; exec sleep 300"
  app:
    image: busybox
    command: sleep 300
    depends_on:
      db: {condition: service_healthy}
networks:
  default:
    ipam: {config: [{subnet: 10.202.16.0/24}]}
"#,
    );
    stack.write(
        "db/Dockerfile",
        "FROM busybox\nHEALTHCHECK --interval=200ms --start-period=10s --start-interval=100ms CMD test -f /tmp/ok\n",
    );
    let out = stack.ok(&["up", "-d", "-t", "0"]);
    assert!(out.contains("Container imagehealth-db-1  Healthy"), "{out}");
    assert_eq!(stack.summary("imagehealth-db-1").unwrap()["Health"], "healthy");
    stack.down_and_check();
}
