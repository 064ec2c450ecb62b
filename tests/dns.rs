//! Service discovery through the engine's DNS server on each network's
//! gateway: containers name the gateway in /etc/resolv.conf, service names
//! answer with every replica in turn, recreated containers are found at
//! their new address at once, other networks' names stay hidden, and other
//! names are forwarded (to a resolver of the test's own, named by
//! `BERTH_DNS_UPSTREAM`).
//!
//! Each test has its own engine root, project and 10.208.x.0/24 subnets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::network::dns::wire::{self, Rcode, Record};
use support::{network_engine, stderr, stdout, Engine};

/// A project directory with a compose file, and the engine it runs on.
struct Stack {
    engine: Engine,
    dir: PathBuf,
    project: String,
    upstream: Option<SocketAddr>,
}

impl Stack {
    fn new(project: &str, yaml: &str, upstream: Option<SocketAddr>) -> Stack {
        let engine = network_engine();
        let dir = engine.dir.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let stack = Stack {
            engine,
            dir,
            project: project.to_string(),
            upstream,
        };
        stack.write(yaml);
        stack
    }

    fn write(&self, yaml: &str) {
        std::fs::write(self.dir.join("compose.yaml"), yaml).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .current_dir(&self.dir)
            .arg("--root")
            .arg(self.engine.root.path())
            .args(["-p", &self.project])
            .args(args);
        // The engine is auto-started by the first verb and inherits this.
        match self.upstream {
            Some(upstream) => command.env("BERTH_DNS_UPSTREAM", upstream.to_string()),
            None => command.env_remove("BERTH_DNS_UPSTREAM"),
        };
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\nengine log:\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out),
            self.engine_log()
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    fn engine_log(&self) -> String {
        std::fs::read_to_string(self.engine.root.path().join("engine.log")).unwrap_or_default()
    }

    /// `exec -T SERVICE sh -c SCRIPT`: its output, whatever the status
    /// (nslookup exits 1 when one of its A/AAAA queries has no answer).
    fn sh(&self, service: &str, script: &str) -> String {
        let out = self.run(&["exec", "-T", service, "sh", "-c", script]);
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// [`Stack::sh`] until `done` accepts its output, for up to 15 s; the
    /// last output. The retry is for the bridge, not the server: a bridge
    /// without a MAC of its own takes its lowest port's, so when ports come
    /// and go the gateway's MAC can change under the containers' ARP
    /// caches, and a running container may not reach the gateway for a
    /// while (netavark pins the bridge MAC for this reason). The server's
    /// own delay is measured from the host, where no ARP is involved.
    fn sh_until(&self, service: &str, script: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.sh(service, script);
            if done(&out) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The address `container` holds on `network`, from the network store.
    fn address(&self, network: &str, container: &str) -> Ipv4Addr {
        let record = berth::network::NetworkStore::new(&self.engine.root)
            .get(network)
            .unwrap();
        record
            .allocations
            .iter()
            .find(|(_, owner)| owner.container_name == container)
            .map(|(address, _)| *address)
            .unwrap_or_else(|| panic!("{container} has no address on {network}: {record:?}"))
    }

    /// `down -v`, the engine stopped, and nothing of the root left.
    fn down_and_check(&self) {
        self.ok(&["down", "-v", "-t", "1"]);
        let _ = self.engine.berth(&["engine", "--stop"]);
        self.engine.assert_no_residue();
        assert!(
            !self.engine.root.path().join("dns.active").exists(),
            "the engine left its DNS marker"
        );
        let networks = berth::network::NetworkStore::new(&self.engine.root).list().unwrap();
        assert!(networks.is_empty(), "networks left: {networks:?}");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A failed test must not leave its engine running.
        let _ = self.engine.berth(&["engine", "--stop"]);
    }
}

/// One query from the host to `server`:53; the rcode and A answers.
fn query(server: Ipv4Addr, name: &str, qtype: u16) -> (Rcode, Vec<Ipv4Addr>) {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let id = (std::process::id() & 0xFFFF) as u16;
    socket
        .send_to(&wire::build_query(id, name, qtype), (server, 53))
        .unwrap();
    let mut buffer = [0u8; 1500];
    let len = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..2], &id.to_be_bytes());
    wire::parse_a_answers(&buffer[..len]).unwrap()
}

/// `query`, retried for up to 10 s until the server answers at all (it
/// binds within its poll interval of the network's creation).
fn query_when_up(server: Ipv4Addr, name: &str) -> (Rcode, Vec<Ipv4Addr>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        socket
            .send_to(&wire::build_query(1, name, wire::TYPE_A), (server, 53))
            .unwrap();
        let mut buffer = [0u8; 1500];
        match socket.recv(&mut buffer) {
            Ok(len) => return wire::parse_a_answers(&buffer[..len]).unwrap(),
            Err(e) if Instant::now() > deadline => panic!("no DNS answer from {server}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A resolver of the test's own on loopback: `external.test` is
/// 192.0.2.77, anything else NXDOMAIN; it records every name asked.
struct Upstream {
    address: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start() -> Upstream {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let address = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, done) = (Arc::clone(&asked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !done.load(Ordering::SeqCst) {
                let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let Ok(query) = wire::parse_query(&buffer[..len]) else {
                    continue;
                };
                let name = query.question.name().to_ascii_lowercase();
                log.lock().unwrap().push(name.clone());
                let reply = match (name.as_str(), query.question.qtype) {
                    ("external.test", wire::TYPE_A) => wire::response(
                        &query,
                        Rcode::NoError,
                        false,
                        &[Record::A(Ipv4Addr::new(192, 0, 2, 77))],
                        60,
                        512,
                    ),
                    ("external.test", _) => wire::response(&query, Rcode::NoError, false, &[], 60, 512),
                    _ => wire::response(&query, Rcode::NxDomain, false, &[], 60, 512),
                };
                let _ = socket.send_to(&reply, peer);
            }
        });
        Upstream { address, asked, stop }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn median_and_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

#[test]
fn service_names_resolve_through_the_gateway_with_replicas_in_turn_and_others_forwarded() {
    let upstream = Upstream::start();
    let stack = Stack::new(
        "dnsa",
        r#"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
    deploy: {replicas: 2}
  client:
    image: busybox
    command: sleep 3600
    extra_hosts: ["db.test:10.9.9.9"]
networks:
  default:
    ipam: {config: [{subnet: 10.208.1.0/24}]}
"#,
        Some(upstream.address),
    );
    stack.ok(&["up", "-d"]);
    let gateway = Ipv4Addr::new(10, 208, 1, 1);
    let web1 = stack.address("dnsa_default", "dnsa-web-1");
    let web2 = stack.address("dnsa_default", "dnsa-web-2");

    // The container's resolver is the gateway, and it answers there.
    let resolv = stack.sh("client", "cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.208.1.1\n"), "{resolv}");
    assert_eq!(resolv.matches("nameserver").count(), 1, "{resolv}");
    query_when_up(gateway, "web");
    let both = |o: &str| o.contains(&web1.to_string()) && o.contains(&web2.to_string());
    let out = stack.sh_until("client", "nslookup web 10.208.1.1", both);
    assert!(
        out.contains(&web1.to_string()) && out.contains(&web2.to_string()),
        "{out}"
    );
    // The same through resolv.conf (no server argument), and by container
    // name; and wget to the service name reaches a replica.
    let out = stack.sh_until("client", "nslookup dnsa-web-2", |o| o.contains(&web2.to_string()));
    assert!(
        out.contains(&web2.to_string()) && !out.contains(&web1.to_string()),
        "{out}"
    );
    // The client's extra_hosts and localhost agree with its hosts file (a
    // glibc without nsswitch.conf asks DNS first).
    let out = stack.sh_until("client", "nslookup db.test", |o| o.contains("10.9.9.9"));
    assert!(out.contains("10.9.9.9"), "{out}");
    let out = stack.sh("client", "ping -c 1 -W 1 localhost");
    assert!(out.contains("127.0.0.1"), "{out}");
    let page = stack.sh("client", "wget -q -O - http://web/");
    assert!(!page.trim().is_empty() && !page.contains("wget:"), "{page}");

    // Round robin: successive answers start with each replica in turn.
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (rcode, answers) = query(gateway, "web", wire::TYPE_A);
        assert_eq!(rcode, Rcode::NoError);
        assert_eq!(answers.len(), 2, "{answers:?}");
        firsts.insert(answers[0]);
    }
    assert_eq!(firsts, [web1, web2].into_iter().collect(), "both replicas lead in turn");
    // Case, trailing dot; no IPv6; unknown single labels stay local.
    assert_eq!(query(gateway, "WEB.", wire::TYPE_A).1.len(), 2);
    assert_eq!(query(gateway, "web", wire::TYPE_AAAA), (Rcode::NoError, vec![]));
    assert_eq!(query(gateway, "nosuch", wire::TYPE_A), (Rcode::NxDomain, vec![]));

    // Other names go to the upstream and its answer comes back.
    let out = stack.sh_until("client", "nslookup external.test", |o| o.contains("192.0.2.77"));
    assert!(out.contains("192.0.2.77"), "{out}\nengine log:\n{}", stack.engine_log());
    let asked = upstream.asked();
    assert!(asked.iter().any(|n| n == "external.test"), "{asked:?}");
    assert!(
        !asked.iter().any(|n| n.starts_with("nosuch") || n.starts_with("web")),
        "container names leaked upstream: {asked:?}"
    );
    assert_eq!(query(gateway, "missing.test", wire::TYPE_A), (Rcode::NxDomain, vec![]));

    // Per-query latency from the host (docs/bench.md).
    let time = |name: &str| {
        let samples: Vec<Duration> = (0..300)
            .map(|_| {
                let start = Instant::now();
                query(gateway, name, wire::TYPE_A);
                start.elapsed()
            })
            .collect();
        median_and_p99(samples)
    };
    let (known, known_p99) = time("web");
    let (forwarded, forwarded_p99) = time("external.test");
    eprintln!(
        "dns latency: known name median {known:?} p99 {known_p99:?}; forwarded median {forwarded:?} p99 {forwarded_p99:?}"
    );
    stack.down_and_check();
}

#[test]
fn names_stay_on_their_network_and_follow_a_recreated_container_at_once() {
    let yaml = |address: &str| {
        format!(
            r#"
services:
  api:
    image: busybox
    command: sleep 3600
    stop_signal: SIGKILL
    networks:
      front: {{ipv4_address: {address}}}
  hidden:
    image: busybox
    command: sleep 3600
    networks: [back]
  client:
    image: busybox
    command: sleep 3600
    networks: [front]
networks:
  front:
    ipam: {{config: [{{subnet: 10.208.2.0/24}}]}}
  back:
    ipam: {{config: [{{subnet: 10.208.3.0/24}}]}}
"#
        )
    };
    let stack = Stack::new("dnsb", &yaml("10.208.2.10"), None);
    stack.ok(&["up", "-d"]);
    let front = Ipv4Addr::new(10, 208, 2, 1);
    query_when_up(front, "api");
    let out = stack.sh_until("client", "nslookup api 10.208.2.1", |o| o.contains("10.208.2.10"));
    assert!(out.contains("10.208.2.10"), "{out}");
    // hidden is on back only: not from client, whichever gateway it asks.
    let hidden = stack.address("dnsb_back", "dnsb-hidden-1");
    for server in ["10.208.2.1", "10.208.3.1"] {
        let out = stack.sh_until("client", &format!("nslookup hidden {server}"), |o| {
            o.contains("NXDOMAIN")
        });
        assert!(!out.contains(&hidden.to_string()), "{out}");
        assert!(out.contains("NXDOMAIN"), "{out}");
    }
    let out = stack.sh_until("hidden", "nslookup hidden", |o| o.contains(&hidden.to_string()));
    assert!(out.contains(&hidden.to_string()), "{out}");

    // Recreated at another address: served at once.
    stack.write(&yaml("10.208.2.20"));
    stack.ok(&["up", "-d", "-t", "1"]);
    let started = Instant::now();
    let moved = Ipv4Addr::new(10, 208, 2, 20);
    loop {
        let (_, answers) = query(front, "api", wire::TYPE_A);
        if answers == [moved] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "api still answers {answers:?} {:?} after the recreation",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "recreated container served at its new address after {:?}",
        started.elapsed()
    );
    // From a container: a new one, since a running one's ARP entry for
    // the gateway may now be stale (see `Stack::sh_until`).
    let out = stack.engine.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "dnsb_front",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup api",
    ]);
    assert!(out.contains("nameserver 10.208.2.1\n"), "{out}");
    assert!(
        out.contains("10.208.2.20") && !out.contains("10.208.2.10"),
        "{out}\nengine log:\n{}",
        stack.engine_log()
    );
    stack.down_and_check();
}

#[test]
fn without_an_engine_containers_keep_the_hosts_resolvers() {
    let engine = network_engine();
    engine.ok(&["network", "create", "--subnet", "10.208.4.0/24", "dnsnone"]);
    let out = engine.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "dnsnone",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(!out.contains("10.208.4.1"), "{out}");
    engine.ok(&["network", "rm", "dnsnone"]);
    engine.assert_no_residue();
}
