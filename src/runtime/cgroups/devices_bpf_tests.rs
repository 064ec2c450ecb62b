//! Pure tests of the device program: its shape, and its verdicts run through
//! a tiny interpreter of exactly the opcodes `compile` emits.

use super::*;
use crate::runtime::cgroups::resources::docker_default_device_rules;

/// Runs `prog` on `bpf_cgroup_dev_ctx { access_type, major, minor }`.
fn run(prog: &[Insn], kind: char, access: &str, major: u32, minor: u32) -> bool {
    let dev = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR } as u32;
    let ctx = [(access_mask(access) as u32) << 16 | dev, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..1000 {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        let jump = |taken: bool| if taken { i.off as usize } else { 0 };
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            ALU32_MOV_K => r[dst] = i.imm as u32 as u64,
            ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
            JMP_JEQ_K => pc += jump(r[dst] == i.imm as u64),
            JMP_JNE_K => pc += jump(r[dst] != i.imm as u64),
            JMP_JNE_X => pc += jump(r[dst] != r[src]),
            JMP_EXIT => return r[0] == 1,
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    panic!("program did not exit");
}

#[test]
fn empty_list_is_deny_all() {
    let prog = compile(&[]);
    assert_eq!(prog.len(), PROLOGUE_LEN + 2);
    assert!(!run(&prog, 'c', "r", 1, 3));
}

#[test]
fn block_sizes_follow_the_rule_shape() {
    // Fully specified rwm rule: type, major, minor checks + verdict.
    let exact = compile(&[DeviceRule::allow('c', Some(1), Some(3), "rwm")]);
    assert_eq!(exact.len(), PROLOGUE_LEN + 3 + 2 + 2);
    // Wildcards drop their checks; partial access adds three.
    let wild = compile(&[DeviceRule::allow('c', None, None, "m")]);
    assert_eq!(wild.len(), PROLOGUE_LEN + 1 + 3 + 2 + 2);
    // 'a' is an unconditional verdict.
    let all = compile(&[DeviceRule::allow('a', None, None, "rwm")]);
    assert_eq!(all.len(), PROLOGUE_LEN + 2 + 2);
    assert!(run(&all, 'b', "rw", 8, 0));
}

#[test]
fn docker_defaults_have_the_expected_program() {
    let rules = docker_default_device_rules();
    let prog = compile(&rules);
    // 2 wildcard-mknod rules (1+3+2), 9 exact rwm rules (3+2), pts (2+2),
    // fuse deny (3+2), prologue 6, final deny 2.
    assert_eq!(prog.len(), 6 + 2 * 6 + 9 * 5 + 4 + 5 + 2);
    // The last rule (deny fuse) is the first block after the prologue.
    assert_eq!(prog[PROLOGUE_LEN], insn(JMP_JNE_K, R2, 0, 4, DEV_CHAR));
    assert_eq!(prog[PROLOGUE_LEN + 3], insn(ALU32_MOV_K, R0, 0, 0, 0));
    assert_eq!(*prog.last().unwrap_or(&prog[0]), insn(JMP_EXIT, 0, 0, 0, 0));

    let allowed = |kind, access, major, minor| run(&prog, kind, access, major, minor);
    assert!(allowed('c', "rw", 1, 3), "/dev/null");
    assert!(allowed('c', "r", 1, 5), "/dev/zero");
    assert!(allowed('c', "rw", 136, 7), "/dev/pts/7");
    assert!(allowed('c', "rw", 10, 200), "/dev/net/tun");
    assert!(allowed('b', "m", 8, 0), "mknod of a disk");
    assert!(!allowed('b', "r", 8, 0), "reading a disk");
    assert!(!allowed('b', "rm", 8, 0), "mknod+read is more than m");
    assert!(!allowed('c', "rw", 10, 229), "/dev/fuse is denied");
    assert!(!allowed('c', "m", 10, 229), "fuse deny covers mknod too");
    assert!(!allowed('c', "r", 4, 1), "/dev/tty1");
}

#[test]
fn later_rules_win_and_deny_takes_any_overlap() {
    let rules = [
        DeviceRule::allow('c', Some(1), None, "rwm"),
        DeviceRule::deny('c', Some(1), Some(5), "w"),
    ];
    let prog = compile(&rules);
    assert!(run(&prog, 'c', "r", 1, 5));
    assert!(!run(&prog, 'c', "w", 1, 5));
    assert!(!run(&prog, 'c', "rw", 1, 5), "any denied bit denies");
    assert!(run(&prog, 'c', "rw", 1, 3));

    // And an allow after a deny re-opens the device.
    let reopened = compile(&[
        DeviceRule::deny('c', Some(1), Some(5), "rwm"),
        DeviceRule::allow('c', Some(1), Some(5), "r"),
    ]);
    assert!(run(&reopened, 'c', "r", 1, 5));
    assert!(!run(&reopened, 'c', "w", 1, 5));
}

#[test]
fn jumps_land_on_the_next_block() {
    let prog = compile(&[
        DeviceRule::allow('c', Some(1), Some(3), "r"),
        DeviceRule::allow('b', Some(8), None, "rwm"),
    ]);
    for (at, i) in prog.iter().enumerate() {
        if matches!(i.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
            let target = at + 1 + i.off as usize;
            // Every jump target begins a block: a type check or the final deny.
            assert!(
                prog[target].code == JMP_JNE_K && prog[target].regs == R2 || target == prog.len() - 2,
                "jump at {at} lands mid-block at {target}"
            );
        }
    }
}
