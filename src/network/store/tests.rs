use super::*;
use crate::spec::model::resources::{Ipam, IpamPool};
use crate::spec::model::StringMap;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

fn owner(id: &str, name: &str) -> Owner {
    Owner {
        container_id: id.into(),
        container_name: name.into(),
    }
}

fn fixture() -> (tempfile::TempDir, NetworkStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = NetworkStore::new(&Root::new(dir.path().join("root")));
    (dir, store)
}

fn create(
    store: &NetworkStore,
    name: &str,
    spec: &Network,
    routes: &[&str],
) -> Result<NetworkRecord, NetworkStoreError> {
    let routes: Vec<Ipv4Cidr> = routes.iter().map(|r| cidr(r)).collect();
    let request = NetworkRequest {
        name,
        spec,
        external: false,
    };
    store.create(&request, &SubnetPolicy::default(), &routes)
}

fn subnet(subnet: &str) -> Network {
    Network {
        ipam: Some(Ipam {
            config: vec![IpamPool {
                subnet: Some(subnet.into()),
                ..IpamPool::default()
            }],
            ..Ipam::default()
        }),
        ..Network::default()
    }
}

#[test]
fn create_list_get_remove() {
    let (_dir, store) = fixture();
    assert!(store.list().unwrap().is_empty(), "no networks/ yet is an empty list");
    let spec = Network {
        internal: true,
        labels: StringMap([("com.docker.compose.project".to_string(), "demo".to_string())].into()),
        driver_opts: StringMap([(MTU_OPTION.to_string(), "1400".to_string())].into()),
        ..Network::default()
    };
    let a = create(&store, "demo_default", &spec, &["172.17.0.0/16"]).unwrap();
    assert_eq!(a.addressing.subnet, cidr("172.18.0.0/16"), "docker0's route is skipped");
    assert_eq!(a.addressing.gateway, ip("172.18.0.1"));
    assert_eq!(a.id.len(), 64);
    assert!(a.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a.driver, "bridge");
    assert!(a.internal && !a.attachable && !a.external);
    assert_eq!(a.labels["com.docker.compose.project"], "demo");
    assert_eq!(a.mtu, 1400);
    assert_eq!(
        a.bridge,
        bridge_name(&Root::new(store.root.path()).tag(), "demo_default")
    );
    assert!(store.dir().join("demo_default.json").is_file());

    let b = create(&store, "demo_back", &Network::default(), &["172.17.0.0/16"]).unwrap();
    assert_eq!(
        b.addressing.subnet,
        cidr("172.19.0.0/16"),
        "the other network is skipped"
    );
    assert_eq!(b.mtu, DEFAULT_MTU);
    let names: Vec<String> = store.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["demo_back", "demo_default"]);
    assert_eq!(store.get("demo_default").unwrap(), a);

    assert!(matches!(
        create(&store, "demo_default", &Network::default(), &[]),
        Err(NetworkStoreError::AlreadyExists { .. })
    ));
    assert_eq!(store.remove("demo_default").unwrap(), a);
    assert!(matches!(
        store.get("demo_default"),
        Err(NetworkStoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.remove("demo_default"),
        Err(NetworkStoreError::NotFound { .. })
    ));
    // The freed subnet is handed out again.
    let c = create(&store, "again", &Network::default(), &["172.17.0.0/16"]).unwrap();
    assert_eq!(c.addressing.subnet, cidr("172.18.0.0/16"));
}

#[test]
fn invalid_requests_are_refused_before_anything_is_written() {
    let (_dir, store) = fixture();
    for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
        assert!(
            matches!(
                create(&store, bad, &Network::default(), &[]),
                Err(NetworkStoreError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    let overlay = Network {
        driver: Some("overlay".into()),
        ..Network::default()
    };
    assert!(matches!(
        create(&store, "n", &overlay, &[]),
        Err(NetworkStoreError::UnsupportedDriver { .. })
    ));
    let mtu = Network {
        driver_opts: StringMap([(MTU_OPTION.to_string(), "9".to_string())].into()),
        ..Network::default()
    };
    assert!(matches!(
        create(&store, "n", &mtu, &[]),
        Err(NetworkStoreError::InvalidOption { .. })
    ));
    let bridge = Network {
        driver_opts: StringMap([(BRIDGE_NAME_OPTION.to_string(), "much-too-long-bridge".to_string())].into()),
        ..Network::default()
    };
    assert!(matches!(
        create(&store, "n", &bridge, &[]),
        Err(NetworkStoreError::InvalidOption { .. })
    ));
    let v6 = Network {
        enable_ipv6: Some(true),
        ..Network::default()
    };
    assert!(matches!(
        create(&store, "n", &v6, &[]),
        Err(NetworkStoreError::Ipam(IpamError::Ipv6Unsupported { .. }))
    ));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn requested_subnet_overlapping_another_network_names_it() {
    let (_dir, store) = fixture();
    create(&store, "first", &subnet("10.5.0.0/16"), &[]).unwrap();
    let err = create(&store, "second", &subnet("10.5.128.0/24"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet 10.5.128.0/24 of network \"second\" overlaps subnet 10.5.0.0/16 of network \"first\""
    );
}

#[test]
fn allocations_persist_across_reopen() {
    let (dir, store) = fixture();
    create(&store, "demo_default", &subnet("10.5.0.0/24"), &[]).unwrap();
    let web = owner("aaaa", "web-1");
    let db = owner("bbbb", "db-1");
    assert_eq!(
        store.allocate_address("demo_default", &web, None).unwrap(),
        ip("10.5.0.2")
    );
    assert_eq!(
        store
            .allocate_address("demo_default", &db, Some(ip("10.5.0.9")))
            .unwrap(),
        ip("10.5.0.9")
    );
    // Idempotent for the holder.
    assert_eq!(
        store.allocate_address("demo_default", &web, None).unwrap(),
        ip("10.5.0.2")
    );

    let reopened = NetworkStore::new(&Root::new(dir.path().join("root")));
    let record = reopened.get("demo_default").unwrap();
    assert_eq!(record.allocations.get(&ip("10.5.0.2")), Some(&web));
    assert_eq!(record.allocations.get(&ip("10.5.0.9")), Some(&db));
    let err = reopened
        .allocate_address("demo_default", &owner("cccc", "api-1"), Some(ip("10.5.0.2")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.5.0.2 is already used by container \"web-1\" on network \"demo_default\""
    );
    assert_eq!(
        reopened
            .allocate_address("demo_default", &owner("cccc", "api-1"), None)
            .unwrap(),
        ip("10.5.0.3")
    );

    // A new static address for a holder replaces its old one.
    assert_eq!(
        reopened
            .allocate_address("demo_default", &db, Some(ip("10.5.0.10")))
            .unwrap(),
        ip("10.5.0.10")
    );
    let record = reopened.get("demo_default").unwrap();
    assert!(!record.allocations.contains_key(&ip("10.5.0.9")));
    assert_eq!(record.allocations.len(), 3);
}

#[test]
fn release_and_remove_in_use() {
    let (_dir, store) = fixture();
    create(&store, "front", &subnet("10.6.0.0/24"), &[]).unwrap();
    create(&store, "back", &subnet("10.7.0.0/24"), &[]).unwrap();
    let web = owner("aaaa", "web-1");
    let db = owner("bbbb", "db-1");
    store.allocate_address("front", &web, None).unwrap();
    store.allocate_address("back", &web, None).unwrap();
    store.allocate_address("back", &db, None).unwrap();

    let err = store.remove("back").unwrap_err();
    assert_eq!(
        err.to_string(),
        "network \"back\" is still used by \"db-1\", \"web-1\"; stop or remove them first"
    );
    assert_eq!(store.release_address("back", "bbbb").unwrap(), Some(ip("10.7.0.3")));
    assert_eq!(store.release_address("back", "bbbb").unwrap(), None);
    let mut freed = store.release_all_for("aaaa").unwrap();
    freed.sort();
    assert_eq!(
        freed,
        [
            ("back".to_string(), ip("10.7.0.2")),
            ("front".to_string(), ip("10.6.0.2"))
        ]
    );
    assert!(store.release_all_for("aaaa").unwrap().is_empty());
    store.remove("back").unwrap();
    // Lowest-first reuse after release.
    assert_eq!(store.allocate_address("front", &db, None).unwrap(), ip("10.6.0.2"));
}

#[test]
fn concurrent_creates_get_different_subnets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Each thread opens its own lock file description, as
                // separate processes would.
                let store = NetworkStore::new(&Root::new(root));
                create(&store, &format!("net{i}"), &Network::default(), &[]).unwrap()
            })
        })
        .collect();
    let mut subnets: Vec<Ipv4Cidr> = threads
        .into_iter()
        .map(|t| t.join().unwrap().addressing.subnet)
        .collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 4, "{subnets:?}");
    let stored = NetworkStore::new(&Root::new(root)).list().unwrap();
    assert_eq!(stored.len(), 4);
}

#[test]
fn corrupt_records_name_their_file() {
    let (_dir, store) = fixture();
    create(&store, "ok", &Network::default(), &[]).unwrap();
    fs::write(store.dir().join("bad.json"), b"{not json").unwrap();
    let err = store.list().unwrap_err();
    assert!(
        matches!(&err, NetworkStoreError::Corrupt { path, .. } if path.ends_with("bad.json")),
        "{err}"
    );
}

#[test]
fn record_json_is_flat_and_readable() {
    let (_dir, store) = fixture();
    create(&store, "demo_default", &subnet("10.5.0.0/24"), &[]).unwrap();
    store
        .allocate_address("demo_default", &owner("aaaa", "web-1"), None)
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(store.dir().join("demo_default.json")).unwrap()).unwrap();
    assert_eq!(json["subnet"], "10.5.0.0/24");
    assert_eq!(json["gateway"], "10.5.0.1");
    assert_eq!(json["allocations"]["10.5.0.2"]["container_name"], "web-1");
}
