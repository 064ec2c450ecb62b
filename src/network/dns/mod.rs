//! Service discovery by DNS: the engine answers, on each bridge network's
//! gateway address, for the names of the containers on it (see
//! `engine::dns` for the server).
//!
//! - `backend`: the resolution policy over a snapshot of networks and live
//!   containers (pure).
//! - `wire`: the DNS message format, the part the server needs (pure).
//! - `upstream`: the resolvers forwarded queries go to (pure parsing).
//!
//! This module also decides whether a container's resolv.conf names the
//! gateway: only while an engine serves DNS for the root, which it says by
//! writing its pid to `<root>/dns.active`. Without an engine (the low-level
//! `berth container run --network X`) nothing would answer on the gateway,
//! so those containers keep the host's resolvers and find their peers
//! through /etc/hosts, as before. Both libcs read /etc/hosts before DNS,
//! so the hosts files stay the first answer for peers either way.

pub mod backend;
pub mod upstream;
pub mod wire;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use backend::{Answer, HostResolvers, NetworkInfo, Snapshot};

use crate::runtime::config::ContainerConfig;
use crate::store::{write_atomic, Root};

/// The marker an engine writes while its DNS server runs.
pub const MARKER_FILE: &str = "dns.active";

fn marker(root: &Root) -> PathBuf {
    root.path().join(MARKER_FILE)
}

/// Records that this process serves DNS for `root`.
pub fn mark_serving(root: &Root) -> io::Result<()> {
    write_atomic(&marker(root), std::process::id().to_string().as_bytes())
}

/// Removes the marker, if it is this process's.
pub fn clear_serving(root: &Root) {
    if marker_pid(root) == Some(std::process::id()) {
        let _ = std::fs::remove_file(marker(root));
    }
}

fn marker_pid(root: &Root) -> Option<u32> {
    std::fs::read_to_string(marker(root)).ok()?.trim().parse().ok()
}

/// Whether an engine serves DNS for `root` now: the marker names a live
/// process. A marker left by a killed engine names a dead one (the next
/// engine rewrites it); a recycled pid would pass, and the cost is only
/// that a container asks the gateway while peers still come from its
/// hosts file.
pub fn engine_serves(root: &Root) -> bool {
    marker_pid(root).is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// The nameserver a container's resolv.conf names instead of the host's:
/// the gateway of its first network, when it has a bridge network and an
/// engine serves DNS for the root.
pub fn nameserver_for(root: &Root, config: &ContainerConfig) -> Option<Ipv4Addr> {
    let gateway = config.networks.first()?.gateway;
    engine_serves(root).then_some(gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_names_a_live_process() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("root"));
        root.ensure().unwrap();
        assert!(!engine_serves(&root));
        mark_serving(&root).unwrap();
        assert!(engine_serves(&root));
        clear_serving(&root);
        assert!(!engine_serves(&root));
        // A marker of a process that is gone does not count, and is not
        // this process's to remove.
        std::fs::write(marker(&root), "999999999").unwrap();
        assert!(!engine_serves(&root));
        clear_serving(&root);
        assert!(marker(&root).exists());
    }
}
