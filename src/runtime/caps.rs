//! Linux capabilities: names, Docker's default set, `--cap-add`/`--cap-drop`
//! arithmetic (pure), and applying a set to the current process.

use std::collections::BTreeSet;

use thiserror::Error;

/// Capability names in kernel order (`include/uapi/linux/capability.h`);
/// the index is the capability number.
pub const ALL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set (moby `daemon/pkg/oci/caps/defaults.go`); as a
/// mask this is CapEff 00000000a80425fb.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CapError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("{operation} capability {capability}: {errno}")]
    Apply {
        operation: &'static str,
        capability: String,
        errno: nix::errno::Errno,
    },
}

/// `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name CAP_NET_ADMIN.
pub fn canonical_name(name: &str) -> Result<String, CapError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(CapError::Unknown(name.to_string()))
    }
}

/// The set a container gets: Docker's default (or everything when
/// privileged), then drops, then adds — `ALL` works in both, as in docker
/// (`--cap-drop ALL --cap-add NET_BIND_SERVICE` keeps one).
pub fn effective_set(privileged: bool, add: &[String], drop: &[String]) -> Result<BTreeSet<String>, CapError> {
    if privileged {
        return Ok(ALL.iter().map(|c| c.to_string()).collect());
    }
    let mut set: BTreeSet<String> = DOCKER_DEFAULT.iter().map(|c| c.to_string()).collect();
    for cap in drop {
        if cap.eq_ignore_ascii_case("ALL") {
            set.clear();
        } else {
            set.remove(&canonical_name(cap)?);
        }
    }
    for cap in add {
        if cap.eq_ignore_ascii_case("ALL") {
            set.extend(ALL.iter().map(|c| c.to_string()));
        } else {
            set.insert(canonical_name(cap)?);
        }
    }
    Ok(set)
}

/// The bit mask of a set, as `/proc/<pid>/status` shows it.
pub fn mask(set: &BTreeSet<String>) -> u64 {
    ALL.iter()
        .enumerate()
        .filter(|(_, name)| set.contains(**name))
        .fold(0, |m, (i, _)| m | (1u64 << i))
}

/// The highest capability number this kernel knows (`cap_last_cap`).
fn last_cap() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(ALL.len() - 1)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's permitted set (`capget`).
fn current_permitted() -> u64 {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array of the v3 layout, as
    // capget(2) requires; both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) };
    if rc != 0 {
        return u64::MAX;
    }
    u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32)
}

/// Drops every capability outside `set` from the bounding set and clears
/// the ambient set. Needs CAP_SETPCAP, so it runs before the user switch.
pub fn drop_bounding(set: &BTreeSet<String>) -> Result<(), CapError> {
    let keep = mask(set);
    for cap in 0..=last_cap() {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            // EINVAL: a capability newer than this kernel; nothing to drop.
            if rc != 0 && nix::errno::Errno::last() != nix::errno::Errno::EINVAL {
                return Err(CapError::Apply {
                    operation: "dropping bounding",
                    capability: ALL.get(cap).unwrap_or(&"?").to_string(),
                    errno: nix::errno::Errno::last(),
                });
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    Ok(())
}

/// Sets effective = permitted = inheritable = `set`: the last privileged
/// step, after the user switch (which runs with KEEPCAPS so the permitted
/// set survives it).
pub fn set_process_caps(set: &BTreeSet<String>) -> Result<(), CapError> {
    // A capability the host withholds from berth itself (this VM's root
    // lacks CAP_SYS_RESOURCE) cannot be granted: `--privileged` means
    // everything berth holds.
    let keep = mask(set) & current_permitted();
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let low = (keep & 0xffff_ffff) as u32;
    let high = (keep >> 32) as u32;
    let data = [
        CapData {
            effective: low,
            permitted: low,
            inheritable: low,
        },
        CapData {
            effective: high,
            permitted: high,
            inheritable: high,
        },
    ];
    // SAFETY: header and a two-element data array of the v3 layout, as
    // capset(2) requires; both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(CapError::Apply {
            operation: "setting",
            capability: "effective/permitted/inheritable".into(),
            errno: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask_matches_docker() {
        let set = effective_set(false, &[], &[]).unwrap();
        assert_eq!(format!("{:016x}", mask(&set)), "00000000a80425fb");
    }

    #[test]
    fn add_and_drop_with_all() {
        let set = effective_set(false, &["net_admin".into()], &["MKNOD".into()]).unwrap();
        assert!(set.contains("CAP_NET_ADMIN"));
        assert!(!set.contains("CAP_MKNOD"));
        let set = effective_set(false, &["NET_BIND_SERVICE".into()], &["ALL".into()]).unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec!["CAP_NET_BIND_SERVICE"]);
        assert_eq!(effective_set(true, &[], &[]).unwrap().len(), ALL.len());
        assert_eq!(
            effective_set(false, &["FLY".into()], &[]),
            Err(CapError::Unknown("FLY".into()))
        );
    }
}
