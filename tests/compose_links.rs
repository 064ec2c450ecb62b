//! `volumes_from` and `links` on the real kernel: a container sees the
//! very volumes (named, anonymous) and bind mounts of its source, `:ro`
//! is enforced, recreating the source keeps the data shared, an unknown
//! source fails before anything is made; a link alias resolves through the
//! engine's DNS server for the container that declares it and no other.
//!
//! Each test has its own engine root, project and 10.209.x.0/24 subnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::stack::Stack;
use support::{stderr, stdout};

/// `exec -T SERVICE sh -c SCRIPT`: (success, stdout + stderr).
fn sh(stack: &Stack, service: &str, script: &str) -> (bool, String) {
    let out = stack.run(&["exec", "-T", service, "sh", "-c", script]);
    (out.status.success(), format!("{}{}", stdout(&out), stderr(&out)))
}

/// [`sh`] until `done` accepts the output, for up to 15 s (a recreated
/// container can change the bridge's MAC under a running container's ARP
/// cache for a while: see tests/dns.rs).
fn sh_until(stack: &Stack, service: &str, script: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, out) = sh(stack, service, script);
        if done(&out) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The address `container` holds on `network`.
fn address(stack: &Stack, network: &str, container: &str) -> Ipv4Addr {
    let record = berth::network::NetworkStore::new(&stack.engine.root)
        .get(network)
        .unwrap();
    record
        .allocations
        .iter()
        .find(|(_, owner)| owner.container_name == container)
        .map(|(address, _)| *address)
        .unwrap_or_else(|| panic!("{container} has no address on {network}: {record:?}"))
}

fn volume_names(stack: &Stack) -> Vec<String> {
    berth::volume::VolumeStore::open(&stack.engine.root)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

#[test]
fn volumes_from_shares_the_sources_volumes_and_binds_and_ro_is_enforced() {
    let stack = Stack::new(
        "vfrom",
        r#"
services:
  src:
    image: busybox
    command: sleep 3600
    volumes: [data:/named, /anon, ./host:/bind]
    tmpfs: [/scratch]
  user:
    image: busybox
    command: sleep 3600
    volumes_from: [src]
  reader:
    image: busybox
    command: sleep 3600
    volumes_from: ["src:ro"]
networks:
  default:
    ipam: {config: [{subnet: 10.209.1.0/24}]}
volumes:
  data: {}
"#,
    );
    stack.write("host/hello", "from the host\n");
    stack.ok(&["up", "-d"]);
    // One named and one anonymous volume: the users mount the source's,
    // they get none of their own.
    let volumes = volume_names(&stack);
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    assert!(volumes.contains(&"vfrom_data".to_string()), "{volumes:?}");

    // Data the source writes is what the users read, and the other way.
    let (ok, out) = sh(&stack, "src", "echo anon-data > /anon/f && echo named-data > /named/f");
    assert!(ok, "{out}");
    let (ok, out) = sh(&stack, "user", "cat /anon/f /named/f /bind/hello");
    assert!(ok, "{out}");
    assert_eq!(out, "anon-data\nnamed-data\nfrom the host\n");
    let (ok, out) = sh(&stack, "user", "echo from-user > /anon/g && echo x > /bind/from-user");
    assert!(ok, "{out}");
    assert_eq!(sh(&stack, "src", "cat /anon/g").1, "from-user\n");
    assert!(stack.path("host/from-user").exists());
    // tmpfs mounts are not shared.
    let (_, mounts) = sh(&stack, "user", "cat /proc/mounts");
    assert!(!mounts.contains(" /scratch "), "{mounts}");
    assert!(mounts.contains(" /anon ") && mounts.contains(" /bind "), "{mounts}");

    // `:ro`: everything is read-only for reader, readable all the same.
    assert_eq!(
        sh(&stack, "reader", "cat /anon/f /named/f").1,
        "anon-data\nnamed-data\n"
    );
    for target in ["/anon", "/named", "/bind"] {
        let (ok, out) = sh(&stack, "reader", &format!("echo x > {target}/denied"));
        assert!(!ok && out.contains("Read-only file system"), "{target}: {out}");
    }

    // Recreating the source keeps its anonymous volume (compose reuses
    // it), and the users, recreated after it, still share it.
    stack.ok(&["up", "-d", "--force-recreate", "src"]);
    assert_eq!(volume_names(&stack), volumes);
    assert_eq!(sh(&stack, "src", "cat /anon/f /anon/g").1, "anon-data\nfrom-user\n");
    let (ok, out) = sh(&stack, "src", "echo after > /anon/h");
    assert!(ok, "{out}");
    assert_eq!(sh(&stack, "user", "cat /anon/h").1, "after\n");
    assert_eq!(sh(&stack, "reader", "cat /anon/h").1, "after\n");
    // A second up changes nothing.
    let again = stack.ok(&["up", "-d"]);
    assert!(!again.contains("Recreate"), "{again}");

    stack.down_and_check();
}

#[test]
fn volumes_from_a_container_by_name() {
    let stack = Stack::new(
        "vfromc",
        r#"
services:
  user:
    image: busybox
    command: sleep 3600
    volumes_from: ["container:vfromc-keeper:ro"]
networks:
  default:
    ipam: {config: [{subnet: 10.209.2.0/24}]}
"#,
    );
    // A container of no project, with an anonymous volume.
    stack.engine.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "vfromc-keeper",
        "-v",
        "/kept",
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept/f; exec sleep 3600",
    ]);
    stack.wait_for("the keeper's file", || {
        let out = stack
            .engine
            .berth(&["container", "exec", "vfromc-keeper", "cat", "/kept/f"]);
        stdout(&out) == "kept\n"
    });
    stack.ok(&["up", "-d"]);
    assert_eq!(sh(&stack, "user", "cat /kept/f").1, "kept\n");
    let (ok, out) = sh(&stack, "user", "touch /kept/x");
    assert!(!ok && out.contains("Read-only file system"), "{out}");
    assert_eq!(volume_names(&stack).len(), 1);

    stack.ok(&["down", "-t", "1"]);
    stack.engine.ok(&["container", "rm", "-f", "-v", "vfromc-keeper"]);
    stack.down_and_check();
}

#[test]
fn an_unknown_volumes_from_source_fails_before_anything_is_made() {
    let stack = Stack::new(
        "vfromx",
        r#"
services:
  db:
    image: busybox
    command: sleep 3600
  user:
    image: busybox
    command: sleep 3600
    volumes_from: [nosuch]
networks:
  default:
    ipam: {config: [{subnet: 10.209.4.0/24}]}
"#,
    );
    let out = stack.run(&["up", "-d"]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("services.user.volumes_from[0]") && text.contains("undefined service \"nosuch\""),
        "{text}"
    );

    // A container that does not exist: the engine refuses before it makes
    // the network or any container.
    stack.write(
        "compose.yaml",
        r#"
services:
  db:
    image: busybox
    command: sleep 3600
  user:
    image: busybox
    command: sleep 3600
    volumes_from: ["container:vfromx-nosuch"]
networks:
  default:
    ipam: {config: [{subnet: 10.209.4.0/24}]}
"#,
    );
    let out = stack.run(&["up", "-d"]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("service \"user\"")
            && text.contains("volumes_from \"container:vfromx-nosuch\"")
            && text.contains("no such container"),
        "{text}"
    );
    assert!(stack.ps_json().is_empty());
    assert!(berth::network::NetworkStore::new(&stack.engine.root)
        .list()
        .unwrap()
        .is_empty());
    stack.down_and_check();
}

#[test]
fn a_link_alias_resolves_for_the_declaring_container_only() {
    let stack = Stack::new(
        "links",
        r#"
services:
  db:
    image: busybox
    command: sh -c "mkdir -p /www && echo db-page > /www/index.html && exec httpd -f -p 80 -h /www"
  app:
    image: busybox
    command: sleep 3600
    links: [db, "db:database"]
  other:
    image: busybox
    command: sleep 3600
networks:
  default:
    ipam: {config: [{subnet: 10.209.3.0/24}]}
"#,
    );
    stack.ok(&["up", "-d"]);
    let db = address(&stack, "links_default", "links-db-1").to_string();

    // The alias answers for app, by DNS and for a connection.
    let out = sh_until(&stack, "app", "nslookup database", |o| o.contains(&db));
    assert!(out.contains(&db), "{out}\nengine log:\n{}", stack.engine_log());
    let out = sh_until(&stack, "app", "wget -q -O - http://database/", |o| {
        o.contains("db-page")
    });
    assert!(out.contains("db-page"), "{out}");
    let (_, out) = sh(&stack, "app", "ping -c 1 -W 1 database");
    assert!(out.contains(&db), "{out}");

    // other shares the network and resolves db, but not app's alias.
    let out = sh_until(&stack, "other", "nslookup db", |o| o.contains(&db));
    assert!(out.contains(&db), "{out}");
    let (_, out) = sh(&stack, "other", "nslookup database");
    assert!(!out.contains(&db), "{out}");
    let (ok, out) = sh(&stack, "other", "ping -c 1 -W 1 database");
    assert!(!ok && !out.contains(&db), "{out}");

    // A recreated db is followed at once (its address may change).
    stack.ok(&["up", "-d", "--force-recreate", "db"]);
    let db = address(&stack, "links_default", "links-db-1").to_string();
    let out = sh_until(&stack, "app", "nslookup database", |o| o.contains(&db));
    assert!(out.contains(&db), "{out}");

    stack.down_and_check();
}
