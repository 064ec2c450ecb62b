use super::*;
use crate::spec::model::resources::Ipam;
use crate::spec::model::StringMap;

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn used(network: &str, subnet: &str) -> UsedSubnet {
    UsedSubnet {
        network: network.into(),
        subnet: cidr(subnet),
    }
}

fn owner(id: &str) -> Owner {
    Owner {
        container_id: id.into(),
        container_name: format!("{id}-name"),
    }
}

/// A network with one ipam.config entry.
fn with_pool(subnet: &str, ip_range: Option<&str>, gateway: Option<&str>, aux: &[(&str, &str)]) -> Network {
    Network {
        ipam: Some(Ipam {
            config: vec![IpamPool {
                subnet: Some(subnet.into()),
                ip_range: ip_range.map(Into::into),
                gateway: gateway.map(Into::into),
                aux_addresses: StringMap(aux.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            }],
            ..Ipam::default()
        }),
        ..Network::default()
    }
}

fn plan(spec: &Network, routes: &[&str], others: &[UsedSubnet]) -> Result<SubnetConfig, IpamError> {
    let routes: Vec<Ipv4Cidr> = routes.iter().map(|r| cidr(r)).collect();
    plan_subnet("demo_default", spec, &SubnetPolicy::default(), &routes, others)
}

fn config(subnet: &str) -> SubnetConfig {
    plan(&with_pool(subnet, None, None, &[]), &[], &[]).unwrap()
}

/// Allocates dynamically for `id` and records it.
fn take(config: &SubnetConfig, allocations: &mut Allocations, id: &str) -> Result<Ipv4Addr, IpamError> {
    let address = config.allocate("n", allocations, &owner(id), None)?;
    allocations.insert(address, owner(id));
    Ok(address)
}

#[test]
fn default_pools_are_dockers() {
    let all: Vec<Ipv4Cidr> = SubnetPool::defaults().iter().flat_map(SubnetPool::candidates).collect();
    assert_eq!(all.len(), 15 + 16);
    assert_eq!(all[0], cidr("172.17.0.0/16"));
    assert_eq!(all[1], cidr("172.18.0.0/16"));
    assert_eq!(all[14], cidr("172.31.0.0/16"));
    assert_eq!(all[15], cidr("192.168.0.0/20"));
    assert_eq!(all[30], cidr("192.168.240.0/20"));
}

#[test]
fn pool_sizes_are_validated() {
    assert!(SubnetPool::new(cidr("10.0.0.0/8"), 24).is_ok());
    assert!(matches!(
        SubnetPool::new(cidr("10.0.0.0/16"), 8),
        Err(IpamError::InvalidPool { .. })
    ));
    assert!(matches!(
        SubnetPool::new(cidr("10.0.0.0/16"), 31),
        Err(IpamError::InvalidPool { .. })
    ));
}

#[test]
fn first_free_subnet_with_first_host_as_gateway() {
    let c = plan(&Network::default(), &[], &[]).unwrap();
    assert_eq!(c.subnet, cidr("172.17.0.0/16"));
    assert_eq!(c.gateway, ip("172.17.0.1"));
    assert_eq!(c.ip_range, None);
}

#[test]
fn skips_host_routes_other_networks_and_reserved_ranges() {
    // docker0 holds 172.17/16; a LAN route covers part of 172.18/16.
    let others = [used("a_default", "172.19.0.0/16")];
    let c = plan(
        &Network::default(),
        &["0.0.0.0/0", "172.17.0.0/16", "172.18.5.0/24"],
        &others,
    )
    .unwrap();
    assert_eq!(
        c.subnet,
        cidr("172.20.0.0/16"),
        "default route must not block everything"
    );

    let policy = SubnetPolicy {
        reserved: vec![cidr("172.16.0.0/12")],
        ..SubnetPolicy::default()
    };
    let c = plan_subnet("n", &Network::default(), &policy, &[], &[]).unwrap();
    assert_eq!(c.subnet, cidr("192.168.0.0/20"));

    // A wide route (a VPN's 172.16/12) hides the whole 172 range as well.
    let c = plan(&Network::default(), &["172.16.0.0/12", "192.168.0.0/24"], &[]).unwrap();
    assert_eq!(c.subnet, cidr("192.168.16.0/20"));
}

#[test]
fn custom_pools_and_exhaustion() {
    let policy = SubnetPolicy {
        pools: vec![SubnetPool::new(cidr("10.9.0.0/23"), 24).unwrap()],
        reserved: vec![],
    };
    let c = plan_subnet("n", &Network::default(), &policy, &[], &[used("x", "10.9.0.0/24")]).unwrap();
    assert_eq!(c.subnet, cidr("10.9.1.0/24"));
    let taken = [used("x", "10.9.0.0/24"), used("y", "10.9.1.0/24")];
    let err = plan_subnet("n", &Network::default(), &policy, &[], &taken).unwrap_err();
    assert_eq!(err, IpamError::PoolsExhausted { network: "n".into() });
}

#[test]
fn requested_subnet_gateway_range_and_aux() {
    let spec = with_pool(
        "10.5.0.0/16",
        Some("10.5.1.0/24"),
        Some("10.5.0.254"),
        &[("router", "10.5.0.2")],
    );
    let c = plan(&spec, &["10.0.0.0/8"], &[]).unwrap();
    assert_eq!(c.subnet, cidr("10.5.0.0/16"));
    assert_eq!(c.gateway, ip("10.5.0.254"));
    assert_eq!(c.ip_range, Some(cidr("10.5.1.0/24")));
    assert_eq!(c.aux_addresses["router"], ip("10.5.0.2"));
    assert_eq!(config("10.5.0.0/16").gateway, ip("10.5.0.1"));
}

#[test]
fn requested_subnet_conflicts_are_named() {
    let err = plan(
        &with_pool("10.5.0.0/16", None, None, &[]),
        &[],
        &[used("other_net", "10.5.3.0/24")],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet 10.5.0.0/16 of network \"demo_default\" overlaps subnet 10.5.3.0/24 of network \"other_net\""
    );
    let err = plan(&with_pool("192.168.1.0/24", None, None, &[]), &["192.168.1.0/24"], &[]).unwrap_err();
    assert!(matches!(err, IpamError::HostRouteOverlap { route, .. } if route == cidr("192.168.1.0/24")));
}

#[test]
fn requested_subnet_validation() {
    let err = |spec: Network| plan(&spec, &[], &[]).unwrap_err();
    assert!(matches!(
        err(with_pool("10.5.0.0/16", None, Some("10.6.0.1"), &[])),
        IpamError::GatewayOutsideSubnet { .. }
    ));
    assert!(matches!(
        err(with_pool("10.5.0.0/16", None, Some("10.5.255.255"), &[])),
        IpamError::GatewayOutsideSubnet { .. }
    ));
    assert!(matches!(
        err(with_pool("10.5.0.0/16", Some("10.6.0.0/24"), None, &[])),
        IpamError::RangeOutsideSubnet { .. }
    ));
    assert!(matches!(
        err(with_pool("10.5.0.0/16", None, None, &[("h", "10.7.0.1")])),
        IpamError::AuxOutsideSubnet { ref name, .. } if name == "h"
    ));
    assert!(matches!(
        err(with_pool("10.5.0.0/31", None, None, &[])),
        IpamError::SubnetTooSmall { .. }
    ));
    let e = err(with_pool("10.5.0.1/16", None, None, &[]));
    assert!(matches!(
        e,
        IpamError::Cidr {
            field: "subnet",
            source: CidrError::HostBitsSet { .. },
            ..
        }
    ));
    assert!(e.to_string().contains("10.5.0.0/16"), "{e}");
    assert!(matches!(
        err(with_pool("10.5.0.0/16", None, Some("10.5.0.x"), &[])),
        IpamError::BadAddress { .. }
    ));
    let mut two = with_pool("10.5.0.0/16", None, None, &[]);
    if let Some(ipam) = two.ipam.as_mut() {
        ipam.config.push(ipam.config[0].clone());
    }
    assert!(matches!(err(two), IpamError::MultipleSubnets { count: 2, .. }));
    let mut gateway_only = with_pool("x", None, Some("10.5.0.1"), &[]);
    if let Some(ipam) = gateway_only.ipam.as_mut() {
        ipam.config[0].subnet = None;
    }
    assert!(matches!(
        err(gateway_only),
        IpamError::MissingSubnet { field: "gateway", .. }
    ));
    let mut driver = Network::default();
    driver.ipam = Some(Ipam {
        driver: Some("dhcp".into()),
        ..Ipam::default()
    });
    assert!(matches!(err(driver), IpamError::UnsupportedDriver { .. }));
    let default_driver = Network {
        ipam: Some(Ipam {
            driver: Some("default".into()),
            ..Ipam::default()
        }),
        ..Network::default()
    };
    assert!(plan(&default_driver, &[], &[]).is_ok());
}

#[test]
fn ipv6_is_rejected_clearly() {
    let v6 = Network {
        enable_ipv6: Some(true),
        ..Network::default()
    };
    let err = plan(&v6, &[], &[]).unwrap_err();
    assert!(matches!(err, IpamError::Ipv6Unsupported { ref network, .. } if network == "demo_default"));
    assert!(err.to_string().contains("enable_ipv6"), "{err}");
    let err = plan(&with_pool("fd00:1::/64", None, None, &[]), &[], &[]).unwrap_err();
    assert!(matches!(err, IpamError::Ipv6Unsupported { ref setting, .. } if setting == "subnet fd00:1::/64"));
    let err = plan(&with_pool("10.5.0.0/16", None, None, &[("h", "fd00::1")]), &[], &[]).unwrap_err();
    assert!(matches!(err, IpamError::Ipv6Unsupported { .. }));
    assert!(matches!(
        parse_address("n", "ipv4_address", "fd00::5"),
        Err(IpamError::Ipv6Unsupported { .. })
    ));
    let v4_off = Network {
        enable_ipv4: Some(false),
        ..Network::default()
    };
    assert!(matches!(plan(&v4_off, &[], &[]), Err(IpamError::Ipv4Disabled { .. })));
    assert!(plan(
        &Network {
            enable_ipv6: Some(false),
            ..Network::default()
        },
        &[],
        &[]
    )
    .is_ok());
}

#[test]
fn slash_30_holds_exactly_one_container() {
    let c = config("10.0.0.0/30");
    let mut allocations = Allocations::new();
    assert_eq!(take(&c, &mut allocations, "a"), Ok(ip("10.0.0.2")));
    assert_eq!(
        take(&c, &mut allocations, "b"),
        Err(IpamError::AddressesExhausted {
            network: "n".into(),
            range: cidr("10.0.0.0/30")
        })
    );
}

#[test]
fn lowest_free_first_and_release_reuses() {
    let c = config("10.1.0.0/24");
    let mut allocations = Allocations::new();
    for (id, want) in [("a", "10.1.0.2"), ("b", "10.1.0.3"), ("c", "10.1.0.4")] {
        assert_eq!(take(&c, &mut allocations, id), Ok(ip(want)));
    }
    assert_eq!(release(&mut allocations, "b"), [ip("10.1.0.3")]);
    assert_eq!(release(&mut allocations, "b"), Vec::<Ipv4Addr>::new());
    assert_eq!(take(&c, &mut allocations, "d"), Ok(ip("10.1.0.3")));
    assert_eq!(take(&c, &mut allocations, "e"), Ok(ip("10.1.0.5")));
    // Asking again for a container that holds an address returns it.
    assert_eq!(c.allocate("n", &allocations, &owner("a"), None), Ok(ip("10.1.0.2")));
}

#[test]
fn ip_range_limits_dynamic_addresses_only() {
    let c = plan(&with_pool("10.2.0.0/24", Some("10.2.0.8/30"), None, &[]), &[], &[]).unwrap();
    let mut allocations = Allocations::new();
    let got: Vec<_> = (0..4).map(|i| take(&c, &mut allocations, &format!("c{i}"))).collect();
    // Inside the subnet, a range's own edge addresses are ordinary hosts.
    assert_eq!(
        got[..4],
        [
            Ok(ip("10.2.0.8")),
            Ok(ip("10.2.0.9")),
            Ok(ip("10.2.0.10")),
            Ok(ip("10.2.0.11"))
        ]
    );
    assert!(matches!(
        take(&c, &mut allocations, "c5"),
        Err(IpamError::AddressesExhausted { range, .. }) if range == cidr("10.2.0.8/30")
    ));
    // A static address outside the range but inside the subnet is fine.
    assert_eq!(
        c.allocate("n", &allocations, &owner("s"), Some(ip("10.2.0.100"))),
        Ok(ip("10.2.0.100"))
    );
    // A range at the start of the subnet skips the network address and gateway.
    let c = plan(&with_pool("10.3.0.0/24", Some("10.3.0.0/30"), None, &[]), &[], &[]).unwrap();
    let mut allocations = Allocations::new();
    assert_eq!(take(&c, &mut allocations, "a"), Ok(ip("10.3.0.2")));
    assert_eq!(take(&c, &mut allocations, "b"), Ok(ip("10.3.0.3")));
    assert!(take(&c, &mut allocations, "c").is_err());
}

#[test]
fn aux_addresses_and_custom_gateway_are_skipped() {
    let spec = with_pool(
        "10.4.0.0/29",
        None,
        Some("10.4.0.3"),
        &[("host1", "10.4.0.1"), ("host2", "10.4.0.4")],
    );
    let c = plan(&spec, &[], &[]).unwrap();
    let mut allocations = Allocations::new();
    let got: Vec<_> = (0..4).map(|i| take(&c, &mut allocations, &format!("c{i}"))).collect();
    assert_eq!(
        got[..3],
        [Ok(ip("10.4.0.2")), Ok(ip("10.4.0.5")), Ok(ip("10.4.0.6"))],
        "skips .1 and .4 (aux), .3 (gateway), .7 (broadcast)"
    );
    assert!(got[3].is_err());
}

#[test]
fn static_addresses_are_honoured_or_conflicts_named() {
    let c = plan(
        &with_pool("10.5.0.0/16", None, None, &[("printer", "10.5.0.9")]),
        &[],
        &[],
    )
    .unwrap();
    let mut allocations = Allocations::new();
    let web = Owner {
        container_id: "1111".into(),
        container_name: "web-1".into(),
    };
    assert_eq!(
        c.allocate("demo_default", &allocations, &web, Some(ip("10.5.0.5"))),
        Ok(ip("10.5.0.5"))
    );
    allocations.insert(ip("10.5.0.5"), web.clone());
    let err = c
        .allocate("demo_default", &allocations, &owner("2222"), Some(ip("10.5.0.5")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 10.5.0.5 is already used by container \"web-1\" on network \"demo_default\""
    );
    // The holder asking again is not a conflict.
    assert_eq!(
        c.allocate("demo_default", &allocations, &web, Some(ip("10.5.0.5"))),
        Ok(ip("10.5.0.5"))
    );
    let reserved = |a: &str| {
        c.allocate("demo_default", &allocations, &owner("3"), Some(ip(a)))
            .unwrap_err()
    };
    assert_eq!(
        reserved("10.5.0.1").to_string(),
        "address 10.5.0.1 is the gateway of network \"demo_default\""
    );
    assert_eq!(
        reserved("10.5.0.9").to_string(),
        "address 10.5.0.9 is the aux address \"printer\" of network \"demo_default\""
    );
    assert!(
        matches!(reserved("10.5.0.0"), IpamError::AddressReserved { ref role, .. } if role == "the network address")
    );
    assert!(
        matches!(reserved("10.5.255.255"), IpamError::AddressReserved { ref role, .. } if role == "the broadcast address")
    );
    assert!(matches!(reserved("10.6.0.1"), IpamError::AddressOutsideSubnet { .. }));
    // Dynamic allocation steps around the static one.
    for _ in 0..3 {
        let id = format!("d{}", allocations.len());
        take(&c, &mut allocations, &id).unwrap();
    }
    assert_eq!(
        allocations.keys().copied().collect::<Vec<_>>(),
        [ip("10.5.0.2"), ip("10.5.0.3"), ip("10.5.0.4"), ip("10.5.0.5")]
    );
}

#[test]
fn subnet_config_round_trips_as_json() {
    let c = plan(
        &with_pool("10.5.0.0/16", Some("10.5.1.0/24"), None, &[("h", "10.5.0.9")]),
        &[],
        &[],
    )
    .unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"subnet\":\"10.5.0.0/16\""), "{json}");
    assert_eq!(serde_json::from_str::<SubnetConfig>(&json).unwrap(), c);
}
