//! The per-container monitor as a binary of its own. One of these stays
//! resident beside every running container, so it is linked with only the
//! monitor's code: the full `berth` binary is ~12 MB of text and relocates
//! ~300 KiB of tables at every start, which would be paid per container.
//! `berth` falls back to its own hidden `__monitor` verb when this binary is
//! not installed beside it (`runtime::lifecycle::monitor_program`).
//!
//! `no_main`: the C `main` below is the entry, without std's runtime set-up
//! (its stack-overflow guard alone reads `/proc/self/maps`, a tenth of a
//! millisecond of every container's start, waited for by the start). What
//! the monitor needs of that set-up is done here: SIGPIPE ignored, so a
//! client that goes away is a failed write, not the monitor's death. It
//! prints nothing to stdout (its stdio is /dev/null), so there is no
//! buffer to flush at exit; a panic aborts it, as it would end it anyway.
//! (`cargo test` builds this file with the test harness's own `main`.)
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: std::os::raw::c_int, _argv: *const *const std::os::raw::c_char) -> std::os::raw::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread
    // exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::os::raw::c_int::from(berth::runtime::monitor::main())
}
