//! The per-container monitor as a binary of its own. One of these stays
//! resident beside every running container, so it is linked with only the
//! monitor's code: the full `berth` binary is ~12 MB of text and relocates
//! ~300 KiB of tables at every start, which would be paid per container.
//! `berth` falls back to its own hidden `__monitor` verb when this binary is
//! not installed beside it (`runtime::lifecycle::monitor_program`).

use std::process::ExitCode;

fn main() -> ExitCode {
    berth::runtime::monitor::main()
}
