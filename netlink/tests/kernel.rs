//! berth-netlink against the real kernel. Needs root; not skipped without it.
//!
//! Every link, address and route here lives in throwaway network namespaces
//! that the test creates (anonymous ones, which vanish with their handle
//! even if the test dies); each test also checks that the host's links are
//! exactly as they were. Interface names can repeat across tests because no
//! two tests share a namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

use berth_netlink::{blocking, sysctl, BridgeSpec, Netns, VethSpec};
use nix::sched::{setns, CloneFlags};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the berth-netlink kernel tests create network namespaces, links and mounts and need root \
         (CAP_NET_ADMIN and CAP_SYS_ADMIN); run `cargo test -p berth-netlink` as root"
    );
}

/// The host's links, read twice over: through sysfs (which is independent
/// of this crate and shows the namespace sysfs was mounted in, the host's)
/// and through this crate from the test thread, which never leaves the
/// host namespace.
#[derive(Debug, PartialEq, Eq)]
struct HostLinks {
    /// Names from `/sys/class/net`.
    sysfs: Vec<String>,
    /// What this crate reports: index, name, kind, MTU, state, master, alias.
    netlink: Vec<berth_netlink::Link>,
}

impl HostLinks {
    fn snapshot() -> Self {
        require_root();
        let mut sysfs: Vec<String> = fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        sysfs.sort();
        let mut netlink = blocking::Netlink::open().unwrap().links().unwrap();
        netlink.sort_by_key(|link| link.index);
        Self { sysfs, netlink }
    }

    fn assert_unchanged(self) {
        assert_eq!(HostLinks::snapshot(), self, "the host's links changed during the test");
    }
}

fn link_names(nl: &blocking::Netlink) -> Vec<String> {
    let mut names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

/// Sends datagrams from `client_ns` to a UDP echo server bound to `server`
/// in `server_ns` until one comes back (ARP and the bridge's first
/// forwarding can eat the first), and returns the reply's source.
fn udp_echo(server_ns: &Netns, server: SocketAddr, client_ns: &Netns) -> SocketAddr {
    // Sockets belong to the namespace they are created in; they are then
    // used from ordinary threads.
    let server_socket = server_ns
        .run(|| UdpSocket::bind(server))
        .unwrap()
        .expect("binding the echo server");
    server_socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = server_socket.recv_from(&mut buf) {
            if &buf[..n] == b"quit" {
                return;
            }
            server_socket.send_to(&buf[..n], from).unwrap();
        }
        panic!("the echo server heard nothing for 10 s");
    });

    let client = client_ns.run(|| UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
    client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 64];
    let mut reply_from = None;
    for _ in 0..20 {
        client.send_to(b"berth-echo", server).unwrap();
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"berth-echo");
            reply_from = Some(from);
            break;
        }
    }
    client.send_to(b"quit", server).unwrap();
    echo.join().unwrap();
    reply_from.unwrap_or_else(|| panic!("no UDP echo from {server} within 6 s"))
}

#[test]
fn bridge_and_veth_carry_packets_between_namespaces_and_clean_up() {
    let host = HostLinks::snapshot();
    let ns_a = Netns::create_anonymous().unwrap();
    let ns_b = Netns::create_anonymous().unwrap();
    let a = blocking::Netlink::open_in(&ns_a).unwrap();
    let b = blocking::Netlink::open_in(&ns_b).unwrap();

    let bridge = a
        .create_bridge(&BridgeSpec {
            mtu: Some(1400),
            ..BridgeSpec::new("br-test")
        })
        .unwrap();
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    assert_eq!(bridge.mtu, Some(1400));
    assert!(bridge.up);
    a.set_alias("br-test", "berth-test:net:default").unwrap();

    // The peer is born in ns B: it never exists in ns A.
    let host_end = a
        .create_veth(&VethSpec {
            name: "vb-test",
            peer: "eth0",
            peer_netns: Some(&ns_b),
            mtu: Some(1400),
        })
        .unwrap();
    assert_eq!(host_end.kind.as_deref(), Some("veth"));
    assert_eq!(a.find_link("eth0").unwrap(), None);
    let peer = b.link("eth0").unwrap();
    assert_eq!(
        (peer.kind.as_deref(), peer.mtu, peer.up),
        (Some("veth"), Some(1400), false)
    );
    a.set_alias("vb-test", "berth-test:ctr:c1").unwrap();

    a.set_master("vb-test", "br-test").unwrap();
    assert_eq!(a.link("vb-test").unwrap().master, Some(bridge.index));
    a.set_link_up("vb-test").unwrap();
    a.add_address("br-test", ip("10.200.0.1"), 24).unwrap();
    // Reachable only through ns B's default route.
    a.add_address("br-test", ip("10.201.0.1"), 32).unwrap();

    b.set_link_up("lo").unwrap();
    b.set_link_up("eth0").unwrap();
    b.add_address("eth0", ip("10.200.0.2"), 24).unwrap();
    b.add_default_route(ip("10.200.0.1")).unwrap();
    let eth0 = b.link("eth0").unwrap();
    assert!(b
        .routes()
        .unwrap()
        .iter()
        .any(|r| r.is_default() && r.gateway == Some(ip("10.200.0.1")) && r.link_index == Some(eth0.index)));

    let on_link = SocketAddr::new(ip("10.200.0.1"), 40001);
    assert_eq!(udp_echo(&ns_a, on_link, &ns_b), on_link);
    let via_gateway = SocketAddr::new(ip("10.201.0.1"), 40002);
    assert_eq!(udp_echo(&ns_a, via_gateway, &ns_b), via_gateway);

    // Cleanup finds what it owns by alias, whatever it is called.
    let mut owned: Vec<String> = a
        .links_with_alias_prefix("berth-test:")
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    owned.sort();
    assert_eq!(owned, ["br-test", "vb-test"]);
    assert_eq!(a.links_with_name_prefix("vb-").unwrap().len(), 1);
    for name in owned {
        a.delete_link(&name).unwrap();
    }
    assert_eq!(link_names(&a), ["lo"]);
    // Deleting the host end took the peer in ns B with it, and its routes.
    assert_eq!(link_names(&b), ["lo"]);
    assert!(b.routes().unwrap().iter().all(|r| r.link_index != Some(eth0.index)));
    assert!(a.links_with_alias_prefix("berth-test:").unwrap().is_empty());

    drop((a, b));
    host.assert_unchanged();
}

#[test]
fn rename_mtu_state_and_move_by_fd() {
    let host = HostLinks::snapshot();
    let ns_a = Netns::create_anonymous().unwrap();
    let ns_b = Netns::create_anonymous().unwrap();
    let a = blocking::Netlink::open_in(&ns_a).unwrap();
    let b = blocking::Netlink::open_in(&ns_b).unwrap();

    let mv0 = a
        .create_veth(&VethSpec {
            name: "mv0",
            peer: "mv1",
            peer_netns: None,
            mtu: None,
        })
        .unwrap();
    assert_eq!(a.link("mv1").unwrap().kind.as_deref(), Some("veth"));

    a.set_mtu("mv0", 1280).unwrap();
    assert_eq!(a.link("mv0").unwrap().mtu, Some(1280));
    a.set_link_up("mv0").unwrap();
    assert!(a.link("mv0").unwrap().up);
    a.set_link_down("mv0").unwrap();
    assert!(!a.link("mv0").unwrap().up);

    a.rename_link("mv0", "mv0-renamed").unwrap();
    assert_eq!(a.find_link("mv0").unwrap(), None);
    let renamed = a.link("mv0-renamed").unwrap();
    assert_eq!((renamed.index, renamed.mtu), (mv0.index, Some(1280)));
    assert_eq!(a.link_by_index(mv0.index).unwrap().name, "mv0-renamed");

    a.move_link("mv1", &ns_b).unwrap();
    assert_eq!(a.find_link("mv1").unwrap(), None);
    assert_eq!(b.link("mv1").unwrap().kind.as_deref(), Some("veth"));

    a.delete_link("mv0-renamed").unwrap();
    assert_eq!(link_names(&a), ["lo"]);
    assert_eq!(link_names(&b), ["lo"]);

    drop((a, b));
    host.assert_unchanged();
}

#[test]
fn ipv4_and_ipv6_addresses_are_added_listed_and_removed() {
    let host = HostLinks::snapshot();
    let ns = Netns::create_anonymous().unwrap();
    let nl = blocking::Netlink::open_in(&ns).unwrap();
    // Down, so the kernel adds no IPv6 link-local address of its own.
    nl.create_bridge(&BridgeSpec {
        up: false,
        ..BridgeSpec::new("br-addr")
    })
    .unwrap();

    nl.add_address("br-addr", ip("10.0.0.1"), 24).unwrap();
    nl.add_address("br-addr", ip("fd00:b::1"), 64).unwrap();
    let mut listed: Vec<(IpAddr, u8)> = nl
        .addresses("br-addr")
        .unwrap()
        .into_iter()
        .map(|a| (a.address, a.prefix_len))
        .collect();
    listed.sort();
    assert_eq!(listed, [(ip("10.0.0.1"), 24), (ip("fd00:b::1"), 64)]);

    let again = nl.add_address("br-addr", ip("10.0.0.1"), 24).unwrap_err();
    assert!(again.is_already_exists(), "{again}");
    assert_eq!(
        again.to_string(),
        r#"adding address 10.0.0.1/24 to link "br-addr": File exists (os error 17)"#
    );

    nl.delete_address("br-addr", ip("10.0.0.1"), 24).unwrap();
    nl.delete_address("br-addr", ip("fd00:b::1"), 64).unwrap();
    assert!(nl.addresses("br-addr").unwrap().is_empty());
    let gone = nl.delete_address("br-addr", ip("10.0.0.1"), 24).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");

    nl.delete_link("br-addr").unwrap();
    assert_eq!(link_names(&nl), ["lo"]);
    drop(nl);
    host.assert_unchanged();
}

#[test]
fn routes_to_a_subnet_through_a_link() {
    let host = HostLinks::snapshot();
    let ns = Netns::create_anonymous().unwrap();
    let nl = blocking::Netlink::open_in(&ns).unwrap();
    let bridge = nl.create_bridge(&BridgeSpec::new("br-route")).unwrap();
    nl.add_address("br-route", ip("10.60.0.1"), 24).unwrap();

    nl.add_route(ip("10.61.0.0"), 16, "br-route").unwrap();
    nl.add_route(ip("fd00:61::"), 64, "br-route").unwrap();
    let routes = nl.routes().unwrap();
    for (destination, prefix_len) in [(ip("10.61.0.0"), 16), (ip("fd00:61::"), 64)] {
        assert!(
            routes.iter().any(|r| r.destination == destination
                && r.prefix_len == prefix_len
                && r.link_index == Some(bridge.index)
                && r.gateway.is_none()),
            "{destination}/{prefix_len} missing from {routes:?}"
        );
    }

    nl.delete_route(ip("10.61.0.0"), 16, "br-route").unwrap();
    nl.delete_route(ip("fd00:61::"), 64, "br-route").unwrap();
    let routes = nl.routes().unwrap();
    assert!(routes
        .iter()
        .all(|r| r.destination != ip("10.61.0.0") && r.destination != ip("fd00:61::")));
    assert!(nl
        .delete_route(ip("10.61.0.0"), 16, "br-route")
        .unwrap_err()
        .is_not_found());

    nl.delete_link("br-route").unwrap();
    assert!(
        nl.routes().unwrap().is_empty(),
        "routes left: {:?}",
        nl.routes().unwrap()
    );
    drop(nl);
    host.assert_unchanged();
}

#[test]
fn errors_name_the_operation_and_the_link() {
    let host = HostLinks::snapshot();
    let ns = Netns::create_anonymous().unwrap();
    let nl = blocking::Netlink::open_in(&ns).unwrap();
    nl.create_bridge(&BridgeSpec::new("br-1a2b")).unwrap();

    let twice = nl.create_bridge(&BridgeSpec::new("br-1a2b")).unwrap_err();
    assert!(twice.is_already_exists());
    assert_eq!(
        twice.to_string(),
        r#"creating bridge "br-1a2b": File exists (os error 17)"#
    );

    let missing = nl.set_master("br-1a2b", "br-none").unwrap_err();
    assert!(missing.is_not_found());
    assert_eq!(
        missing.to_string(),
        r#"attaching link "br-1a2b" to "br-none": No such device (os error 19)"#
    );
    assert!(nl.link("nope").unwrap_err().is_not_found());
    assert!(nl.create_bridge(&BridgeSpec::new("a-name-over-15-bytes")).is_err());

    nl.delete_link("br-1a2b").unwrap();
    assert!(nl.delete_link("br-1a2b").unwrap_err().is_not_found());
    drop(nl);
    host.assert_unchanged();
}

/// Leaves no bind mount behind in the temporary directory if the test
/// fails before `Netns::delete` (a no-op after it).
struct DetachOnDrop(std::path::PathBuf);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn named_namespace_opens_by_path_and_by_pid_and_deletes() {
    let host = HostLinks::snapshot();
    let dir = tempfile::tempdir().unwrap();
    let named = Netns::create_named(dir.path(), "berth-test").unwrap();
    let path = named.path().unwrap().to_path_buf();
    let _unmount_on_panic = DetachOnDrop(path.clone());
    assert!(!named.same_as(&Netns::current().unwrap()).unwrap());
    assert!(Netns::open(&path).unwrap().same_as(&named).unwrap());
    let mountinfo = || fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mountinfo().contains(path.to_str().unwrap()));
    assert!(Netns::create_named(dir.path(), "berth-test")
        .unwrap_err()
        .to_string()
        .contains("File exists"));

    // A process placed in the namespace before exec; the namespace is then
    // reachable as /proc/<pid>/ns/net like a container's.
    let target = named.as_fd().try_clone_to_owned().unwrap();
    let mut command = Command::new("sleep");
    command.arg("30");
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setns(2), which is async-signal-safe; `target` was opened
    // before the fork and stays valid in the child.
    unsafe {
        command.pre_exec(move || setns(&target, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
    }
    let mut child = command.spawn().expect("spawning sleep(1) inside the namespace");
    let by_pid = Netns::open(format!("/proc/{}/ns/net", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(by_pid.same_as(&named).unwrap());

    // Work done through the /proc handle lands in the named namespace.
    let nl = blocking::Netlink::open_in(&by_pid).unwrap();
    nl.create_bridge(&BridgeSpec::new("br-named")).unwrap();
    assert!(blocking::Netlink::open_in(&named)
        .unwrap()
        .find_link("br-named")
        .unwrap()
        .is_some());
    drop((nl, by_pid));

    named.delete().unwrap();
    assert!(!path.exists());
    assert!(!mountinfo().contains(path.to_str().unwrap()));
    host.assert_unchanged();
}

#[test]
fn sysctls_apply_inside_the_namespace_only() {
    let host = HostLinks::snapshot();
    let read = |path: &str| fs::read_to_string(path).unwrap().trim().to_string();
    let host_forwarding = read("/proc/sys/net/ipv4/ip_forward");
    let ns = Netns::create_anonymous().unwrap();
    let nl = blocking::Netlink::open_in(&ns).unwrap();
    nl.create_bridge(&BridgeSpec::new("br-sysctl")).unwrap();

    let inside = ns
        .run(|| {
            sysctl::set_ipv4_forwarding(true)?;
            sysctl::set_rp_filter("br-sysctl", sysctl::RpFilter::Loose)?;
            sysctl::set_route_localnet("br-sysctl", true)?;
            sysctl::set_accept_dad("br-sysctl", false)?;
            Ok::<_, berth_netlink::Error>([
                read("/proc/sys/net/ipv4/ip_forward"),
                read("/proc/sys/net/ipv4/conf/br-sysctl/rp_filter"),
                read("/proc/sys/net/ipv4/conf/br-sysctl/route_localnet"),
                read("/proc/sys/net/ipv6/conf/br-sysctl/accept_dad"),
            ])
        })
        .unwrap()
        .unwrap();
    assert_eq!(inside, ["1", "2", "1", "0"]);
    assert_eq!(read("/proc/sys/net/ipv4/ip_forward"), host_forwarding);

    // The bridge is not in the host namespace, so the host has no such file.
    let err = sysctl::set_rp_filter("br-sysctl", sysctl::RpFilter::Loose).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"writing "2" to /proc/sys/net/ipv4/conf/br-sysctl/rp_filter: "#),
        "{err}"
    );

    drop(nl);
    host.assert_unchanged();
}

#[test]
fn async_api_runs_in_a_callers_tokio_runtime() {
    let host = HostLinks::snapshot();
    let ns = Netns::create_anonymous().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let link = runtime
        .block_on(async {
            let nl = berth_netlink::Netlink::open_in(&ns)?;
            nl.create_bridge(&BridgeSpec::new("br-async")).await?;
            nl.set_alias("br-async", "berth-test:async").await?;
            let link = nl.link("br-async").await?;
            nl.delete_link("br-async").await?;
            Ok::<_, berth_netlink::Error>(link)
        })
        .unwrap();
    assert_eq!(link.alias.as_deref(), Some("berth-test:async"));
    assert!(
        berth_netlink::Netlink::open().is_err(),
        "outside a runtime the async API must refuse, not panic"
    );
    host.assert_unchanged();
}
