use std::net::{Ipv4Addr, SocketAddr};

use super::*;
use crate::network::dns::wire::{TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_PTR};
use crate::runtime::config::{ContainerConfig, NetworkAttachment};

const MX: u16 = 15;

fn attachment(network: &str, address: [u8; 4], aliases: &[&str]) -> NetworkAttachment {
    NetworkAttachment {
        network: network.into(),
        bridge: "berth0".into(),
        address: address.into(),
        prefix: 24,
        gateway: Ipv4Addr::new(address[0], address[1], address[2], 1),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        veth_host: "bveth0".into(),
        mtu: 1500,
        internal: false,
    }
}

fn config(name: &str, hostname: &str, networks: Vec<NetworkAttachment>) -> ContainerConfig {
    let json = serde_json::json!({
        "id": format!("id-{name}"), "name": name, "image": "busybox", "image_id": "x", "layers": [],
        "args": ["sh"], "env": [], "working_dir": "/", "user": "", "group_add": [],
        "hostname": hostname, "domainname": null, "mounts": [], "devices": [],
        "resources": crate::runtime::cgroups::Resources::default(), "capabilities": [], "privileged": false,
        "read_only": false, "no_new_privileges": false, "seccomp": "default", "rlimits": [], "sysctls": {},
        "shm_size": 0, "init": false, "tty": false, "interactive": false,
        "stop_signal": "SIGTERM", "stop_timeout": 10, "network": "bridge",
        "auto_remove": false, "labels": {}, "log_max_size": 0, "log_max_files": 1,
        "created": "now",
    });
    let mut c: ContainerConfig = serde_json::from_value(json).unwrap();
    c.networks = networks;
    c
}

fn network(name: &str, third: u8, internal: bool) -> NetworkInfo {
    NetworkInfo {
        name: name.into(),
        subnet: Ipv4Cidr::new(Ipv4Addr::new(10, 0, third, 0), 24).unwrap(),
        internal,
    }
}

fn upstream() -> SocketAddr {
    "192.0.2.53:53".parse().unwrap()
}

fn host() -> HostResolvers {
    HostResolvers {
        upstreams: vec![upstream()],
        search: vec!["Corp.Example.".into()],
    }
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// front (10.0.1.0/24): client, web-1 and web-2 (service web), api (alias
/// "backend"); back (10.0.2.0/24): db and api; private (internal,
/// 10.0.3.0/24): lonely.
fn stack() -> Snapshot {
    let client = config(
        "app-client-1",
        "c1",
        vec![attachment("front", [10, 0, 1, 2], &["client"])],
    );
    let web1 = config("app-web-1", "w1", vec![attachment("front", [10, 0, 1, 11], &["web"])]);
    let web2 = config("app-web-2", "w2", vec![attachment("front", [10, 0, 1, 10], &["web"])]);
    let api = config(
        "app-api-1",
        "api-host",
        vec![
            attachment("back", [10, 0, 2, 5], &["api"]),
            attachment("front", [10, 0, 1, 5], &["api", "backend"]),
        ],
    );
    let db = config("app-db-1", "db-host", vec![attachment("back", [10, 0, 2, 9], &["db"])]);
    let lonely = config("lonely", "lonely", vec![attachment("private", [10, 0, 3, 2], &[])]);
    let live = [&client, &web1, &web2, &api, &db, &lonely];
    Snapshot::build(
        &[
            network("front", 1, false),
            network("back", 2, false),
            network("private", 3, true),
        ],
        &live,
        host(),
    )
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);

#[test]
fn container_names_hostnames_and_aliases_resolve() {
    let s = stack();
    for name in ["app-api-1", "api-host", "api", "backend"] {
        assert_eq!(
            s.resolve("front", CLIENT, name, TYPE_A, 0),
            Answer::Addresses(vec![ip(10, 0, 1, 5)]),
            "{name}"
        );
    }
}

#[test]
fn names_match_without_case_trailing_dot_or_search_domain() {
    let s = stack();
    let want = Answer::Addresses(vec![ip(10, 0, 1, 5)]);
    for name in ["API", "api.", "Backend.", "api.corp.example", "API.Corp.Example."] {
        assert_eq!(s.resolve("front", CLIENT, name, TYPE_A, 0), want, "{name}");
    }
    // Only a whole search domain is stripped.
    assert_eq!(
        s.resolve("front", CLIENT, "api.example", TYPE_A, 0),
        Answer::Forward(vec![upstream()])
    );
    assert_eq!(
        s.resolve("front", CLIENT, "corp.example", TYPE_A, 0),
        Answer::Forward(vec![upstream()])
    );
}

#[test]
fn replicas_answer_together_in_rotated_order() {
    let s = stack();
    let first = s.resolve("front", CLIENT, "web", TYPE_A, 0);
    assert_eq!(first, Answer::Addresses(vec![ip(10, 0, 1, 10), ip(10, 0, 1, 11)]));
    assert_eq!(
        s.resolve("front", CLIENT, "web", TYPE_A, 1),
        Answer::Addresses(vec![ip(10, 0, 1, 11), ip(10, 0, 1, 10)])
    );
    assert_eq!(s.resolve("front", CLIENT, "web", TYPE_A, 2), first);
    assert_eq!(s.resolve("front", CLIENT, "web", TYPE_ANY, 0), first);
    // A replica is still reachable alone by its container name.
    assert_eq!(
        s.resolve("front", CLIENT, "app-web-2", TYPE_A, 1),
        Answer::Addresses(vec![ip(10, 0, 1, 10)])
    );
}

#[test]
fn other_networks_are_invisible() {
    let s = stack();
    // db is on back only; client is on front only.
    assert_eq!(s.resolve("front", CLIENT, "db", TYPE_A, 0), Answer::NxDomain);
    assert_eq!(s.resolve("front", CLIENT, "app-db-1", TYPE_A, 0), Answer::NxDomain);
    // Asking back's gateway does not help: the client is known.
    assert_eq!(s.resolve("back", CLIENT, "db", TYPE_A, 0), Answer::NxDomain);
    // api sees both, and its answer for a peer on both networks is the
    // address on the network the query came in on.
    let api_front = ip(10, 0, 1, 5);
    assert_eq!(
        s.resolve("front", api_front, "db", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 2, 9)])
    );
    assert_eq!(
        s.resolve("back", ip(10, 0, 2, 5), "api", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 2, 5)])
    );
    assert_eq!(
        s.resolve("front", api_front, "api", TYPE_A, 0),
        Answer::Addresses(vec![api_front])
    );
}

#[test]
fn known_names_have_no_ipv6_and_no_other_types() {
    let s = stack();
    assert_eq!(s.resolve("front", CLIENT, "web", TYPE_AAAA, 0), Answer::NoData);
    assert_eq!(s.resolve("front", CLIENT, "web.corp.example", MX, 0), Answer::NoData);
}

#[test]
fn unknown_single_labels_stay_here_and_dotted_names_are_forwarded() {
    let s = stack();
    assert_eq!(s.resolve("front", CLIENT, "nosuch", TYPE_A, 0), Answer::NxDomain);
    assert_eq!(s.resolve("front", CLIENT, "nosuch", TYPE_AAAA, 0), Answer::NxDomain);
    assert_eq!(
        s.resolve("front", CLIENT, "example.com", TYPE_A, 0),
        Answer::Forward(vec![upstream()])
    );
    assert_eq!(
        s.resolve("front", CLIENT, "example.com", TYPE_AAAA, 0),
        Answer::Forward(vec![upstream()])
    );
    // A name under the search domain that no container has goes out too.
    assert_eq!(
        s.resolve("front", CLIENT, "printer.corp.example", TYPE_A, 0),
        Answer::Forward(vec![upstream()])
    );
}

#[test]
fn internal_networks_forward_nothing() {
    let s = stack();
    let lonely = ip(10, 0, 3, 2);
    assert_eq!(s.resolve("private", lonely, "example.com", TYPE_A, 0), Answer::NxDomain);
    assert_eq!(
        s.resolve("private", lonely, "lonely", TYPE_A, 0),
        Answer::Addresses(vec![lonely])
    );
}

#[test]
fn a_containers_own_dns_and_search_take_precedence() {
    let mut me = config("me", "me", vec![attachment("front", [10, 0, 1, 7], &[])]);
    me.dns = vec!["10.9.9.9".into(), "127.0.0.1:5300".into()];
    me.dns_search = vec!["lab.test".into()];
    let web = config("web", "web", vec![attachment("front", [10, 0, 1, 8], &[])]);
    let s = Snapshot::build(&[network("front", 1, false)], &[&me, &web], host());
    let me_ip = ip(10, 0, 1, 7);
    assert_eq!(
        s.resolve("front", me_ip, "example.com", TYPE_A, 0),
        Answer::Forward(vec!["10.9.9.9:53".parse().unwrap(), "127.0.0.1:5300".parse().unwrap()])
    );
    assert_eq!(
        s.resolve("front", me_ip, "web.lab.test", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 8)])
    );
    // The client's search list replaces the host's.
    assert_eq!(
        s.resolve("front", me_ip, "web.corp.example", TYPE_A, 0),
        Answer::Forward(me.dns.iter().map(|d| upstream::parse_server(d).unwrap()).collect())
    );
}

#[test]
fn unknown_clients_inside_the_subnet_are_on_the_network_others_refused() {
    let s = stack();
    // A container newer than the snapshot, or the host via the gateway.
    for source in [ip(10, 0, 1, 99), ip(10, 0, 1, 1)] {
        assert!(!s.knows_client(source));
        assert_eq!(
            s.resolve("front", source, "api", TYPE_A, 0),
            Answer::Addresses(vec![ip(10, 0, 1, 5)])
        );
        assert_eq!(s.resolve("front", source, "db", TYPE_A, 0), Answer::NxDomain);
    }
    assert_eq!(s.resolve("front", ip(172, 16, 0, 1), "api", TYPE_A, 0), Answer::Refused);
    assert_eq!(s.resolve("gone", ip(10, 0, 1, 99), "api", TYPE_A, 0), Answer::Refused);
    assert!(s.knows_client(CLIENT));
}

#[test]
fn reverse_lookups_of_peers() {
    let s = stack();
    assert_eq!(
        s.resolve("front", CLIENT, "10.1.0.10.in-addr.arpa", TYPE_PTR, 0),
        Answer::Pointer("app-web-2".into())
    );
    assert_eq!(
        s.resolve("front", CLIENT, "10.1.0.10.IN-ADDR.ARPA.", TYPE_PTR, 0),
        Answer::Pointer("app-web-2".into())
    );
    // A free address of the client's subnet: nobody upstream knows it.
    assert_eq!(
        s.resolve("front", CLIENT, "200.1.0.10.in-addr.arpa", TYPE_PTR, 0),
        Answer::NxDomain
    );
    // db's address is on a network the client is not on: not ours to say.
    assert_eq!(
        s.resolve("front", CLIENT, "9.2.0.10.in-addr.arpa", TYPE_PTR, 0),
        Answer::Forward(vec![upstream()])
    );
    assert_eq!(
        s.resolve("front", CLIENT, "8.8.8.8.in-addr.arpa", TYPE_PTR, 0),
        Answer::Forward(vec![upstream()])
    );
    assert_eq!(reverse_address("1.2.3.in-addr.arpa"), None);
    assert_eq!(reverse_address("x.2.3.4.in-addr.arpa"), None);
}

#[test]
fn without_any_resolver_forwards_go_nowhere() {
    let c = config("c", "c", vec![attachment("front", [10, 0, 1, 2], &[])]);
    let s = Snapshot::build(&[network("front", 1, false)], &[&c], HostResolvers::default());
    assert_eq!(
        s.resolve("front", CLIENT, "example.com", TYPE_A, 0),
        Answer::Forward(vec![])
    );
}

#[test]
fn an_empty_snapshot_knows_nothing() {
    let s = Snapshot::default();
    assert_eq!(s.resolve("front", CLIENT, "web", TYPE_A, 0), Answer::Refused);
    assert_eq!(s.networks().count(), 0);
}

#[test]
fn a_clients_extra_hosts_answer_for_it_alone() {
    let mut me = config("me", "me", vec![attachment("front", [10, 0, 1, 7], &[])]);
    me.extra_hosts = vec![("DB.test".into(), ip(10, 9, 9, 9)), ("gw".into(), ip(10, 0, 1, 1))];
    let other = config("other", "other", vec![attachment("front", [10, 0, 1, 8], &[])]);
    let s = Snapshot::build(&[network("front", 1, false)], &[&me, &other], host());
    let me_ip = ip(10, 0, 1, 7);
    assert_eq!(
        s.resolve("front", me_ip, "db.test.", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 9, 9, 9)])
    );
    assert_eq!(s.resolve("front", me_ip, "db.test", TYPE_AAAA, 0), Answer::NoData);
    assert_eq!(
        s.resolve("front", me_ip, "gw", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 1)])
    );
    assert_eq!(
        s.resolve("front", ip(10, 0, 1, 8), "db.test", TYPE_A, 0),
        Answer::Forward(vec![upstream()])
    );
}

#[test]
fn localhost_is_loopback_for_everyone_in_a_network() {
    let s = stack();
    for name in ["localhost", "LOCALHOST.", "db.localhost"] {
        assert_eq!(
            s.resolve("front", CLIENT, name, TYPE_A, 0),
            Answer::Addresses(vec![Ipv4Addr::LOCALHOST]),
            "{name}"
        );
    }
    assert_eq!(s.resolve("front", CLIENT, "localhost", TYPE_AAAA, 0), Answer::NoData);
}

fn link(target: &str, alias: &str) -> crate::runtime::config::Link {
    crate::runtime::config::Link {
        target: target.into(),
        alias: alias.into(),
    }
}

/// front: me (links db:database, Web:WWW, gone:ghost, app-other-1:web,
/// secret:hush), the db replicas at `db_addresses`, web, other; back:
/// hidden (alias "secret"), on no network with me.
fn linked_stack(db_addresses: &[[u8; 4]]) -> Snapshot {
    let mut me = config("app-me-1", "me", vec![attachment("front", [10, 0, 1, 7], &["me"])]);
    me.links = vec![
        link("db", "database"),
        link("Web", "WWW"),
        link("gone", "ghost"),
        link("app-other-1", "web"),
        link("secret", "hush"),
    ];
    let dbs: Vec<ContainerConfig> = db_addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            config(
                &format!("app-db-{}", i + 1),
                "db",
                vec![attachment("front", *a, &["db"])],
            )
        })
        .collect();
    let web = config("app-web-1", "w", vec![attachment("front", [10, 0, 1, 20], &["web"])]);
    let other = config(
        "app-other-1",
        "o",
        vec![attachment("front", [10, 0, 1, 30], &["other"])],
    );
    let hidden = config(
        "app-hidden-1",
        "h",
        vec![attachment("back", [10, 0, 2, 40], &["secret"])],
    );
    let mut live: Vec<&ContainerConfig> = vec![&me, &web, &other, &hidden];
    live.extend(dbs.iter());
    Snapshot::build(&[network("front", 1, false), network("back", 2, false)], &live, host())
}

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 7);

#[test]
fn a_link_alias_answers_its_target_for_the_declaring_container_alone() {
    let s = linked_stack(&[[10, 0, 1, 11], [10, 0, 1, 10]]);
    let dbs = Answer::Addresses(vec![ip(10, 0, 1, 10), ip(10, 0, 1, 11)]);
    for name in ["database", "DATABASE.", "database.corp.example"] {
        assert_eq!(s.resolve("front", ME, name, TYPE_A, 0), dbs, "{name}");
    }
    assert_eq!(s.resolve("front", ME, "database", TYPE_AAAA, 0), Answer::NoData);
    // Another container of the same network, and the host, do not see it.
    let web = ip(10, 0, 1, 20);
    assert_eq!(s.resolve("front", web, "database", TYPE_A, 0), Answer::NxDomain);
    assert_eq!(
        s.resolve("front", ip(10, 0, 1, 1), "database", TYPE_A, 0),
        Answer::NxDomain
    );
    // The target's own name keeps resolving for everyone; link names
    // match without regard to case.
    assert_eq!(s.resolve("front", web, "db", TYPE_A, 0), dbs);
    assert_eq!(s.resolve("front", ME, "www", TYPE_A, 0), Answer::Addresses(vec![web]));
}

#[test]
fn a_link_wins_over_a_peer_name_and_falls_through_when_its_target_is_away() {
    let s = linked_stack(&[[10, 0, 1, 10]]);
    // `web` is linked to app-other-1: the link wins for me, not for others.
    assert_eq!(
        s.resolve("front", ME, "web", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 30)])
    );
    assert_eq!(
        s.resolve("front", ip(10, 0, 1, 30), "web", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 20)])
    );
    // A target that is not running: the alias is unknown.
    assert_eq!(s.resolve("front", ME, "ghost", TYPE_A, 0), Answer::NxDomain);
    // A target on no network shared with me is not reached through a link.
    assert_eq!(s.resolve("front", ME, "hush", TYPE_A, 0), Answer::NxDomain);
}

#[test]
fn a_link_follows_its_recreated_target() {
    let before = linked_stack(&[[10, 0, 1, 10]]);
    assert_eq!(
        before.resolve("front", ME, "database", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 10)])
    );
    let after = linked_stack(&[[10, 0, 1, 50]]);
    assert_eq!(
        after.resolve("front", ME, "database", TYPE_A, 0),
        Answer::Addresses(vec![ip(10, 0, 1, 50)])
    );
    let gone = linked_stack(&[]);
    assert_eq!(gone.resolve("front", ME, "database", TYPE_A, 0), Answer::NxDomain);
}
