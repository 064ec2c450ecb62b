//! `berth stats`: a container's resource usage, docker's columns.
//!
//! CPU, memory and pids come from the container's cgroup (v1 or v2, see
//! `runtime::cgroups`), network counters from `/proc/<pid>/net/dev` of its
//! pid 1, which shows that process's network namespace. CPU % needs two
//! samples: it is the CPU time used between them over the wall time
//! between them, so 100 % is one full CPU (docker's scale).

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::runtime::cgroups::{Cgroup, CgroupError, CgroupStats};
use crate::runtime::config::Status;
use crate::runtime::container::{Container, ContainerError};
use crate::store::Root;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("container {name} is not running")]
    NotRunning { name: String },
    #[error("reading the state of container {name}")]
    State { name: String, source: ContainerError },
    #[error("reading the cgroup of container {name}")]
    Cgroup { name: String, source: CgroupError },
    #[error("reading {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
}

/// One reading of a running container.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: String,
    pub name: String,
    pub cgroup: CgroupStats,
    /// Bytes received and sent on every interface but `lo`.
    pub net_rx: u64,
    pub net_tx: u64,
    pub taken: Instant,
}

/// Reads a running container's counters.
///
/// # Errors
///
/// A container that is not running, or whose cgroup or `/proc` entry
/// vanished (it just exited).
pub fn sample(root: &Root, c: &Container) -> Result<Sample, StatsError> {
    let name = c.config.name.clone();
    let state = c.state().map_err(|source| StatsError::State {
        name: name.clone(),
        source,
    })?;
    let pid = match (state.status, state.pid) {
        (Status::Running | Status::Paused, Some(pid)) => pid,
        _ => return Err(StatsError::NotRunning { name }),
    };
    let cgroup = Cgroup::open(&Container::cgroup_name(&root.tag(), &c.config.id))
        .and_then(|cg| cg.stats())
        .map_err(|source| StatsError::Cgroup {
            name: name.clone(),
            source,
        })?;
    let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
    let text = std::fs::read_to_string(&path).map_err(|source| StatsError::Read { path, source })?;
    let (net_rx, net_tx) = net_totals(&text);
    Ok(Sample {
        id: c.config.id.clone(),
        name,
        cgroup,
        net_rx,
        net_tx,
        taken: Instant::now(),
    })
}

/// Sums the receive and transmit byte counters of `/proc/net/dev`, without
/// the loopback interface (docker counts only the container's interfaces).
pub fn net_totals(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    // Two header lines, then `iface: rx_bytes packets errs drop fifo frame
    // compressed multicast tx_bytes …`.
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if let (Some(r), Some(t)) = (fields.first(), fields.get(8)) {
            rx = rx.saturating_add(*r);
            tx = tx.saturating_add(*t);
        }
    }
    (rx, tx)
}

/// `MemTotal` of `/proc/meminfo` in bytes: the limit docker shows for a
/// container without one.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))
        .unwrap_or(0)
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// One row of `berth stats`, in docker's `--format json` shape plus the
/// raw numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CPUPerc")]
    pub cpu_perc: String,
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    #[serde(rename = "NetIO")]
    pub net_io: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
    #[serde(rename = "CPUPercent")]
    pub cpu_percent: f64,
    #[serde(rename = "MemoryUsageBytes")]
    pub memory_usage: u64,
    #[serde(rename = "MemoryLimitBytes")]
    pub memory_limit: u64,
    #[serde(rename = "NetRxBytes")]
    pub net_rx: u64,
    #[serde(rename = "NetTxBytes")]
    pub net_tx: u64,
    #[serde(rename = "PIDsCurrent")]
    pub pids_current: u64,
}

/// The row for `now`, with CPU % over the time since `before` (0 without
/// one). `host_memory` is the limit of an unlimited container.
pub fn usage(before: Option<&Sample>, now: &Sample, host_memory: u64) -> Usage {
    let cpu_percent = before.map_or(0.0, |b| {
        let wall = now.taken.saturating_duration_since(b.taken).as_nanos();
        cpu_percent(b.cgroup.cpu_usage_ns, now.cgroup.cpu_usage_ns, wall)
    });
    let limit = now.cgroup.memory_limit.unwrap_or(host_memory);
    let mem_percent = if limit == 0 {
        0.0
    } else {
        ratio(now.cgroup.memory_usage, limit) * 100.0
    };
    Usage {
        id: now.id.chars().take(12).collect(),
        name: now.name.clone(),
        cpu_perc: format!("{cpu_percent:.2}%"),
        mem_usage: format!("{} / {}", binary_size(now.cgroup.memory_usage), binary_size(limit)),
        mem_perc: format!("{mem_percent:.2}%"),
        net_io: format!("{} / {}", decimal_size(now.net_rx), decimal_size(now.net_tx)),
        pids: now.cgroup.pids_current.to_string(),
        cpu_percent,
        memory_usage: now.cgroup.memory_usage,
        memory_limit: limit,
        net_rx: now.net_rx,
        net_tx: now.net_tx,
        pids_current: now.cgroup.pids_current,
    }
}

/// CPU time used over wall time, in percent of one CPU.
pub fn cpu_percent(before_ns: u64, now_ns: u64, wall_ns: u128) -> f64 {
    if wall_ns == 0 {
        return 0.0;
    }
    let used = u128::from(now_ns.saturating_sub(before_ns));
    // Exact enough for a percentage: both fit f64's 53-bit mantissa for
    // any interval shorter than about 100 days.
    used as f64 / wall_ns as f64 * 100.0
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

/// docker's memory units: `12.5MiB`.
pub fn binary_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// docker's network units: `1.2kB`.
pub fn decimal_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

fn scaled(bytes: u64, base: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}{}", units[0])
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
  eth1:       2       1    0    0    0     0          0         0        3       1    0    0    0     0       0          0
";

    #[test]
    fn net_totals_skip_loopback() {
        assert_eq!(net_totals(NET_DEV), (2050, 515));
        assert_eq!(net_totals(""), (0, 0));
    }

    #[test]
    fn meminfo_total() {
        assert_eq!(mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"), Some(2048 * 1024));
        assert_eq!(mem_total("nothing"), None);
    }

    #[test]
    fn cpu_percent_is_of_one_cpu() {
        assert!((cpu_percent(0, 500_000_000, 1_000_000_000) - 50.0).abs() < 1e-9);
        assert!((cpu_percent(0, 2_000_000_000, 1_000_000_000) - 200.0).abs() < 1e-9);
        assert!(cpu_percent(10, 5, 1_000).abs() < 1e-9);
        assert!(cpu_percent(0, 5, 0).abs() < 1e-9);
    }

    #[test]
    fn sizes_in_docker_units() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(64 * 1024 * 1024), "64MiB");
        assert_eq!(decimal_size(1200), "1.2kB");
    }

    #[test]
    fn usage_uses_the_host_memory_without_a_limit() {
        let taken = Instant::now();
        let mut sample = Sample {
            id: "0123456789abcdef".into(),
            name: "demo-web-1".into(),
            cgroup: CgroupStats {
                memory_usage: 1024 * 1024,
                memory_limit: None,
                cpu_usage_ns: 1_000,
                pids_current: 2,
            },
            net_rx: 10,
            net_tx: 20,
            taken,
        };
        let u = usage(None, &sample, 4 * 1024 * 1024);
        assert_eq!(u.id, "0123456789ab");
        assert_eq!(u.mem_usage, "1MiB / 4MiB");
        assert_eq!(u.mem_perc, "25.00%");
        assert_eq!(u.pids, "2");
        assert_eq!(u.cpu_perc, "0.00%");
        sample.cgroup.memory_limit = Some(2 * 1024 * 1024);
        assert_eq!(usage(None, &sample, 0).mem_perc, "50.00%");
    }
}
