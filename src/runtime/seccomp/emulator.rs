//! Test-only classic-BPF interpreter for the instructions seccompiler
//! emits, plus the kernel's rule for combining several filters, so the
//! compiled programs' verdicts are checked without root or a kernel.

use seccompiler::sock_filter;

/// AUDIT_ARCH_X86_64.
pub const ARCH_X86_64: u32 = 0xC000_003E;

/// `struct seccomp_data`.
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl SeccompData {
    pub fn x86_64(nr: i64, args: &[u64]) -> Self {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        Self {
            nr: i32::try_from(nr).unwrap(),
            arch: ARCH_X86_64,
            args: all,
        }
    }

    /// The 32-bit word at byte `offset`, as `BPF_LD|BPF_W|BPF_ABS` loads it.
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr as u32,
            4 => self.arch,
            16..=63 => {
                let arg = self.args[(offset as usize - 16) / 8];
                if offset % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("unexpected load offset {offset}"),
        }
    }
}

/// Runs one program; returns its `SECCOMP_RET_*` value.
pub fn run(program: &[sock_filter], data: &SeccompData) -> u32 {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let ins = &program[pc];
        pc += 1;
        match ins.code {
            0x20 => acc = data.word(ins.k), // LD W ABS
            0x54 => acc &= ins.k,           // ALU AND K
            0x05 => pc += ins.k as usize,   // JA
            0x06 => return ins.k,           // RET K
            0x15 | 0x25 | 0x35 => {
                let taken = match ins.code {
                    0x15 => acc == ins.k, // JEQ
                    0x25 => acc > ins.k,  // JGT
                    _ => acc >= ins.k,    // JGE
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            code => panic!("unexpected BPF opcode {code:#x}"),
        }
    }
}

/// `kernel/seccomp.c: seccomp_run_filters`: newest filter first; a result
/// replaces the current one only if its action is strictly more severe
/// (lower as a signed 32-bit action value).
pub fn run_all(programs: &[Vec<sock_filter>], data: &SeccompData) -> u32 {
    let severity = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for program in programs.iter().rev() {
        let cur = run(program, data);
        if severity(cur) < severity(ret) {
            ret = cur;
        }
    }
    ret
}
