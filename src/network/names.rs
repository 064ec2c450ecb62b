//! Kernel interface names for berth's bridges and veth pairs.
//!
//! `IFNAMSIZ` leaves 15 bytes, too few for a network or container name, so
//! names are a short prefix and a stable hash (`berth_netlink::ifname`). The
//! prefixes are berth's own, so a residue check (or an operator) can tell
//! berth's interfaces from docker's `br-…`/`veth…`.

use berth_netlink::ifname::short_name;

/// The bridge of `network` in the engine root tagged `root_tag`
/// (`Root::tag`): `berth` + 10 hex digits. The tag is hashed in, so two
/// engines with different roots never share a bridge.
pub fn bridge_name(root_tag: &str, network: &str) -> String {
    short_name("berth", &format!("{root_tag}/{network}"))
}

/// The host end of the veth pair joining container `container_id` to its
/// `index`th network: `bveth` + 10 hex digits.
pub fn veth_name(container_id: &str, index: usize) -> String {
    short_name("bveth", &format!("{container_id}/{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_netlink::ifname::{validate, MAX_IFNAME_LEN};

    #[test]
    fn names_fit_are_stable_and_distinct() {
        let long = "a-very-long-project-name_and-a-long-network-name";
        let b = bridge_name("0123abcd", long);
        assert_eq!(b.len(), MAX_IFNAME_LEN);
        assert!(b.starts_with("berth"));
        assert!(validate(&b).is_ok());
        assert_eq!(b, bridge_name("0123abcd", long));
        assert_ne!(b, bridge_name("ffffffff", long), "other root, other bridge");
        assert_ne!(b, bridge_name("0123abcd", "demo_default"));

        let id = "f".repeat(64);
        let v0 = veth_name(&id, 0);
        assert_eq!(v0.len(), MAX_IFNAME_LEN);
        assert!(v0.starts_with("bveth") && validate(&v0).is_ok());
        assert_eq!(v0, veth_name(&id, 0));
        assert_ne!(v0, veth_name(&id, 1));
        assert_ne!(v0, veth_name(&"e".repeat(64), 0));
    }
}
