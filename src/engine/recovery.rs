//! What an engine killed part way through an operation leaves, repaired
//! when the next engine starts (ARCHITECTURE invariant 2). Containers never
//! depend on the engine — their monitors keep them — so this is only about
//! steps that were half done:
//!
//! - a hidden container directory (`.<id>.creating`, `.<id>.removing`: a
//!   create or removal that never finished) is removed, and so is one whose
//!   configuration is missing or empty (written without fsync, so a host
//!   crash right after the create can lose it);
//! - addresses held for containers that do not exist are released, and a
//!   network record a host crash left empty is dropped;
//! - a network whose record was written but whose bridge was not made gets
//!   its bridge; a bridge whose record was removed (a `down` killed before
//!   its teardown) is torn down.
//!
//! Each repair is idempotent; the next `up` converges the rest.

use std::collections::BTreeSet;

use crate::network::{bridge, NetworkStore};
use crate::runtime::container::Container;
use crate::store::Root;

/// Runs every repair; returns what was repaired (or failed), for the log.
pub fn recover(root: &Root) -> Vec<String> {
    let mut report = Vec::new();
    let mut ids = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(root.containers_dir()) {
        for entry in entries.flatten() {
            let dir = entry.path();
            let id = entry.file_name().to_string_lossy().into_owned();
            let hidden = id.starts_with('.');
            let written = std::fs::metadata(Container::config_path(&dir)).is_ok_and(|m| m.len() > 0);
            if !hidden && written {
                ids.insert(id);
            } else if let Err(e) = std::fs::remove_dir_all(&dir) {
                report.push(format!("removing the unfinished container directory {id}: {e}"));
            } else {
                report.push(format!("removed the unfinished container directory {id}"));
            }
        }
    }
    let store = NetworkStore::new(root);
    // A record rewritten without fsync (an address handed out) that a host
    // crash left empty: it can only be dropped. Its bridge then counts as
    // one of a removed network (below), and the next `up` makes it again.
    if let Ok(entries) = std::fs::read_dir(store.dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let empty = entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
            if empty && !name.starts_with('.') && name.ends_with(".json") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => report.push(format!("removed the empty network record {name}")),
                    Err(e) => report.push(format!("removing the empty network record {name}: {e}")),
                }
            }
        }
    }
    let Ok(networks) = store.list() else {
        return report;
    };
    let known: BTreeSet<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    let prefix = bridge::bridge_alias(&root.tag(), "");
    if let Ok(host) = berth_netlink::blocking::Netlink::open() {
        for link in host.links_with_alias_prefix(&prefix).unwrap_or_default() {
            let Some(network) = link.alias.as_deref().and_then(|a| a.strip_prefix(&prefix)) else {
                continue;
            };
            if known.contains(network) {
                continue;
            }
            let _ = crate::network::nat::remove_masquerade(root, network);
            match host.delete_link(&link.name) {
                Ok(()) => report.push(format!(
                    "removed the bridge {} of the removed network {network}",
                    link.name
                )),
                Err(e) => report.push(format!("removing the bridge {}: {e}", link.name)),
            }
        }
    }
    for record in &networks {
        let owners: BTreeSet<String> = record
            .allocations
            .values()
            .map(|owner| owner.container_id.clone())
            .filter(|id| !ids.contains(id))
            .collect();
        for id in owners {
            match store.release_address(&record.name, &id) {
                Ok(_) => report.push(format!(
                    "released the address of the missing container {id} on {}",
                    record.name
                )),
                Err(e) => report.push(format!("releasing an address on {}: {e}", record.name)),
            }
        }
        let present = berth_netlink::blocking::Netlink::open()
            .and_then(|host| host.find_link(&record.bridge))
            .map(|link| link.is_some());
        if present.is_ok_and(|present| !present) {
            match bridge::setup(root, record) {
                Ok(()) => report.push(format!("made the missing bridge of network {}", record.name)),
                Err(e) => report.push(format!("making the bridge of network {}: {e}", record.name)),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unfinished_and_unwritten_container_directories_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("root"));
        let containers = root.containers_dir();
        let make = |name: &str, config: Option<&str>| {
            let d = containers.join(name);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(text) = config {
                std::fs::write(Container::config_path(&d), text).unwrap();
            }
            d
        };
        let kept = make("aaaa", Some("{\"id\": \"aaaa\"}"));
        let creating = make(".bbbb.creating", Some("{}"));
        let empty = make("cccc", Some(""));
        let missing = make("dddd", None);
        let networks = NetworkStore::new(&root).dir();
        std::fs::create_dir_all(&networks).unwrap();
        let empty_record = networks.join("lost.json");
        std::fs::write(&empty_record, "").unwrap();
        let report = recover(&root);
        assert!(kept.exists(), "{report:?}");
        for gone in [creating, empty, missing, empty_record] {
            assert!(!gone.exists(), "{} left: {report:?}", gone.display());
        }
        assert_eq!(report.len(), 4, "{report:?}");
    }
}
