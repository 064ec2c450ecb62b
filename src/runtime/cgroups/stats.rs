//! A point-in-time usage snapshot of a container's cgroup (`berth stats`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// Bytes charged now (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_usage: u64,
    /// The hard limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// CPU time consumed in nanoseconds (v1 `cpuacct.usage`, v2
    /// `cpu.stat` `usage_usec` × 1000).
    pub cpu_usage_ns: u64,
    /// Tasks alive now (`pids.current`).
    pub pids_current: u64,
}
