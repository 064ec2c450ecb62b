//! Device access control on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program compiled from a [`DeviceRule`] list and attached to the cgroup
//! with `BPF_CGROUP_DEVICE`. cgroups-rs has no v2 device support, and v2 has
//! no `devices.allow` file: without this program a v2 container could open
//! any device node it can see (runc #3013: bpf(2) is a hard requirement).
//!
//! The program follows runc's `libcontainer/cgroups/devices/devicefilter.go`:
//! load the context into registers, then one block per rule, **last rule
//! first** so that the first match in the program is the last match in the
//! list (the order v1 applies `devices.allow`/`devices.deny` writes), and a
//! final deny. Context layout: `struct bpf_cgroup_dev_ctx` in
//! `include/uapi/linux/bpf.h`; instruction encoding:
//! `Documentation/bpf/standardization/instruction-set.rst`.
//!
//! Known difference from v1: an access request must be covered by a single
//! allow rule (`c 1:5 r` plus `c 1:5 w` does not allow an `rw` open); runc
//! avoids this with its rule emulator, which berth does not have yet.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::resources::DeviceRule;

/// One eBPF instruction, `struct bpf_insn`: the register byte is
/// `dst | src << 4` (little-endian bitfields, the only layout berth targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | op | source) used by the device program.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// bpf_cgroup_dev_ctx.access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

// Registers: r1 = context on entry, then scratch; r2 = device type,
// r3 = requested access, r4 = major, r5 = minor; r0 = verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Number of instructions before the first rule block.
pub const PROLOGUE_LEN: usize = 6;

fn prologue() -> [Insn; PROLOGUE_LEN] {
    [
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ]
}

fn access_mask(access: &str) -> i32 {
    access.chars().fold(0, |mask, c| {
        mask | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// Which jump ends a rule's checks; the target is the next block.
enum Check {
    Imm(u8, u8, i32),
    /// `mov32 r1, r3` / `and32 r1, mask` then a jump: three instructions.
    Access {
        allow: bool,
        mask: i32,
    },
}

/// The block for one rule: its match checks, then `r0 = verdict; exit`.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    let mut checks = Vec::new();
    // 'a' matches every type, number and access, as in v1 `devices.allow`.
    if rule.kind != 'a' {
        let kind = if rule.kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
        checks.push(Check::Imm(JMP_JNE_K, R2, kind));
        let mask = access_mask(&rule.access);
        if mask != ACC_ALL {
            checks.push(Check::Access {
                allow: rule.allow,
                mask,
            });
        }
        if let Some(major) = rule.major {
            checks.push(Check::Imm(JMP_JNE_K, R4, major as i32));
        }
        if let Some(minor) = rule.minor {
            checks.push(Check::Imm(JMP_JNE_K, R5, minor as i32));
        }
    }
    let len: usize = checks
        .iter()
        .map(|c| match c {
            Check::Imm(..) => 1,
            Check::Access { .. } => 3,
        })
        .sum::<usize>()
        + 2;
    let mut block = Vec::with_capacity(len);
    // A jump's offset counts from the instruction after it.
    let to_next = |at: usize| (len - at - 1) as i16;
    for check in checks {
        match check {
            Check::Imm(op, reg, imm) => block.push(insn(op, reg, 0, to_next(block.len()), imm)),
            Check::Access { allow, mask } => {
                block.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
                block.push(insn(ALU32_AND_K, R1, 0, 0, mask));
                block.push(if allow {
                    // Allow only if every requested bit is granted.
                    insn(JMP_JNE_X, R1, R3, to_next(block.len()), 0)
                } else {
                    // Deny if any requested bit is denied.
                    insn(JMP_JEQ_K, R1, 0, to_next(block.len()), 0)
                });
            }
        }
    }
    block.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(rule.allow)));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    block
}

/// Compiles `rules` (applied in order after a deny-all) into a program that
/// returns 1 to allow and 0 to deny (the kernel turns 0 into `EPERM`).
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = prologue().to_vec();
    for rule in rules.iter().rev() {
        prog.extend(rule_block(rule));
    }
    prog.push(insn(ALU32_MOV_K, R0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// Loading or attaching the device program failed.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "BPF_PROG_LOAD of a {insns}-instruction device program: {source}{}",
        verifier_log(log)
    )]
    Load {
        insns: usize,
        log: String,
        #[source]
        source: io::Error,
    },
    #[error("opening the cgroup directory: {0}")]
    OpenCgroup(#[source] io::Error),
    #[error("BPF_PROG_ATTACH with BPF_CGROUP_DEVICE: {0}")]
    Attach(#[source] io::Error),
}

fn verifier_log(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!(" (verifier: {})", log.trim())
    }
}

// From include/uapi/linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to
/// `expected_attach_type`; the kernel zero-fills the fields we omit.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised #[repr(C)] prefix of
    // `union bpf_attr` for `cmd`, and the size passed is exactly its size,
    // so the kernel reads (and for logs writes) only memory we own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn prog_load(prog: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    // Any string works: the program calls no GPL-only helper.
    let license = CString::from(c"Apache-2.0");
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"berth_devices");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: BPF_PROG_LOAD returned a new file descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads `prog`, raising `RLIMIT_MEMLOCK` only if the kernel says `EPERM`:
/// kernels before 5.11 charge BPF memory to memlock (youki #2167), newer ones
/// to the memory cgroup. Raising needs CAP_SYS_RESOURCE, which berth may not
/// have, so the original error wins if that fails too.
pub fn load(prog: &[Insn]) -> Result<OwnedFd, BpfError> {
    let first = match prog_load(prog, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if first.raw_os_error() == Some(libc::EPERM) && raise_memlock() {
        if let Ok(fd) = prog_load(prog, None) {
            return Ok(fd);
        }
    }
    // Load again with the verifier log so the error says why.
    let mut log = vec![0u8; 64 * 1024];
    let source = match prog_load(prog, Some(&mut log)) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err(BpfError::Load {
        insns: prog.len(),
        log: String::from_utf8_lossy(&log[..end]).into_owned(),
        source,
    })
}

fn raise_memlock() -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    if setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok() {
        return true;
    }
    // Without CAP_SYS_RESOURCE the soft limit can still rise to the hard one.
    matches!(getrlimit(Resource::RLIMIT_MEMLOCK), Ok((soft, hard)) if soft < hard
        && setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard).is_ok())
}

/// Attaches `prog` to the cgroup2 directory `cgroup` without
/// `BPF_F_ALLOW_MULTI`: a later attach to the same cgroup replaces it (that
/// is how `update` swaps rules), and the attachment keeps the program alive
/// after `prog` is closed, until the cgroup is removed.
pub fn attach(prog: &OwnedFd, cgroup: &Path) -> Result<(), BpfError> {
    let dir = File::open(cgroup).map_err(BpfError::OpenCgroup)?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..ProgAttachAttr::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop).map_err(BpfError::Attach)
}

/// Compiles, loads and attaches `rules` to the cgroup2 directory `cgroup`.
pub fn apply(rules: &[DeviceRule], cgroup: &Path) -> Result<(), BpfError> {
    let prog = compile(rules);
    let fd = load(&prog)?;
    attach(&fd, cgroup)
}

#[cfg(test)]
#[path = "devices_bpf_tests.rs"]
mod tests;
