//! `berth system df`: what images, containers and volumes take on disk,
//! and how much of it nothing uses (docker's RECLAIMABLE).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{disk_size, SystemError};
use crate::image::ImageStore;
use crate::runtime::config::Status;
use crate::runtime::container;
use crate::store::Root;
use crate::volume::VolumeStore;

/// One line of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageLine {
    /// `Images`, `Containers` or `Local Volumes`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub total: usize,
    /// In use: images some container was made from, running containers,
    /// volumes some container mounts.
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// The three lines, docker's order.
///
/// # Errors
///
/// A store of the root that cannot be read.
pub fn df(root: &Root) -> Result<Vec<UsageLine>, SystemError> {
    let containers = container::list(root)?;
    let in_use = container::images_in_use(root)?;
    let images = ImageStore::open(root)?.list()?;
    let images_line = line("Images", images.iter().map(|i| (in_use.contains(&i.id), i.size)));
    let containers_line = line(
        "Containers",
        containers.iter().map(|c| {
            let running = c
                .state()
                .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused));
            (running, disk_size(&c.upper()))
        }),
    );
    let store = VolumeStore::open(root)?;
    let users: BTreeMap<String, Vec<String>> = store.users()?;
    let volumes_line = line(
        "Local Volumes",
        store
            .list()?
            .iter()
            .map(|v| (users.contains_key(&v.name), disk_size(&store.mountpoint(&v.name)))),
    );
    Ok(vec![images_line, containers_line, volumes_line])
}

/// Sums `(active, size)` items; the inactive ones are reclaimable.
fn line(kind: &str, items: impl Iterator<Item = (bool, u64)>) -> UsageLine {
    let mut line = UsageLine {
        kind: kind.to_string(),
        ..UsageLine::default()
    };
    for (active, size) in items {
        line.total += 1;
        line.size = line.size.saturating_add(size);
        if active {
            line.active += 1;
        } else {
            line.reclaimable = line.reclaimable.saturating_add(size);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_items_are_reclaimable() {
        let l = line("Images", [(true, 10), (false, 5), (false, 1)].into_iter());
        assert_eq!((l.total, l.active, l.size, l.reclaimable), (3, 1, 16, 6));
        assert_eq!(line("Containers", std::iter::empty()).total, 0);
    }
}
