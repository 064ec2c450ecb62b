//! The few networking sysctls a bridge network needs, as plain writes under
//! `/proc/sys/net`.
//!
//! Those files resolve to the network namespace of the thread that opens
//! them, so these functions act on the caller's namespace; wrap a call in
//! [`crate::Netns::run`] to act on another. Runtime values are all they
//! set: persisting them against `systemd-sysctl` (netavark mirrors them into
//! `/run/sysctl.d`, RHEL-89477) is the caller's policy.

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ifname;

/// Reverse-path filtering (`rp_filter`, see the kernel's ip-sysctl.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpFilter {
    Off = 0,
    Strict = 1,
    /// What netavark sets: strict filtering drops replies that arrive on a
    /// different bridge when a container is on several networks and ports
    /// are forwarded.
    Loose = 2,
}

/// `net.ipv4.ip_forward`, which routing between a bridge and the outside
/// needs. It is per namespace; in the host's, other software may rely on it.
pub fn set_ipv4_forwarding(on: bool) -> Result<()> {
    write(PathBuf::from("/proc/sys/net/ipv4/ip_forward"), flag(on))
}

/// `net.ipv4.conf.<link>.rp_filter`.
pub fn set_rp_filter(link: &str, mode: RpFilter) -> Result<()> {
    write(ipv4_conf(link)?.join("rp_filter"), (mode as u8).to_string())
}

/// `net.ipv4.conf.<link>.route_localnet`: lets `127.0.0.0/8` traffic be
/// routed through the link, which DNAT of ports published on `127.0.0.1`
/// needs on the bridge.
pub fn set_route_localnet(link: &str, on: bool) -> Result<()> {
    write(ipv4_conf(link)?.join("route_localnet"), flag(on))
}

/// `net.ipv6.conf.<link>.accept_dad`: 0 makes IPv6 addresses usable at
/// once (netavark sets it on bridges and veths; binding a still-tentative
/// address fails with `EADDRNOTAVAIL`).
pub fn set_accept_dad(link: &str, on: bool) -> Result<()> {
    ifname::validate(link)?;
    write(
        PathBuf::from("/proc/sys/net/ipv6/conf").join(link).join("accept_dad"),
        flag(on),
    )
}

fn ipv4_conf(link: &str) -> Result<PathBuf> {
    // Validation also keeps "../" out of the path.
    ifname::validate(link)?;
    Ok(PathBuf::from("/proc/sys/net/ipv4/conf").join(link))
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

fn write(path: PathBuf, value: String) -> Result<()> {
    fs::write(&path, &value).map_err(|source| Error::Sysctl { path, value, source })
}
