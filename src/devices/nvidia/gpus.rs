//! Which GPUs a host has: `/dev/nvidia<N>` nodes, named by index and UUID
//! through `/proc/driver/nvidia/gpus/<pci-bus-id>/information`.

use std::path::Path;

use crate::devices::{under_root, NodeInfo, NodeStat, NvidiaError};
use crate::runtime::config::DeviceNode;

/// One whole GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// The NVML/`nvidia-smi` index: position in PCI bus order, which is
    /// also what `nvidia-ctk` names index devices by.
    pub index: usize,
    /// `Device Minor`: the N of `/dev/nvidiaN`.
    pub minor: u64,
    /// `GPU-xxxxxxxx-…`, when /proc tells.
    pub uuid: Option<String>,
    /// PCI bus id (`0000:01:00.0`), when /proc tells.
    pub bus_id: Option<String>,
    pub node: DeviceNode,
}

/// What `/proc/driver/nvidia/gpus/<bus>/information` says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcGpu {
    bus_id: String,
    minor: u64,
    uuid: Option<String>,
}

/// The GPUs with a device node. With /proc information, indices follow PCI
/// bus order over every GPU the driver sees (a GPU whose node is missing
/// keeps its index but is not offered); without it, node minors in order.
pub(super) fn discover(root: &Path, stat: NodeStat) -> Result<Vec<Gpu>, NvidiaError> {
    let mut nodes: Vec<(u64, DeviceNode)> = Vec::new();
    for name in list_dir(root, "/dev")? {
        let Some(n) = name.strip_prefix("nvidia").and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        if let Some(node) = char_node(root, &format!("/dev/{name}"), stat) {
            nodes.push((n, node));
        }
    }
    nodes.sort_by_key(|(n, _)| *n);
    let proc_gpus = read_proc_gpus(root)?;
    if proc_gpus.is_empty() {
        return Ok(nodes
            .into_iter()
            .enumerate()
            .map(|(index, (minor, node))| Gpu {
                index,
                minor,
                uuid: None,
                bus_id: None,
                node,
            })
            .collect());
    }
    Ok(proc_gpus
        .into_iter()
        .enumerate()
        .filter_map(|(index, proc_gpu)| {
            let (_, node) = nodes.iter().find(|(n, _)| *n == proc_gpu.minor)?;
            Some(Gpu {
                index,
                minor: proc_gpu.minor,
                uuid: proc_gpu.uuid,
                bus_id: Some(proc_gpu.bus_id),
                node: node.clone(),
            })
        })
        .collect())
}

fn read_proc_gpus(root: &Path) -> Result<Vec<ProcGpu>, NvidiaError> {
    let mut gpus = Vec::new();
    for bus_id in list_dir(root, "/proc/driver/nvidia/gpus")? {
        let path = under_root(root, &format!("/proc/driver/nvidia/gpus/{bus_id}/information"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Some(gpu) = parse_information(&bus_id, &text) {
            gpus.push(gpu);
        }
    }
    // Bus ids are fixed-width hex, so string order is bus order.
    gpus.sort_by_key(|g| g.bus_id.to_ascii_lowercase());
    Ok(gpus)
}

/// Lines like `GPU UUID: \t GPU-1b2c…` and `Device Minor: \t 0`.
fn parse_information(bus_id: &str, text: &str) -> Option<ProcGpu> {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            line.split_once(':')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim())
        })
    };
    Some(ProcGpu {
        bus_id: bus_id.to_owned(),
        minor: field("Device Minor")?.parse().ok()?,
        uuid: field("GPU UUID").filter(|u| !u.is_empty()).map(str::to_owned),
    })
}

/// A character device node at `path` (host path), as the runtime adds it.
pub(super) fn char_node(root: &Path, path: &str, stat: NodeStat) -> Option<DeviceNode> {
    let NodeInfo { kind, major, minor } = stat(&under_root(root, path))?;
    (kind == 'c').then(|| DeviceNode {
        path: path.to_owned(),
        kind,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        access: "rwm".into(),
    })
}

/// Sorted entry names of a host directory; a missing one is empty.
pub(super) fn list_dir(root: &Path, dir: &str) -> Result<Vec<String>, NvidiaError> {
    let path = under_root(root, dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(NvidiaError::Read { path, source }),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_information_file() {
        let text = "Model: \t\t NVIDIA H200\nIRQ:   \t\t 123\nGPU UUID: \t GPU-5d3c1f2a-0000-1111-2222-333344445555\nVideo BIOS: \t 96.00.9f.00.04\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t 0000:01:00.0\nDevice Minor: \t 3\nGPU Excluded:\t No\n";
        let gpu = parse_information("0000:01:00.0", text).unwrap();
        assert_eq!(gpu.minor, 3);
        assert_eq!(gpu.uuid.as_deref(), Some("GPU-5d3c1f2a-0000-1111-2222-333344445555"));
        assert_eq!(parse_information("x", "Model: x\n"), None);
    }
}
