//! Fault injection for tests: `BERTH_FAIL_AT=<point>` makes the named
//! setup step fail, so tests can prove that every failure path cleans up.
//! The points are `cgroup` (monitor, after creating the cgroup), `mount`
//! (init, after the overlay mount), `pivot_root` (init, after pivoting),
//! `exec` (init, right before execve), `network` (monitor, after a
//! container's veth pair exists) and `bridge` (`network create`, after the
//! bridge and its NAT rule exist).

/// Fails when the environment asks for a failure at `point`.
pub fn fail_point(point: &str) -> Result<(), String> {
    match std::env::var("BERTH_FAIL_AT") {
        Ok(wanted) if wanted == point => Err(format!("injected failure at {point} (BERTH_FAIL_AT)")),
        _ => Ok(()),
    }
}
