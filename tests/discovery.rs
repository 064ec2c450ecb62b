//! Service discovery by name on bridge networks, through the binary: each
//! container's /etc/hosts lists the live containers on its networks by
//! name, hostname and alias, and follows starts, stops and recreations.
//! Each test has its own network names and its own 10.202.x.0/24 subnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{network_engine, stdout, Engine};

/// Runs `a`, a busybox web server serving `page`, on `network`.
fn run_server(e: &Engine, network: &str, page: &str, extra: &[&str]) {
    let mut args = vec!["container", "run", "-d", "--name", "a", "--network", network];
    args.extend_from_slice(extra);
    let script = format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    e.ok(&args);
}

/// (No `wget -T`: Debian's busybox-static wget crashes with it.)
/// `wget http://<host>/` from a fresh `--rm` container on `network`,
/// retried until it answers or `within` passes; the last output.
fn fetch(e: &Engine, network: &str, host: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = e.berth(&[
            "container",
            "run",
            "--rm",
            "--network",
            network,
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{host}/"),
        ]);
        let text = stdout(&out);
        if out.status.success() || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `wget http://a/` inside running container `from`, retried for up to
/// 10 s until the page contains `want` (a server may not listen yet).
fn fetch_from(e: &Engine, from: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = e.berth(&["container", "exec", from, "wget", "-q", "-O", "-", "http://a/"]);
        let text = stdout(&out);
        if text.contains(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hosts_of(e: &Engine, name: &str) -> String {
    e.ok(&["container", "exec", name, "cat", "/etc/hosts"])
}

fn cleanup(e: &Engine, containers: &[&str], networks: &[&str]) {
    for c in containers {
        e.ok(&["container", "rm", "-f", c]);
    }
    for n in networks {
        e.ok(&["network", "rm", n]);
    }
    e.assert_no_residue();
}

#[test]
fn peers_resolve_by_name_hostname_and_alias() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.202.1.0/24", "bd-names"]);
    run_server(
        &e,
        "bd-names",
        "hello-a",
        &["--hostname", "web-host", "--network-alias", "web"],
    );
    for host in ["a", "web-host", "web"] {
        let page = fetch(&e, "bd-names", host, Duration::from_secs(20));
        assert!(page.contains("hello-a"), "fetching http://{host}/: {page:?}");
    }
    cleanup(&e, &["a"], &["bd-names"]);
}

#[test]
fn stopped_and_recreated_peers_are_followed() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.202.2.0/24", "bd-follow"]);
    run_server(&e, "bd-follow", "first", &[]);
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "bd-follow",
        "busybox",
        "sleep",
        "600",
    ]);
    let hosts = hosts_of(&e, "b");
    assert!(hosts.contains("# berth: managed"), "{hosts}");
    assert!(
        hosts.lines().any(|l| l.split_whitespace().skip(1).any(|n| n == "a")),
        "b sees a:\n{hosts}"
    );
    let page = fetch_from(&e, "b", "first");
    assert!(page.contains("first"), "{page}");

    e.ok(&["container", "stop", "-t", "1", "a"]);
    let hosts = hosts_of(&e, "b");
    assert!(
        !hosts.lines().any(|l| l.split_whitespace().skip(1).any(|n| n == "a")),
        "a stopped container is not listed:\n{hosts}"
    );

    // Recreated with the same name, on a new address: found at once.
    e.ok(&["container", "rm", "a"]);
    run_server(&e, "bd-follow", "second", &["--ip", "10.202.2.77"]);
    let started = Instant::now();
    let hosts = hosts_of(&e, "b");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("10.202.2.77\t") && l.split_whitespace().any(|n| n == "a")),
        "the new a is listed:\n{hosts}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let page = fetch_from(&e, "b", "second");
    assert!(page.contains("second"), "{page}");
    cleanup(&e, &["a", "b"], &["bd-follow"]);
}

#[test]
fn other_networks_are_not_visible() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.202.3.0/24", "bd-one"]);
    e.ok(&["network", "create", "--subnet", "10.202.4.0/24", "bd-two"]);
    run_server(&e, "bd-one", "hidden", &[]);
    // Same network: found (which also proves a is up).
    assert!(fetch(&e, "bd-one", "a", Duration::from_secs(20)).contains("hidden"));
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "bd-two",
        "busybox",
        "sleep",
        "600",
    ]);
    let hosts = hosts_of(&e, "b");
    assert!(
        !hosts.contains("10.202.3."),
        "b on bd-two sees nothing of bd-one:\n{hosts}"
    );
    let out = e.berth(&[
        "container",
        "exec",
        "b",
        // Debian's busybox-static `wget -T` crashes: bound it from outside.
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        "http://a/",
    ]);
    assert!(!out.status.success(), "a is not resolvable from bd-two");
    let hosts_a = hosts_of(&e, "a");
    assert!(!hosts_a.contains("10.202.4."), "a sees nothing of bd-two:\n{hosts_a}");
    cleanup(&e, &["a", "b"], &["bd-one", "bd-two"]);
}

#[test]
fn add_host_and_dns_options_reach_the_container() {
    let e = network_engine();
    e.ok(&["network", "create", "--subnet", "10.202.9.0/24", "bd-extra"]);
    let out = e.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "bd-extra",
        "--add-host",
        "db.test:10.9.9.9",
        "--add-host",
        "gw.test:host-gateway",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:1",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(
        out.contains("10.9.9.9\tdb.test") || out.contains("10.9.9.9 db.test"),
        "{out}"
    );
    assert!(
        out.contains("10.202.9.1\tgw.test") || out.contains("10.202.9.1 gw.test"),
        "{out}"
    );
    assert!(out.contains("nameserver 10.0.0.53\n"), "{out}");
    assert!(out.contains("search example.test\n"), "{out}");
    assert!(out.contains("options ndots:1\n"), "{out}");
    let err = e.berth(&[
        "container",
        "run",
        "--rm",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "true",
    ]);
    assert_ne!(err.status.code(), Some(0));
    assert!(
        support::stderr(&err).contains("host-gateway needs a bridge network"),
        "{}",
        support::stderr(&err)
    );
    cleanup(&e, &[], &["bd-extra"]);
    e.assert_no_residue();
}
