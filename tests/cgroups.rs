//! The cgroup layer on the real kernel of this host (v1, v2 or hybrid).
//! Needs root; a missing prerequisite fails with a message instead of
//! skipping. Every test uses its own `berth-test-<pid>-<n>` prefix and
//! ends with a residue check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth::runtime::cgroups::devices_bpf;
use berth::runtime::cgroups::resources::cpus_to_quota;
use berth::runtime::cgroups::{
    detect, docker_default_device_rules, leftover_cgroups, Cgroup, CgroupError, DeviceRule, Hierarchy, Resources,
};

const MIB: i64 = 1 << 20;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/cgroups.rs needs root: run `sudo -E cargo test --test cgroups`"
    );
}

/// A fresh prefix, unique to this process and test.
fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    require_root();
    format!(
        "berth-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn assert_no_leftovers(prefix: &str) {
    let left = leftover_cgroups(prefix);
    assert!(left.is_empty(), "cgroup residue: {left:?}");
}

/// A created cgroup that is destroyed even when an assertion fails first,
/// so a failing test leaves no residue for the next run.
struct Guard(Cgroup);

impl Deref for Guard {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

fn create(name: &str, res: &Resources) -> Guard {
    Guard(Cgroup::create(name, res).unwrap_or_else(|e| panic!("creating cgroup {name}: {e}")))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The directory of `cg` that carries `controller` on a v1/hybrid host.
fn v1_dir(cg: &Cgroup, controller: &str) -> PathBuf {
    cg.paths()
        .into_iter()
        .find(|p| {
            let mount = p.ancestors().nth(cg.name().split('/').count()).unwrap();
            let name = mount.file_name().unwrap().to_string_lossy().to_string();
            name.split(',').any(|c| c == controller)
        })
        .unwrap_or_else(|| panic!("no {controller} hierarchy in {:?}", cg.paths()))
}

/// A shell that first joins `cg` (writing its own pid into every procs
/// file), then runs `script`.
fn sh_in(cg: &Cgroup, script: &str) -> Command {
    let joins: String = cg
        .procs_files()
        .iter()
        .map(|f| format!("echo $$ > {} || exit 90; ", f.display()))
        .collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("{joins}{script}"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run_in(cg: &Cgroup, script: &str) -> Output {
    sh_in(cg, script).output().expect("spawning sh")
}

fn sleeper() -> Child {
    Command::new("sleep").arg("300").spawn().expect("spawning sleep")
}

fn docker_like() -> Resources {
    let (quota, period) = cpus_to_quota(0.5).unwrap();
    Resources {
        memory: Some(64 * MIB),
        cpu_quota: Some(quota),
        cpu_period: Some(period),
        cpu_shares: Some(512),
        pids_limit: Some(20),
        cpuset_cpus: Some("0".into()),
        devices: docker_default_device_rules(),
        ..Resources::default()
    }
}

#[test]
fn limits_land_in_this_hosts_files_and_destroy_leaves_nothing() {
    let p = prefix();
    let name = format!("{p}/ctr");
    let cg = create(&name, &docker_like());
    assert_eq!(cg.hierarchy(), detect());
    match detect() {
        Hierarchy::V1 | Hierarchy::Hybrid => {
            let mem = v1_dir(&cg, "memory");
            assert_eq!(read(mem.join("memory.limit_in_bytes")), (64 * MIB).to_string());
            let cpu = v1_dir(&cg, "cpu");
            assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(cpu.join("cpu.shares")), "512");
            assert_eq!(read(v1_dir(&cg, "pids").join("pids.max")), "20");
            let cpuset = v1_dir(&cg, "cpuset");
            assert_eq!(read(cpuset.join("cpuset.cpus")), "0");
            assert!(!read(cpuset.join("cpuset.mems")).is_empty(), "mems inherited");
            // The project-level parent got the host's cpus, or nothing could join.
            assert!(!read(cpuset.parent().unwrap().join("cpuset.cpus")).is_empty());
            let list = read(v1_dir(&cg, "devices").join("devices.list"));
            assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
            assert!(!list.lines().any(|l| l.starts_with("a ")), "deny-all missing: {list}");
            assert!(!list.lines().any(|l| l.starts_with("c 10:229")), "{list}");
        }
        Hierarchy::V2 => {
            let dir = &cg.paths()[0];
            assert_eq!(read(dir.join("memory.max")), (64 * MIB).to_string());
            assert_eq!(read(dir.join("cpu.max")), "50000 100000");
            assert_eq!(read(dir.join("cpu.weight")), "20");
            assert_eq!(read(dir.join("pids.max")), "20");
            assert_eq!(read(dir.join("cpuset.cpus")), "0");
        }
    }

    let mut child = sleeper();
    let pid = child.id() as i32;
    cg.add_task(pid).unwrap();
    assert!(cg.pids().unwrap().contains(&pid));
    if detect() == Hierarchy::Hybrid {
        // The plain v2 tracking directory holds it too.
        let own = read(format!("/proc/{pid}/cgroup"));
        assert!(own.lines().any(|l| l == format!("0::/{name}")), "{own}");
    }
    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory_limit, Some(64 * MIB as u64));
    assert!(stats.pids_current >= 1);

    // Reopened after an "engine restart", the handle sees the same cgroup.
    let again = Cgroup::open(&name).unwrap();
    assert_eq!(again.pids().unwrap(), cg.pids().unwrap());
    assert_eq!(again.paths(), cg.paths());

    // Destroy with the sleeper still alive inside.
    cg.destroy().unwrap();
    assert!(child.wait().unwrap().code().is_none(), "sleep was not killed");
    assert_no_leftovers(&p);
    cg.destroy().expect("destroy is idempotent");
    assert!(matches!(Cgroup::open(&name), Err(CgroupError::NotFound { .. })));
}

#[test]
fn freeze_waits_for_frozen_and_thaw_resumes() {
    let p = prefix();
    let cg = create(&format!("{p}/ctr"), &Resources::default());
    let mut child = sleeper();
    cg.add_task(child.id() as i32).unwrap();

    cg.freeze().unwrap();
    match detect() {
        Hierarchy::V1 | Hierarchy::Hybrid => {
            assert_eq!(read(v1_dir(&cg, "freezer").join("freezer.state")), "FROZEN");
        }
        Hierarchy::V2 => {
            let events = read(cg.paths()[0].join("cgroup.events"));
            assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
        }
    }
    cg.thaw().unwrap();
    if detect() != Hierarchy::V2 {
        assert_eq!(read(v1_dir(&cg, "freezer").join("freezer.state")), "THAWED");
    }

    // Destroying a frozen cgroup thaws it so SIGKILL can land.
    cg.freeze().unwrap();
    cg.destroy().unwrap();
    assert!(child.wait().unwrap().code().is_none());
    assert_no_leftovers(&p);
}

#[test]
fn memory_limit_triggers_the_oom_killer_and_is_reported() {
    let p = prefix();
    let res = Resources {
        memory: Some(16 * MIB),
        // No swap either, so the hog cannot page out instead of dying.
        memory_swap: Some(16 * MIB),
        devices: docker_default_device_rules(),
        ..Resources::default()
    };
    let cg = create(&format!("{p}/ctr"), &res);
    assert!(!cg.oom_killed());
    // `tail` buffers an endless line of NULs until it is killed.
    let out = run_in(&cg, "exec tail /dev/zero");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "not OOM-killed: {out:?}");
    assert!(cg.oom_killed(), "oom_kill counter not raised");
    cg.destroy().unwrap();
    assert_no_leftovers(&p);
}

#[test]
fn pids_limit_makes_fork_fail() {
    let p = prefix();
    let res = Resources {
        pids_limit: Some(10),
        devices: docker_default_device_rules(),
        ..Resources::default()
    };
    let cg = create(&format!("{p}/ctr"), &res);
    let out = run_in(&cg, "for i in $(seq 1 50); do sleep 30 >/dev/null 2>&1 & done; wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "all 50 forks succeeded under pids.max=10");
    assert!(stderr.to_lowercase().contains("fork"), "no fork failure: {stderr}");
    // The sleeps that did start are still inside (the shell gave up at the
    // first failed fork); destroy must kill them.
    let left = cg.pids().unwrap();
    assert!(!left.is_empty() && left.len() <= 10, "{left:?} {out:?}");
    cg.destroy().unwrap();
    assert_no_leftovers(&p);
}

#[test]
fn unlisted_devices_are_denied() {
    let p = prefix();
    // Docker's list without /dev/zero (c 1:5).
    let devices = docker_default_device_rules()
        .into_iter()
        .filter(|r| !(r.major == Some(1) && r.minor == Some(5)))
        .collect();
    let res = Resources {
        devices,
        ..Resources::default()
    };
    let cg = create(&format!("{p}/ctr"), &res);
    let out = run_in(&cg, "cat /dev/null || exit 3; head -c1 /dev/zero && exit 4; exit 0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    cg.destroy().unwrap();
    assert_no_leftovers(&p);
}

/// The cgroup2 mount of this host: `/sys/fs/cgroup/unified` on hybrid.
fn cgroup2_root() -> PathBuf {
    match detect() {
        Hierarchy::V2 => PathBuf::from("/sys/fs/cgroup"),
        Hierarchy::Hybrid => PathBuf::from("/sys/fs/cgroup/unified"),
        Hierarchy::V1 => panic!(
            "no cgroup2 hierarchy is mounted: the eBPF device test needs \
             `mount -t cgroup2 none /sys/fs/cgroup/unified`"
        ),
    }
}

#[test]
fn bpf_device_program_is_enforced_on_a_cgroup2_directory() {
    let p = prefix();
    let dir = cgroup2_root().join(&p);
    fs::create_dir(&dir).unwrap();
    let rules = [DeviceRule::allow('c', Some(1), Some(3), "rwm")];
    let attached = devices_bpf::apply(&rules, &dir);
    let out = attached.as_ref().ok().map(|()| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs || exit 90; \
                 cat /dev/null || exit 3; head -c1 /dev/zero && exit 4; exit 0",
                dir.display()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    // The shell has exited, so the directory can go before any assert.
    let removed = fs::remove_dir(&dir);
    attached.unwrap();
    removed.unwrap();
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert_no_leftovers(&p);
}

#[test]
fn a_rejected_value_rolls_back_and_names_file_and_value() {
    let p = prefix();
    let res = Resources {
        cpuset_cpus: Some("999".into()),
        ..Resources::default()
    };
    let err = Cgroup::create(&format!("{p}/ctr"), &res).unwrap_err().to_string();
    assert!(err.contains("\"999\"") && err.contains("cpuset.cpus"), "{err}");
    assert!(err.contains(&p), "error lacks the directory: {err}");
    assert_no_leftovers(&p);

    // Invalid values are refused before anything is created.
    let bad = Resources {
        memory: Some(64 * MIB),
        memory_swap: Some(32 * MIB),
        ..Resources::default()
    };
    assert!(matches!(
        Cgroup::create(&format!("{p}/ctr"), &bad),
        Err(CgroupError::Resources(_))
    ));
    assert_no_leftovers(&p);
}

#[test]
fn update_changes_limits_of_a_live_cgroup() {
    let p = prefix();
    let cg = create(&format!("{p}/ctr"), &docker_like());
    let res = Resources {
        memory: Some(128 * MIB),
        memory_swap: Some(256 * MIB),
        pids_limit: Some(0),
        ..Resources::default()
    };
    cg.update(&res).unwrap();
    match detect() {
        Hierarchy::V1 | Hierarchy::Hybrid => {
            let mem = v1_dir(&cg, "memory");
            assert_eq!(read(mem.join("memory.limit_in_bytes")), (128 * MIB).to_string());
            let memsw = mem.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                assert!(!cg.swap_limit_ignored());
                assert_eq!(read(memsw), (256 * MIB).to_string());
                // Shrinking below the old memsw needs memory written first.
                let smaller = Resources {
                    memory: Some(32 * MIB),
                    memory_swap: Some(48 * MIB),
                    ..Resources::default()
                };
                cg.update(&smaller).unwrap();
                assert_eq!(read(mem.join("memory.limit_in_bytes")), (32 * MIB).to_string());
            } else {
                assert!(cg.swap_limit_ignored());
            }
            assert_eq!(read(v1_dir(&cg, "pids").join("pids.max")), "max");
        }
        Hierarchy::V2 => {
            let dir = &cg.paths()[0];
            assert_eq!(read(dir.join("memory.max")), (128 * MIB).to_string());
            if dir.join("memory.swap.max").exists() {
                assert_eq!(read(dir.join("memory.swap.max")), (128 * MIB).to_string());
            }
            assert_eq!(read(dir.join("pids.max")), "max");
        }
    }
    cg.destroy().unwrap();
    assert_no_leftovers(&p);
}

#[test]
fn siblings_share_the_project_directory_until_the_last_goes() {
    let p = prefix();
    let a = create(&format!("{p}/a"), &Resources::default());
    let b = create(&format!("{p}/b"), &Resources::default());
    a.destroy().unwrap();
    assert!(b.paths().iter().all(|d| d.is_dir()), "sibling lost its cgroup");
    assert!(!leftover_cgroups(&p).is_empty());
    b.destroy().unwrap();
    assert_no_leftovers(&p);
}
