//! What a container may use, and the pure conversions from the Docker-style
//! knobs to the values each cgroup version wants. No I/O here: every rule
//! that decides a number is unit-tested without root.

use serde::{Deserialize, Serialize};

/// Resource limits of one container, in Docker's units and semantics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Hard memory limit in bytes.
    pub memory: Option<i64>,
    /// Docker semantics: memory + swap in bytes; `-1` is unlimited swap, `0`
    /// means unset. Docker's "2 × memory when only --memory is given" default
    /// belongs to the caller; `None` leaves the kernel default.
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: Option<i64>,
    /// CFS quota in µs per period; `-1` unlimited. See [`cpus_to_quota`].
    pub cpu_quota: Option<i64>,
    /// CFS period in µs (Docker: 100000).
    pub cpu_period: Option<u64>,
    /// v1 `cpu.shares` (2..=262144); converted to `cpu.weight` on v2.
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Max number of tasks; `<= 0` is unlimited.
    pub pids_limit: Option<i64>,
    /// Device allow-list, applied in order after a deny-all.
    pub devices: Vec<DeviceRule>,
}

/// One device cgroup rule, as in `devices.allow`: `c 1:3 rwm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `'a'` (all), `'c'` (char) or `'b'` (block).
    pub kind: char,
    /// `None` is the wildcard `*`.
    pub major: Option<i64>,
    /// `None` is the wildcard `*`.
    pub minor: Option<i64>,
    /// A non-empty subset of `"rwm"`.
    pub access: String,
}

impl DeviceRule {
    /// An allow rule for `kind major:minor access`.
    pub fn allow(kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Self {
        Self {
            allow: true,
            kind,
            major,
            minor,
            access: access.to_owned(),
        }
    }

    /// A deny rule for `kind major:minor access`.
    pub fn deny(kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Self {
        Self {
            allow: false,
            ..Self::allow(kind, major, minor, access)
        }
    }

    /// The line the v1 `devices.allow` / `devices.deny` files take.
    pub fn to_v1_line(&self) -> String {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        if self.kind == 'a' {
            // The kernel ignores major:minor and access for 'a'.
            return "a".to_owned();
        }
        format!("{} {}:{} {}", self.kind, num(self.major), num(self.minor), self.access)
    }

    fn validate(&self) -> Result<(), ResourceError> {
        let bad = |why: &'static str| ResourceError::Device {
            rule: self.to_v1_line(),
            why,
        };
        if !matches!(self.kind, 'a' | 'c' | 'b') {
            return Err(bad("type must be 'a', 'c' or 'b'"));
        }
        if self.access.is_empty() || !self.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(bad("access must be a non-empty subset of \"rwm\""));
        }
        // Linux numbers are 12 (major) and 20 (minor) bits; i32 keeps them
        // exact as eBPF immediates, which are sign-extended.
        let in_range = |n: Option<i64>| n.is_none_or(|n| (0..=i64::from(i32::MAX)).contains(&n));
        if !in_range(self.major) || !in_range(self.minor) {
            return Err(bad("major and minor must be within 0..=2147483647"));
        }
        Ok(())
    }
}

/// Docker's default device list plus runc's always-appended `AllowedDevices`
/// (runtime-reference C.6; moby `daemon/pkg/oci/defaults.go`, runc
/// `libcontainer/specconv/spec_linux.go`). Apply after a deny-all.
pub fn docker_default_device_rules() -> Vec<DeviceRule> {
    let c = |major, minor| DeviceRule::allow('c', Some(major), Some(minor), "rwm");
    vec![
        // mknod of anything; opening still needs r/w on the node's own rule.
        DeviceRule::allow('c', None, None, "m"),
        DeviceRule::allow('b', None, None, "m"),
        c(1, 3),                                        // /dev/null
        c(1, 5),                                        // /dev/zero
        c(1, 7),                                        // /dev/full
        c(1, 8),                                        // /dev/random
        c(1, 9),                                        // /dev/urandom
        c(5, 0),                                        // /dev/tty
        DeviceRule::allow('c', Some(136), None, "rwm"), // /dev/pts/*
        c(5, 1),                                        // /dev/console
        c(5, 2),                                        // /dev/ptmx
        c(10, 200),                                     // /dev/net/tun (runc PR #3468)
        // /dev/fuse stays out even if a broader rule is added later.
        DeviceRule::deny('c', Some(10), Some(229), "rwm"),
    ]
}

/// A limit the user asked for that no kernel would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("memory+swap limit ({swap}) must be at least the memory limit ({memory})")]
    SwapBelowMemory { memory: i64, swap: i64 },
    #[error("a memory+swap limit needs a memory limit")]
    SwapWithoutMemory,
    #[error("memory limit {0} is invalid: use a positive number of bytes or -1")]
    Memory(i64),
    #[error("cpu quota {0}µs is below the kernel minimum of 1000µs")]
    QuotaTooSmall(i64),
    #[error("cpu period {0}µs must be within 1000..=1000000")]
    Period(u64),
    #[error("cpu count {0} is invalid: use a positive number")]
    Cpus(String),
    #[error("device rule {rule:?}: {why}")]
    Device { rule: String, why: &'static str },
}

/// Docker's default CFS period in µs.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// `--cpus N` → (quota, period): quota = N × 100000 µs, as Docker does.
pub fn cpus_to_quota(cpus: f64) -> Result<(i64, u64), ResourceError> {
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(ResourceError::Cpus(cpus.to_string()));
    }
    let quota = (cpus * DEFAULT_CPU_PERIOD as f64).round() as i64;
    if quota < 1000 {
        return Err(ResourceError::QuotaTooSmall(quota));
    }
    Ok((quota, DEFAULT_CPU_PERIOD))
}

/// v1 `cpu.shares` → v2 `cpu.weight`, crun's linear map of [2, 262144] onto
/// [1, 10000] (crun.1.md "CGROUP v2"; youki `v2/cpu.rs`). `0` means unset.
pub fn shares_to_weight(shares: u64) -> Option<u64> {
    if shares == 0 {
        return None;
    }
    let shares = shares.clamp(2, cgroups_rs::CPU_SHARES_V1_MAX);
    Some(1 + ((shares - 2) * 9999) / 262_142)
}

/// What to do with swap, decided from Docker's memory/memory_swap pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapLimit {
    /// Leave the kernel's value alone.
    Unset,
    /// No swap limit (v1 memsw `-1`, v2 `memory.swap.max` "max").
    Unlimited,
    /// v1: `memory.memsw.limit_in_bytes` = memory + swap, in bytes.
    Total(i64),
}

/// Validates Docker's memory/swap pair (runc's
/// `ConvertMemorySwapToCgroupV2Value` rules) and returns the swap decision.
pub fn swap_limit(memory: Option<i64>, memory_swap: Option<i64>) -> Result<SwapLimit, ResourceError> {
    let memory = memory.unwrap_or(0);
    if memory < -1 {
        return Err(ResourceError::Memory(memory));
    }
    match memory_swap.unwrap_or(0) {
        // Unlimited memory with no explicit swap: both unlimited, as on v1.
        0 if memory == -1 => Ok(SwapLimit::Unlimited),
        0 => Ok(SwapLimit::Unset),
        -1 => Ok(SwapLimit::Unlimited),
        _ if memory <= 0 => Err(ResourceError::SwapWithoutMemory),
        swap if swap < memory => Err(ResourceError::SwapBelowMemory { memory, swap }),
        swap => Ok(SwapLimit::Total(swap)),
    }
}

/// v2 `memory.swap.max` holds swap alone: total − memory (crun.1.md).
pub fn v2_swap_max(limit: SwapLimit, memory: Option<i64>) -> Option<String> {
    match limit {
        SwapLimit::Unset => None,
        SwapLimit::Unlimited => Some("max".to_owned()),
        SwapLimit::Total(total) => Some((total - memory.unwrap_or(0)).max(0).to_string()),
    }
}

/// Which v1 memory file to write first. The kernel requires
/// `memsw.limit >= limit` at every instant, so raising memsw goes first and
/// lowering it goes last (runc `fs/memory.go` `setMemoryAndSwap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryOrder {
    MemoryFirst,
    SwapFirst,
}

/// `current_memsw` is the value in `memory.memsw.limit_in_bytes` now.
pub fn v1_memory_order(current_memsw: i64, new: SwapLimit) -> MemoryOrder {
    match new {
        SwapLimit::Unlimited => MemoryOrder::SwapFirst,
        SwapLimit::Total(total) if total > current_memsw => MemoryOrder::SwapFirst,
        _ => MemoryOrder::MemoryFirst,
    }
}

/// v1 `pids.max` / v2 `pids.max`: `<= 0` is unlimited.
pub fn pids_max(limit: i64) -> cgroups_rs::fs::MaxValue {
    if limit <= 0 {
        cgroups_rs::fs::MaxValue::Max
    } else {
        cgroups_rs::fs::MaxValue::Value(limit)
    }
}

impl Resources {
    /// Checks everything before the first write, so a bad value never leaves
    /// a half-configured cgroup behind.
    pub fn validate(&self) -> Result<(), ResourceError> {
        // 0 is Docker's "unset"; -1 is unlimited.
        if let Some(m) = self.memory.filter(|m| *m < -1) {
            return Err(ResourceError::Memory(m));
        }
        swap_limit(self.memory, self.memory_swap)?;
        if let Some(q) = self.cpu_quota {
            if q != -1 && q < 1000 {
                return Err(ResourceError::QuotaTooSmall(q));
            }
        }
        if let Some(p) = self.cpu_period {
            if !(1000..=1_000_000).contains(&p) {
                return Err(ResourceError::Period(p));
            }
        }
        self.devices.iter().try_for_each(DeviceRule::validate)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_quota_over_the_docker_period() {
        assert_eq!(cpus_to_quota(0.5).unwrap(), (50_000, 100_000));
        assert_eq!(cpus_to_quota(2.0).unwrap(), (200_000, 100_000));
        assert_eq!(cpus_to_quota(0.001), Err(ResourceError::QuotaTooSmall(100)));
        assert!(cpus_to_quota(0.0).is_err());
        assert!(cpus_to_quota(f64::NAN).is_err());
    }

    #[test]
    fn shares_map_linearly_onto_weight() {
        assert_eq!(shares_to_weight(0), None);
        assert_eq!(shares_to_weight(2), Some(1));
        assert_eq!(shares_to_weight(262_144), Some(10_000));
        assert_eq!(shares_to_weight(1024), Some(39));
        assert_eq!(shares_to_weight(512), Some(20));
        // Out-of-range values clamp like the v1 kernel does.
        assert_eq!(shares_to_weight(1), Some(1));
        assert_eq!(shares_to_weight(1 << 30), Some(10_000));
    }

    #[test]
    fn swap_follows_docker_semantics() {
        let g = 1 << 30;
        assert_eq!(swap_limit(Some(g), None), Ok(SwapLimit::Unset));
        assert_eq!(swap_limit(Some(g), Some(2 * g)), Ok(SwapLimit::Total(2 * g)));
        assert_eq!(swap_limit(Some(g), Some(-1)), Ok(SwapLimit::Unlimited));
        assert_eq!(swap_limit(Some(-1), None), Ok(SwapLimit::Unlimited));
        assert_eq!(
            swap_limit(Some(2 * g), Some(g)),
            Err(ResourceError::SwapBelowMemory { memory: 2 * g, swap: g })
        );
        assert_eq!(swap_limit(None, Some(g)), Err(ResourceError::SwapWithoutMemory));
        assert_eq!(v2_swap_max(SwapLimit::Total(3 * g), Some(g)), Some((2 * g).to_string()));
        assert_eq!(v2_swap_max(SwapLimit::Total(g), Some(g)), Some("0".into()));
        assert_eq!(v2_swap_max(SwapLimit::Unlimited, Some(g)), Some("max".into()));
        assert_eq!(v2_swap_max(SwapLimit::Unset, Some(g)), None);
    }

    #[test]
    fn memsw_is_written_first_only_when_it_grows() {
        let g = 1 << 30;
        assert_eq!(v1_memory_order(g, SwapLimit::Total(2 * g)), MemoryOrder::SwapFirst);
        assert_eq!(v1_memory_order(2 * g, SwapLimit::Total(g)), MemoryOrder::MemoryFirst);
        assert_eq!(v1_memory_order(g, SwapLimit::Unlimited), MemoryOrder::SwapFirst);
        assert_eq!(v1_memory_order(g, SwapLimit::Unset), MemoryOrder::MemoryFirst);
    }

    #[test]
    fn pids_limit_of_zero_or_less_is_unlimited() {
        use cgroups_rs::fs::MaxValue;
        assert_eq!(pids_max(0), MaxValue::Max);
        assert_eq!(pids_max(-1), MaxValue::Max);
        assert_eq!(pids_max(20), MaxValue::Value(20));
    }

    #[test]
    fn docker_defaults_render_as_v1_lines() {
        let lines: Vec<_> = docker_default_device_rules()
            .iter()
            .map(DeviceRule::to_v1_line)
            .collect();
        assert_eq!(lines[0], "c *:* m");
        assert!(lines.contains(&"c 1:3 rwm".to_owned()));
        assert!(lines.contains(&"c 136:* rwm".to_owned()));
        assert!(lines.contains(&"c 10:200 rwm".to_owned()));
        let last = docker_default_device_rules().pop().unwrap();
        assert!(!last.allow);
        assert_eq!(last.to_v1_line(), "c 10:229 rwm");
    }

    #[test]
    fn validation_rejects_impossible_values_before_any_write() {
        let ok = Resources {
            memory: Some(64 << 20),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            devices: docker_default_device_rules(),
            ..Resources::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad_dev = Resources {
            devices: vec![DeviceRule::allow('x', None, None, "rwm")],
            ..Resources::default()
        };
        assert!(bad_dev.validate().is_err());
        let bad_access = Resources {
            devices: vec![DeviceRule::allow('c', Some(1), Some(3), "rwx")],
            ..Resources::default()
        };
        assert!(bad_access.validate().is_err());
        let negative_mem = Resources {
            memory: Some(-5),
            ..Resources::default()
        };
        assert_eq!(negative_mem.validate(), Err(ResourceError::Memory(-5)));
        let tiny_quota = Resources {
            cpu_quota: Some(10),
            ..Resources::default()
        };
        assert!(tiny_quota.validate().is_err());
    }
}
