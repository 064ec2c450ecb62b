//! Links the unwinder statically (libgcc_eh.a) instead of libgcc_s.so.
//!
//! Every container start execs berth twice (the CLI and the monitor), and
//! loading libgcc_s.so costs each ~0.2 ms on a virtual machine: its
//! constructor (`__cpu_indicator_init`) runs `cpuid`, which traps to the
//! hypervisor (~5 us a time here). With the unwinder's objects linked in
//! whole, before std's `-lgcc_s`, nothing needs that library any more and
//! `--as-needed` (rustc's default) leaves it out. Panics and backtraces
//! unwind as before. Where the compiler has no libgcc_eh.a, or the target
//! is not glibc, nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" || features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let Some(archive) = static_unwinder() else {
        println!("cargo:warning=libgcc_eh.a not found: berth links libgcc_s.so (slower process start)");
        return;
    };
    if let Some(dir) = archive.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    // `-bundle`: linked where each binary is linked, not copied into the
    // rlib; `+whole-archive`: defined before std's `-lgcc_s` is reached.
    println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
}

/// libgcc_eh.a as the C compiler that links berth finds it.
fn static_unwinder() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(cc).arg("-print-file-name=libgcc_eh.a").output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // A compiler without it prints the bare name back.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
