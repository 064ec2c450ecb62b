//! Compiled-program tests: verdicts of the installed program list, computed
//! by the emulator with the kernel's multi-filter rule.

use super::emulator::{run_all, SeccompData};
use super::resolve::{KernelVersion, Target};
use super::*;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

use crate::runtime::caps::DOCKER_DEFAULT as DOCKER_CAPS;

fn docker_default(extra: &[&str]) -> CompiledFilter {
    let caps: Vec<String> = DOCKER_CAPS.iter().chain(extra).map(|c| c.to_string()).collect();
    let profile = parse(DOCKER_DEFAULT_JSON, "test").unwrap();
    let kernel = KernelVersion { major: 6, minor: 1 };
    compile_profile(&profile, &Target::native(&caps, kernel)).unwrap()
}

fn custom(json: &str) -> CompiledFilter {
    let profile = parse(json, "test").unwrap();
    let kernel = KernelVersion { major: 6, minor: 1 };
    compile_profile(&profile, &Target::native(&[], kernel)).unwrap()
}

fn verdict(filter: &CompiledFilter, nr: i64, args: &[u64]) -> u32 {
    run_all(filter.programs(), &SeccompData::x86_64(nr, args))
}

#[test]
fn docker_default_verdicts() {
    let f = docker_default(&[]);
    // An action filter for clone3's Errno(38), then the coverage filter.
    assert_eq!(f.programs().len(), 2);
    assert!(f.instruction_count() < 4096 * 2);
    for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_execve, libc::SYS_getpid] {
        assert_eq!(verdict(&f, nr, &[]), ALLOW, "syscall {nr}");
    }
    assert_eq!(verdict(&f, libc::SYS_clone3, &[]), errno(libc::ENOSYS));
    for nr in [libc::SYS_mount, libc::SYS_unshare, libc::SYS_setns, libc::SYS_bpf] {
        assert_eq!(verdict(&f, nr, &[]), errno(libc::EPERM), "syscall {nr}");
    }
    // Not a syscall at all, and an x32-ABI number: the default.
    assert_eq!(verdict(&f, 999, &[]), errno(libc::EPERM));
    assert_eq!(verdict(&f, 0x4000_0000, &[]), errno(libc::EPERM));
}

#[test]
fn docker_default_argument_rules() {
    let f = docker_default(&[]);
    let vsock = libc::AF_VSOCK as u64;
    let socket = libc::SYS_socket;
    assert_eq!(verdict(&f, socket, &[libc::AF_INET as u64]), ALLOW);
    assert_eq!(verdict(&f, socket, &[vsock]), errno(libc::EPERM));
    // A 64-bit comparison: high bits set is not AF_VSOCK.
    assert_eq!(verdict(&f, socket, &[(1 << 32) | vsock]), ALLOW);

    let personality = libc::SYS_personality;
    for allowed in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(verdict(&f, personality, &[allowed]), ALLOW, "{allowed:#x}");
    }
    assert_eq!(verdict(&f, personality, &[1]), errno(libc::EPERM));

    let clone = libc::SYS_clone;
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::SIGCHLD) as u64;
    assert_eq!(verdict(&f, clone, &[thread]), ALLOW);
    let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
    assert_eq!(verdict(&f, clone, &[newns]), errno(libc::EPERM));
}

#[test]
fn sys_admin_verdicts() {
    let f = docker_default(&["CAP_SYS_ADMIN"]);
    // No rule with a non-Allow action remains: only the coverage filter.
    assert_eq!(f.programs().len(), 1);
    for nr in [libc::SYS_mount, libc::SYS_unshare, libc::SYS_clone3] {
        assert_eq!(verdict(&f, nr, &[]), ALLOW, "syscall {nr}");
    }
    let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
    assert_eq!(verdict(&f, libc::SYS_clone, &[newns]), ALLOW);
}

#[test]
fn wrong_arch_kills() {
    let f = docker_default(&[]);
    let mut data = SeccompData::x86_64(libc::SYS_read, &[]);
    data.arch = 0x4000_0003; // AUDIT_ARCH_I386
    assert_eq!(run_all(f.programs(), &data), KILL_PROCESS);
}

#[test]
fn rule_action_beats_a_more_severe_default() {
    let f = custom(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
            {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["getppid"],"action":"SCMP_ACT_TRAP"}]}"#,
    );
    assert_eq!(verdict(&f, libc::SYS_read, &[]), ALLOW);
    assert_eq!(verdict(&f, libc::SYS_getpid, &[]), errno(libc::ENOSYS));
    assert_eq!(verdict(&f, libc::SYS_getppid, &[]), libc::SECCOMP_RET_TRAP);
    assert_eq!(verdict(&f, libc::SYS_mount, &[]), KILL_PROCESS);
}

#[test]
fn deny_list_profile() {
    let f = custom(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mount"],"action":"SCMP_ACT_ERRNO"},
            {"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
             "args":[{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]},
            {"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(f.programs().len(), 2, "one per errno, no coverage filter");
    assert_eq!(verdict(&f, libc::SYS_mount, &[]), errno(libc::EPERM));
    assert_eq!(verdict(&f, libc::SYS_kill, &[1, 9]), errno(libc::EACCES));
    assert_eq!(verdict(&f, libc::SYS_kill, &[1, 15]), ALLOW);
    assert_eq!(verdict(&f, libc::SYS_getpid, &[]), ALLOW);
}

#[test]
fn overlapping_rules_most_severe_then_first_errno_wins() {
    let f = custom(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5},
            {"names":["read","write"],"action":"SCMP_ACT_ERRNO","errnoRet":6},
            {"names":["write","getpid"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getpid"],"action":"SCMP_ACT_LOG",
             "args":[{"index":0,"value":3,"op":"SCMP_CMP_MASKED_EQ","valueTwo":2}]}]}"#,
    );
    assert_eq!(verdict(&f, libc::SYS_read, &[]), errno(5));
    assert_eq!(verdict(&f, libc::SYS_write, &[]), errno(6));
    assert_eq!(verdict(&f, libc::SYS_getpid, &[0b110]), libc::SECCOMP_RET_LOG);
    assert_eq!(verdict(&f, libc::SYS_getpid, &[0b111]), ALLOW);
}

#[test]
fn allow_everything_compiles_to_nothing() {
    let f = custom(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#);
    assert!(f.programs().is_empty());
    assert_eq!(f.instruction_count(), 0);
}

#[test]
fn unconfined_compiles_nothing_and_files_are_read() {
    assert_eq!(compile(&SeccompMode::Unconfined, &[]).unwrap(), None);
    let f = compile(&SeccompMode::DockerDefault, &[]).unwrap().unwrap();
    assert!(f.instruction_count() > 0);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    std::fs::write(&path, DOCKER_DEFAULT_JSON).unwrap();
    let from_file = compile(&SeccompMode::Profile(path.clone()), &[]).unwrap();
    assert_eq!(from_file, Some(f));

    std::fs::write(&path, "{").unwrap();
    let err = compile(&SeccompMode::Profile(path.clone()), &[]).unwrap_err();
    assert!(err.to_string().contains("profile.json"), "{err}");
    let missing = compile(&SeccompMode::Profile(dir.path().join("nope")), &[]).unwrap_err();
    assert!(matches!(missing, SeccompError::ReadProfile { .. }), "{missing}");
}

#[test]
fn embedded_profile_is_dockers() {
    let profile = parse(DOCKER_DEFAULT_JSON, "test").unwrap();
    assert_eq!(profile.default_errno_ret, Some(1));
    assert_eq!(profile.arch_map[0].architecture, "SCMP_ARCH_X86_64");
    assert!(profile.syscalls.len() > 30);
}

/// The programs with the binary search in front decide every syscall
/// number (and the argument values the conditional rules look at) exactly
/// as seccompiler's linear programs do, for Docker's profile with the
/// default capabilities, with CAP_SYS_ADMIN and with every capability.
#[test]
fn the_search_decides_as_the_linear_program() {
    use super::compile::programs_with;
    let all_caps: Vec<&str> = crate::runtime::caps::ALL.to_vec();
    for extra in [&[][..], &["CAP_SYS_ADMIN"][..], &all_caps[..]] {
        let caps: Vec<String> = DOCKER_CAPS.iter().chain(extra).map(|c| c.to_string()).collect();
        let profile = parse(DOCKER_DEFAULT_JSON, "test").unwrap();
        let kernel = KernelVersion { major: 6, minor: 1 };
        let resolved = resolve::resolve(&profile, &Target::native(&caps, kernel)).unwrap();
        let searched = programs_with(&resolved, true).unwrap();
        let linear = programs_with(&resolved, false).unwrap();
        let size = |p: &[seccompiler::BpfProgram]| p.iter().map(Vec::len).sum::<usize>();
        assert!(
            size(&searched) * 3 < size(&linear),
            "searched {} vs linear {} instructions",
            size(&searched),
            size(&linear)
        );
        let args: [&[u64]; 6] = [
            &[],
            &[libc::AF_VSOCK as u64],
            &[(libc::CLONE_NEWNS | libc::SIGCHLD) as u64],
            &[0x20008],
            &[1],
            &[u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX],
        ];
        let numbers = (-2i64..600).chain([0x4000_0000, 0x4000_0001, 0x4000_0200, i64::from(i32::MAX)]);
        for nr in numbers {
            for a in args {
                let data = SeccompData::x86_64(nr, a);
                assert_eq!(
                    run_all(&searched, &data),
                    run_all(&linear, &data),
                    "nr {nr}, args {a:?}"
                );
            }
        }
        let mut other_arch = SeccompData::x86_64(libc::SYS_read, &[]);
        other_arch.arch = 0x4000_0003;
        assert_eq!(run_all(&searched, &other_arch), KILL_PROCESS);
    }
}
