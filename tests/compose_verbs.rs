//! The compose verbs beyond `up`/`down` on the real kernel: `run`,
//! `create`, `wait`, `cp`, `scale`, `events`, `stats` and `system`.
//!
//! Each test has its own engine root, project, 10.205.x.0/24 subnet and
//! host ports 185xx, so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::stack::Stack;
use support::{stderr, stdout};

/// `ps -a --format json`: name → state.
fn states(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .ps_json()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_string(),
                c["State"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// GET http://127.0.0.1:PORT/, once.
fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn http_get_retried(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(port) {
            Ok(body) if body.contains(" 200 ") => return body,
            other if Instant::now() > deadline => panic!("GET :{port} failed: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn run_starts_dependencies_returns_the_exit_code_and_rm_leaves_nothing() {
    let stack = Stack::new(
        "vrun",
        r#"
services:
  db:
    image: busybox
    command: sleep 300
  app:
    image: busybox
    command: sleep 300
    environment: [FROM_FILE=yes]
    depends_on: [db]
networks:
  default:
    ipam: {config: [{subnet: 10.205.1.0/24}]}
"#,
    );
    let out = stack.run(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "app",
        "sh",
        "-c",
        "echo $GREETING $FROM_FILE $(pwd); exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains("hi yes /tmp"), "{}", stdout(&out));
    let ps = states(&stack);
    assert_eq!(ps.get("vrun-db-1").map(String::as_str), Some("running"), "{ps:?}");
    assert!(!ps.keys().any(|n| n.contains("-run-")), "one-off left: {ps:?}");
    assert!(
        !ps.contains_key("vrun-app-1"),
        "run must not create the service: {ps:?}"
    );

    // --entrypoint, and --no-deps after the dependency is gone.
    stack.ok(&["rm", "-s", "-f", "db"]);
    let out = stack.run(&["run", "--rm", "--no-deps", "--entrypoint", "sh -c 'exit 7'", "app"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(states(&stack).is_empty(), "{:?}", states(&stack));
    let out = stack.run(&["run", "--rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such service: nosuch"), "{}", stderr(&out));
    stack.down_and_check();
}

#[test]
fn run_publishes_only_with_service_ports_and_down_removes_one_offs() {
    let stack = Stack::new(
        "vports",
        r#"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /www && echo oneoff > /www/index.html && exec httpd -f -p 80 -h /www"
    ports: ["18501:80"]
networks:
  default:
    ipam: {config: [{subnet: 10.205.2.0/24}]}
"#,
    );
    let name = stack.ok(&["run", "-d", "web"]);
    let plain = name.lines().next().unwrap().to_string();
    assert!(plain.starts_with("vports-web-run-"), "{name}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(http_get(18501).is_err(), "published without --service-ports");
    let out = stack.ok(&["run", "-d", "--service-ports", "--name", "vports-served", "web"]);
    assert!(out.contains("vports-served"), "{out}");
    assert!(http_get_retried(18501).contains("oneoff"));
    let ps = states(&stack);
    assert_eq!(ps.get(&plain).map(String::as_str), Some("running"), "{ps:?}");
    assert_eq!(ps.get("vports-served").map(String::as_str), Some("running"), "{ps:?}");
    // compose: `down --remove-orphans` removes one-offs, running ones too.
    stack.ok(&["down", "--remove-orphans", "-t", "1"]);
    assert!(states(&stack).is_empty(), "{:?}", states(&stack));
    stack.down_and_check();
}

#[test]
fn create_then_start_and_wait_prints_exit_codes() {
    let stack = Stack::new(
        "vcreate",
        r#"
services:
  job:
    image: busybox
    command: sh -c "sleep 1; exit 4"
  other:
    image: busybox
    command: sh -c "exit 0"
networks:
  default:
    ipam: {config: [{subnet: 10.205.3.0/24}]}
"#,
    );
    stack.ok(&["create"]);
    let ps = states(&stack);
    assert_eq!(ps.get("vcreate-job-1").map(String::as_str), Some("created"), "{ps:?}");
    assert_eq!(ps.get("vcreate-other-1").map(String::as_str), Some("created"), "{ps:?}");
    stack.ok(&["start"]);
    let out = stack.run(&["wait", "job"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"vcreate-job-1\" exited with status code 4"),
        "{}",
        stdout(&out)
    );
    let out = stack.run(&["wait", "other"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("exited with status code 0"), "{}", stdout(&out));
    stack.down_and_check();
}

#[test]
fn cp_both_ways_and_scale_up_and_down() {
    let stack = Stack::new(
        "vcp",
        r#"
services:
  box:
    image: busybox
    command: sleep 300
networks:
  default:
    ipam: {config: [{subnet: 10.205.4.0/24}]}
"#,
    );
    stack.ok(&["up", "-d"]);
    let host = stack.dir.join("in.txt");
    std::fs::write(&host, "from the host\n").unwrap();
    stack.ok(&["cp", host.to_str().unwrap(), "box:/tmp/in.txt"]);
    let out = stack.ok(&["exec", "-T", "box", "cat", "/tmp/in.txt"]);
    assert!(out.contains("from the host"), "{out}");
    stack.ok(&["exec", "-T", "box", "sh", "-c", "echo from the box > /tmp/out.txt"]);
    let back = stack.dir.join("out.txt");
    stack.ok(&["cp", "box:/tmp/out.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the box\n");

    stack.ok(&["scale", "box=3"]);
    let ps = states(&stack);
    for n in 1..=3 {
        assert_eq!(
            ps.get(&format!("vcp-box-{n}")).map(String::as_str),
            Some("running"),
            "{ps:?}"
        );
    }
    // A new replica, reached by --index.
    stack.ok(&["cp", "--index", "3", host.to_str().unwrap(), "box:/tmp/three.txt"]);
    let out = stack.ok(&["exec", "-T", "--index", "3", "box", "cat", "/tmp/three.txt"]);
    assert!(out.contains("from the host"), "{out}");
    // The first replica was not recreated by scale (--no-recreate).
    let out = stack.ok(&["exec", "-T", "box", "cat", "/tmp/in.txt"]);
    assert!(out.contains("from the host"), "{out}");
    stack.ok(&["scale", "box=1"]);
    let ps = states(&stack);
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert!(ps.contains_key("vcp-box-1"), "{ps:?}");
    stack.down_and_check();
}

#[test]
fn events_follow_start_and_die_and_stats_reads_the_cgroup() {
    let stack = Stack::new(
        "vevents",
        r#"
services:
  busy:
    image: busybox
    command: sh -c "sleep 300 & sleep 300"
  short:
    image: busybox
    command: sh -c "sleep 1"
networks:
  default:
    ipam: {config: [{subnet: 10.205.5.0/24}]}
"#,
    );
    stack.ok(&["up", "-d", "busy"]);
    let out = stack.ok(&["stats", "--no-stream", "--format", "json", "busy"]);
    let line = out.lines().find(|l| l.starts_with('{')).unwrap();
    let stats: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(stats["Name"], "vevents-busy-1", "{stats}");
    assert!(stats["MemoryUsageBytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["MemoryLimitBytes"].as_u64().unwrap() > 0, "{stats}");
    // Two sleeps (the shell execs the last one).
    assert!(stats["PIDsCurrent"].as_u64().unwrap() >= 2, "{stats}");
    let table = stack.ok(&["stats", "--no-stream"]);
    assert!(
        table.contains("MEM USAGE / LIMIT") && table.contains("vevents-busy-1"),
        "{table}"
    );

    let mut events = stack
        .command(&["events", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(events.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let `events` take its first snapshot before anything happens.
    std::thread::sleep(Duration::from_millis(1500));
    stack.ok(&["up", "-d", "short"]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains(&"start".to_string()) && seen.contains(&"die".to_string())) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("no start and die in time; saw {seen:?}");
        };
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["service"] == "short" {
            assert_eq!(event["attributes"]["name"], "vevents-short-1", "{event}");
            if event["action"] == "die" {
                assert_eq!(event["attributes"]["exitCode"], "0", "{event}");
            }
            seen.push(event["action"].as_str().unwrap().to_string());
        }
    }
    let start = seen.iter().position(|a| a == "start").unwrap();
    let die = seen.iter().position(|a| a == "die").unwrap();
    assert!(start < die, "{seen:?}");
    let _ = events.kill();
    let _ = events.wait();
    stack.down_and_check();
}

#[test]
fn system_info_counts_and_prune_keeps_what_runs() {
    let stack = Stack::new(
        "vsystem",
        r#"
services:
  keep:
    image: busybox
    command: sleep 300
    networks: [front]
  gone:
    image: busybox
    command: sh -c "exit 0"
    networks: [back]
networks:
  front:
    ipam: {config: [{subnet: 10.205.6.0/24}]}
  back:
    ipam: {config: [{subnet: 10.205.7.0/24}]}
"#,
    );
    stack.ok(&["up", "-d"]);
    stack.wait_for("gone to exit", || {
        states(&stack).get("vsystem-gone-1").map(String::as_str) == Some("exited")
    });
    let out = stack.ok(&["system", "info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let expected = match berth::runtime::cgroups::detect() {
        berth::runtime::cgroups::Hierarchy::V2 => "2",
        _ => "1",
    };
    assert_eq!(info["CgroupVersion"], expected, "{info}");
    assert_eq!(info["CgroupDriver"], "cgroupfs", "{info}");
    assert_eq!(info["Containers"], 2, "{info}");
    assert_eq!(info["ContainersRunning"], 1, "{info}");
    assert_eq!(info["ContainersStopped"], 1, "{info}");
    assert_eq!(info["Networks"], 2, "{info}");
    assert_eq!(info["Images"], 1, "{info}");
    assert_eq!(info["EngineRunning"], true, "{info}");
    let text = stack.ok(&["system", "info"]);
    assert!(text.contains("Cgroup Version: "), "{text}");
    let df = stack.ok(&["system", "df"]);
    assert!(
        df.contains("Images") && df.contains("Containers") && df.contains("Local Volumes"),
        "{df}"
    );

    // Without -f nothing is removed when the answer is not yes.
    let mut refused = stack
        .command(&["system", "prune"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    refused.stdin.take().unwrap().write_all(b"n\n").unwrap();
    assert!(refused.wait().unwrap().success());
    assert_eq!(states(&stack).len(), 2);

    let out = stack.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("vsystem_back"), "{out}");
    assert!(!out.contains("vsystem_front"), "{out}");
    let ps = states(&stack);
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps.get("vsystem-keep-1").map(String::as_str), Some("running"), "{ps:?}");
    let networks: Vec<String> = berth::network::NetworkStore::new(&stack.engine.root)
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(networks, vec!["vsystem_front".to_string()]);
    // The image is in use by the running container: kept even with -a.
    let out = stack.ok(&["system", "prune", "-f", "-a"]);
    assert!(!out.contains("Deleted Images:"), "{out}");
    stack.down_and_check();
}
