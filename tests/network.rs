//! Bridge networks on the real kernel, driven through the binary: the
//! bridge, NAT, veth plumbing, addresses, refusals and failure cleanup.
//! Each test has its own network names and its own 10.200.x.0/24 subnet;
//! traffic only goes to the tests' own containers and the host's own
//! addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::network::{bridge_name, nat, NetworkStore};
use support::{host_address, network_engine, stderr, stdout, Engine};

/// `ip -o -d link` lines, which show each link's name and alias.
fn host_links() -> String {
    let out = Command::new("ip").args(["-o", "-d", "link", "show"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_exists(name: &str) -> bool {
    host_links()
        .lines()
        .any(|l| l.contains(&format!(": {name}:")) || l.contains(&format!(": {name}@")))
}

/// Everything network-related a test may leave: links marked for this
/// root or named after its networks, the root's nft table, allocations.
fn assert_no_network_residue(e: &Engine, networks: &[&str]) {
    let tag = e.root.tag();
    let marker = format!("berth:{tag}");
    let links = host_links();
    for line in links.lines() {
        assert!(!line.contains(&marker), "link of this root left: {line}");
        for network in networks {
            let bridge = bridge_name(&tag, network);
            assert!(!line.contains(&bridge), "bridge of {network} left: {line}");
        }
    }
    assert!(!nat::table_exists(&e.root).unwrap(), "nft table of the root left");
    for record in NetworkStore::new(&e.root).list().unwrap() {
        assert!(
            record.allocations.is_empty(),
            "addresses left on {}: {:?}",
            record.name,
            record.allocations
        );
    }
}

fn create_network(e: &Engine, name: &str, extra: &[&str]) {
    let mut args = vec!["network", "create"];
    args.extend_from_slice(extra);
    args.push(name);
    e.ok(&args);
}

fn inspect(e: &Engine, what: &str, name: &str) -> serde_json::Value {
    serde_json::from_str(&e.ok(&[what, "inspect", name])).unwrap()
}

fn wait_exited(e: &Engine, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect(e, "container", name)[0]["State"]["Status"] != "exited" {
        assert!(Instant::now() < deadline, "{name} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn containers_on_one_network_talk_over_tcp() {
    let e = network_engine();
    create_network(&e, "bt-tcp", &["--subnet", "10.200.1.0/24", "--label", "purpose=test"]);
    let net = inspect(&e, "network", "bt-tcp");
    assert_eq!(net[0]["IPAM"]["Config"][0]["Subnet"], "10.200.1.0/24");
    assert_eq!(net[0]["IPAM"]["Config"][0]["Gateway"], "10.200.1.1");
    assert_eq!(net[0]["Labels"]["purpose"], "test");
    let bridge = bridge_name(&e.root.tag(), "bt-tcp");
    assert_eq!(net[0]["Options"]["com.docker.network.bridge.name"], bridge.as_str());
    assert!(link_exists(&bridge), "bridge {bridge} is made");
    // Pinned: ports coming and going never change the gateway's MAC.
    let mac = berth::network::bridge::bridge_mac(&bridge);
    let expected: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    let address = || std::fs::read_to_string(format!("/sys/class/net/{bridge}/address")).unwrap();
    assert_eq!(address().trim(), expected.join(":"));
    assert!(nat::table_exists(&e.root).unwrap(), "NAT table is made");
    assert_eq!(e.ok(&["network", "ls", "-q"]).trim(), "bt-tcp");

    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "server",
        "--network",
        "bt-tcp",
        "--ip",
        "10.200.1.10",
        "busybox",
        "sh",
        "-c",
        // Held open a moment after "pong", so that the client's "ping"
        // is read before busybox nc ends at its stdin's EOF.
        "(echo pong; sleep 1) | nc -l -p 8080",
    ]);
    let server = inspect(&e, "container", "server");
    let id = server[0]["Id"].as_str().unwrap().to_string();
    let veth = berth::network::veth_name(&id, 0);
    assert!(link_exists(&veth), "host end {veth} of the server's veth");
    // The server may not listen yet: retry the client until it answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        let out = e.berth(&[
            "container",
            "run",
            "--rm",
            "--name",
            "client",
            "--network",
            "bt-tcp",
            "--network-alias",
            "caller",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; ip -o -4 addr show eth0; echo ping | nc -w 5 10.200.1.10 8080",
        ]);
        let text = stdout(&out);
        if text.contains("pong") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(client.contains("pong"), "client output:\n{client}");
    assert!(
        client.contains("inet 10.200.1.2/24"),
        "first dynamic address:\n{client}"
    );
    assert!(
        client
            .lines()
            .any(|l| l.starts_with("10.200.1.2\t") && l.ends_with(" client caller")),
        "/etc/hosts names the container:\n{client}"
    );
    wait_exited(&e, "server");
    let logs = e.ok(&["container", "logs", "server"]);
    assert!(logs.contains("ping"), "server log: {logs}");
    assert!(!link_exists(&veth), "the exited server's veth is gone");
    e.ok(&["container", "rm", "server"]);
    assert_eq!(address().trim(), expected.join(":"), "the bridge keeps its MAC");
    e.ok(&["network", "rm", "bt-tcp"]);
    assert!(!link_exists(&bridge));
    e.assert_no_residue();
    assert_no_network_residue(&e, &["bt-tcp"]);
}

#[test]
fn static_addresses_conflicts_and_removal_while_attached() {
    let e = network_engine();
    create_network(
        &e,
        "bt-static",
        &["--subnet", "10.200.2.0/24", "--ip-range", "10.200.2.128/25"],
    );
    e.ok(&[
        "container",
        "create",
        "--name",
        "first",
        "--network",
        "bt-static",
        "--ip",
        "10.200.2.5",
        "busybox",
        "true",
    ]);
    let out = e.berth(&[
        "container",
        "create",
        "--name",
        "second",
        "--network",
        "bt-static",
        "--ip",
        "10.200.2.5",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("address 10.200.2.5 is already used by container \"first\""),
        "{err}"
    );
    assert_eq!(
        e.ok(&["container", "ls", "-a", "-q"]).lines().count(),
        1,
        "nothing created"
    );
    let net = inspect(&e, "network", "bt-static");
    assert_eq!(net[0]["Containers"].as_object().unwrap().len(), 1);

    // Dynamic addresses come from the ip-range.
    e.ok(&[
        "container",
        "create",
        "--name",
        "third",
        "--network",
        "bt-static",
        "busybox",
        "true",
    ]);
    let net = inspect(&e, "network", "bt-static");
    let addresses: Vec<String> = net[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap().to_string())
        .collect();
    assert!(addresses.contains(&"10.200.2.128/24".to_string()), "{addresses:?}");

    let out = e.berth(&["network", "rm", "bt-static"]);
    assert!(!out.status.success(), "refused while attached");
    assert!(
        stderr(&out).contains("still used by \"first\", \"third\""),
        "{}",
        stderr(&out)
    );
    assert!(
        link_exists(&bridge_name(&e.root.tag(), "bt-static")),
        "refusal keeps the bridge"
    );
    e.ok(&["container", "rm", "first", "third"]);
    e.ok(&["network", "rm", "bt-static"]);
    e.assert_no_residue();
    assert_no_network_residue(&e, &["bt-static"]);
}

#[test]
fn internal_networks_cannot_reach_the_host_nat_ones_can() {
    let e = network_engine();
    let host = host_address();
    let listener = TcpListener::bind((host, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"host-hi\n");
        }
    });
    create_network(&e, "bt-nat", &["--subnet", "10.200.3.0/24"]);
    create_network(&e, "bt-int", &["--subnet", "10.200.4.0/24", "--internal"]);
    let probe = format!("nc -w 3 {host} {port} </dev/null; ip route");
    let out = e.berth(&[
        "container",
        "run",
        "--rm",
        "--network",
        "bt-nat",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]);
    assert!(
        stdout(&out).contains("host-hi"),
        "NAT network reaches the host:\n{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("default via 10.200.3.1"), "{}", stdout(&out));
    let out = e.berth(&[
        "container",
        "run",
        "--rm",
        "--network",
        "bt-int",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]);
    assert!(
        !stdout(&out).contains("host-hi"),
        "internal network is cut off:\n{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("default"), "no default route: {}", stdout(&out));
    e.ok(&["network", "rm", "bt-int", "bt-nat"]);
    e.assert_no_residue();
    assert_no_network_residue(&e, &["bt-nat", "bt-int"]);
}

#[test]
fn failures_mid_setup_leave_nothing() {
    let e = network_engine();
    // A failed network create: no record, bridge or NAT table.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(e.root.path())
        .args(["network", "create", "--subnet", "10.200.5.0/24", "bt-badnet"])
        .env("BERTH_FAIL_AT", "bridge")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("injected failure at bridge"), "{}", stderr(&out));
    assert_eq!(e.ok(&["network", "ls", "-q"]), "");
    assert_no_network_residue(&e, &["bt-badnet"]);

    // A container whose veth setup fails after the veth exists.
    create_network(&e, "bt-fail", &["--subnet", "10.200.6.0/24"]);
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(e.root.path())
        .args(["container", "run", "--rm", "--network", "bt-fail", "busybox", "true"])
        .env("BERTH_FAIL_AT", "network")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("injected failure at network"), "{}", stderr(&out));
    e.assert_no_residue_but_networks();
    let links = host_links();
    assert!(
        !links.contains(&format!("berth:{}/", e.root.tag())),
        "no veth left:\n{links}"
    );
    assert!(NetworkStore::new(&e.root)
        .get("bt-fail")
        .unwrap()
        .allocations
        .is_empty());
    e.ok(&["network", "rm", "bt-fail"]);
    e.assert_no_residue();
    assert_no_network_residue(&e, &["bt-fail", "bt-badnet"]);
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let e = network_engine();
    create_network(&e, "bt-front", &["--subnet", "10.200.7.0/24"]);
    create_network(&e, "bt-back", &["--subnet", "10.200.8.0/24"]);
    e.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "bt-front",
        "busybox",
        "sleep",
        "300",
    ]);
    e.ok(&[
        "network",
        "connect",
        "--ip",
        "10.200.8.5",
        "--alias",
        "api",
        "bt-back",
        "app",
    ]);
    let addr = e.ok(&["container", "exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"]);
    assert!(addr.contains("inet 10.200.8.5/24"), "{addr}");
    // A peer on the new network reaches it, by address and by alias.
    let peer = e.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "bt-back",
        "busybox",
        "sh",
        "-c",
        "ping -c 1 -W 2 10.200.8.5 >/dev/null && echo reached; grep -w api /etc/hosts",
    ]);
    assert!(peer.contains("reached") && peer.contains("10.200.8.5"), "{peer}");
    let refused = e.berth(&["network", "connect", "bt-back", "app"]);
    assert!(!refused.status.success(), "connecting twice is refused");
    e.ok(&["network", "disconnect", "bt-back", "app"]);
    let links = e.ok(&["container", "exec", "app", "ls", "/sys/class/net"]);
    assert!(!links.contains("eth1"), "{links}");
    let back = inspect(&e, "network", "bt-back");
    assert!(back[0]["Containers"].as_object().unwrap().is_empty(), "{back}");
    e.ok(&["container", "rm", "-f", "app"]);
    e.ok(&["network", "rm", "bt-front", "bt-back"]);
    e.assert_no_residue();
}
