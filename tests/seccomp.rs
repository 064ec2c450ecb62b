//! Seccomp filters on the real kernel. A filter cannot be removed once
//! installed, so each case runs in a child process: this test binary
//! re-executed with `BERTH_SECCOMP_CHILD=<case>` and only `child_entry`
//! selected. The child installs the filter on its test thread and probes
//! syscalls from that same thread (libtest runs tests on a spawned thread,
//! hence `/proc/thread-self/status`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::process::Command;

use berth::runtime::seccomp::{compile, SeccompMode};

const CHILD_ENV: &str = "BERTH_SECCOMP_CHILD";

use berth::runtime::caps::DOCKER_DEFAULT as DOCKER_CAPS;

fn run_child(case: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child case {case} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_default_filter_on_the_kernel() {
    run_child("default");
}

#[test]
fn sys_admin_filter_on_the_kernel() {
    run_child("sys_admin");
}

#[test]
fn unconfined_installs_nothing() {
    run_child("unconfined");
}

/// Not a test of its own: the body of a child process (see the module doc).
#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let code = match child(&case) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("case {case}: {failure}");
            1
        }
    };
    std::process::exit(code);
}

fn child(case: &str) -> Result<(), String> {
    let mut caps: Vec<String> = DOCKER_CAPS.iter().map(|c| c.to_string()).collect();
    let mode = match case {
        "default" => SeccompMode::DockerDefault,
        "sys_admin" => {
            caps.push("CAP_SYS_ADMIN".to_owned());
            SeccompMode::DockerDefault
        }
        "unconfined" => SeccompMode::Unconfined,
        other => return Err(format!("unknown case {other}")),
    };
    let filter = compile(&mode, &caps).map_err(|e| format!("compile: {e:?}"))?;
    if let Some(filter) = &filter {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        check(rc == 0, "prctl(PR_SET_NO_NEW_PRIVS)")?;
        filter.install().map_err(|e| format!("install: {e:?}"))?;
    }
    let root = effective_uid() == 0;
    match case {
        "default" => {
            check(seccomp_mode()? == "2", "Seccomp: 2 in status")?;
            check_errno(unshare(libc::CLONE_NEWNS), libc::EPERM, "unshare(NEWNS)")?;
            check_errno(unshare(libc::CLONE_NEWUTS), libc::EPERM, "unshare(NEWUTS)")?;
            check_errno(clone3_probe(), libc::ENOSYS, "clone3")?;
            check_errno(socket(libc::AF_VSOCK), libc::EPERM, "socket(AF_VSOCK)")?;
            check(socket(libc::AF_UNIX).is_ok(), "socket(AF_UNIX) allowed")?;
        }
        "sys_admin" => {
            check(seccomp_mode()? == "2", "Seccomp: 2 in status")?;
            // clone3 reaches the kernel, which rejects the empty argument.
            check_errno(clone3_probe(), libc::EINVAL, "clone3")?;
            if root {
                check(unshare(libc::CLONE_NEWUTS).is_ok(), "unshare(NEWUTS) allowed")?;
            }
        }
        _ => {
            check(seccomp_mode()? == "0", "Seccomp: 0 in status")?;
            check_errno(clone3_probe(), libc::EINVAL, "clone3")?;
        }
    }
    // SAFETY: getpid has no arguments and cannot fail.
    let pid = unsafe { libc::syscall(libc::SYS_getpid) };
    check(pid == i64::from(std::process::id()), "getpid")?;
    Ok(())
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {}", io::Error::last_os_error()))
    }
}

fn check_errno(result: io::Result<()>, errno: i32, what: &str) -> Result<(), String> {
    match result {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        other => Err(format!(
            "{what}: expected {}, got {other:?}",
            io::Error::from_raw_os_error(errno)
        )),
    }
}

/// The calling thread's `Seccomp:` field (0 none, 2 filter).
fn seccomp_mode() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/thread-self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| "no Seccomp: line".to_owned())
}

fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: unshare takes a flag word; this child process exits soon.
    let rc = unsafe { libc::unshare(flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raw `clone3(NULL, 0)`: the kernel answers EINVAL (size too small)
/// before doing anything, so it never creates a process.
fn clone3_probe() -> io::Result<()> {
    // SAFETY: a null args pointer with size 0 is rejected by the kernel
    // before it is dereferenced.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::other(format!("clone3 returned {rc}")))
    }
}

fn socket(domain: i32) -> io::Result<()> {
    // SAFETY: socket takes integer arguments; the fd is closed below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor we just opened and own.
    unsafe { libc::close(fd) };
    Ok(())
}
