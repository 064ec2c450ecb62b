//! Devices beyond paths, on the real kernel: a fake CDI vendor and a fake
//! NVIDIA driver under `BERTH_DEVICE_ROOT`, their nodes, mounts, env,
//! device cgroup rules and OCI hooks, and GPU requests on this GPU-less
//! host. Real device nodes are made with mknod; the "vendor" node is
//! /dev/null's 1:3 so the container can write to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{stderr, stdout, Engine};

/// `berth --root ROOT ARGS…` with discovery under `device_root`.
fn berth_at(e: &Engine, device_root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(e.root.path())
        .args(args)
        .env("BERTH_DEVICE_ROOT", device_root)
        .output()
        .unwrap()
}

fn ok_at(e: &Engine, device_root: &Path, args: &[&str]) -> String {
    let out = berth_at(e, device_root, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn mknod(path: &Path, major: u64, minor: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn script(path: &Path, body: &str) {
    write(path, &format!("#!/bin/sh\n{body}"));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn temp_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-devroot-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// A field of the state JSON a hook gets on stdin (`$state`).
const STATE_FIELDS: &str = r#"field() { printf '%s' "$state" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
state=$(cat)
"#;

/// A vendor with three devices: `foo` (node 1:3, a read-only file, env),
/// `bar` (a node not in docker's default allow-list: 1:11, kmsg) and
/// `hooked` (a hook at each stage, writing what it saw), plus `broken`,
/// whose createContainer hook fails.
struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Vendor {
        let dir = temp_root();
        let root = dir.path();
        mknod(&root.join("dev/vendor-foo"), 1, 3);
        write(&root.join("share/data.txt"), "vendor data\n");
        let out = root.join("out");
        fs::create_dir_all(&out).unwrap();
        script(
            &root.join("hooks/create-container.sh"),
            &format!(
                r#"{STATE_FIELDS}
bundle=$(field bundle)
rootfs=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$bundle/config.json" | head -n 1)
echo "status=$(field status) pid=$(field pid) arg=$1 env=$HOOK_ENV home=${{HOME:-none}}" > "$rootfs/hook-was-here"
"#
            ),
        );
        script(
            &root.join("hooks/record.sh"),
            &format!(
                "{STATE_FIELDS}\necho \"status=$(field status) pid=$(field pid) id=$(field id)\" > {}/$1\n",
                out.display()
            ),
        );
        script(&root.join("hooks/broken.sh"), "echo boom >&2\nexit 7\n");
        let hook = |stage: &str, name: &str, args: &str| {
            format!(
                "{{hookName: {stage}, path: {}, args: [{name}{args}], env: [HOOK_ENV=yes]}}",
                root.join("hooks").join(name).display()
            )
        };
        let spec = format!(
            "cdiVersion: 0.6.0
kind: vendor.com/device
devices:
  - name: foo
    containerEdits:
      deviceNodes: [{{path: /dev/vendor-foo}}]
      env: [VENDOR_FOO=on]
      mounts:
        - {{hostPath: {data}, containerPath: /opt/vendor/data.txt, options: [ro, nosuid, nodev, bind]}}
  - name: bar
    containerEdits:
      deviceNodes: [{{path: /dev/vendor-bar, type: c, major: 1, minor: 11, permissions: rw}}]
  - name: hooked
    containerEdits:
      hooks:
        - {create_container}
        - {create_runtime}
        - {poststart}
        - {poststop}
        - {{hookName: startContainer, path: /bin/sh, args: [sh, -c, 'read -r line; echo \"$line\" > /start-state']}}
  - name: broken
    containerEdits:
      hooks: [{broken}]
",
            data = root.join("share/data.txt").display(),
            create_container = hook("createContainer", "create-container.sh", ", setup"),
            create_runtime = hook("createRuntime", "record.sh", ", createRuntime"),
            poststart = hook("poststart", "record.sh", ", poststart"),
            poststop = hook("poststop", "record.sh", ", poststop"),
            broken = hook("createContainer", "broken.sh", ""),
        );
        write(&root.join("etc/cdi/vendor.yaml"), &spec);
        Vendor { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self, name: &str) -> String {
        fs::read_to_string(self.root().join("out").join(name)).unwrap_or_default()
    }
}

/// The container's v1 devices cgroup directory, from its pid.
fn devices_cgroup(pid: &str) -> Option<PathBuf> {
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "devices").then(|| path.to_owned())
    })?;
    Some(PathBuf::from("/sys/fs/cgroup/devices").join(path.trim_start_matches('/')))
}

fn inspect(e: &Engine, name: &str) -> serde_json::Value {
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", name])).unwrap();
    inspect[0].clone()
}

fn inspect_pid(e: &Engine, name: &str) -> String {
    inspect(e, name)["State"]["Pid"].to_string()
}

/// Waits a little for a file a hook writes after the verb returned.
fn eventually(read: impl Fn() -> String) -> String {
    for _ in 0..100 {
        let text = read();
        if !text.is_empty() {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    read()
}

#[test]
fn a_cdi_device_brings_its_node_mount_and_env() {
    let e = Engine::new();
    let vendor = Vendor::new();
    let out = ok_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "--rm",
            "--device",
            "vendor.com/device=foo",
            "busybox",
            "sh",
            "-c",
            "ls -l /dev/vendor-foo | awk '{print $1, $5, $6}'; \
             echo hello > /dev/vendor-foo && echo wrote; \
             echo env=$VENDOR_FOO; cat /opt/vendor/data.txt; \
             (echo x >> /opt/vendor/data.txt) 2>/dev/null && echo mount=rw || echo mount=ro; \
             grep ' /opt/vendor/data.txt ' /proc/self/mounts | grep -o 'nosuid,nodev'",
        ],
    );
    assert_eq!(
        out,
        "crw-rw-rw- 1, 3\nwrote\nenv=on\nvendor data\nmount=ro\nnosuid,nodev\n"
    );
    // Paths and CDI names mix on one command line.
    let out = ok_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "--rm",
            "--device",
            "/dev/zero:/dev/myzero",
            "--device",
            "vendor.com/device=foo",
            "busybox",
            "sh",
            "-c",
            "head -c 2 /dev/myzero | wc -c; test -c /dev/vendor-foo && echo both",
        ],
    );
    assert_eq!(out, "2\nboth\n");
    // An unknown CDI device fails before anything exists.
    let out = berth_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "--rm",
            "--device",
            "vendor.com/device=nope",
            "busybox",
            "true",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("vendor.com/device=nope"), "{}", stderr(&out));
    e.assert_no_residue();
}

#[test]
fn the_device_cgroup_admits_requested_nodes_only() {
    let e = Engine::new();
    let vendor = Vendor::new();
    ok_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "-d",
            "--name",
            "with-bar",
            "--device",
            "vendor.com/device=bar",
            "busybox",
            "sleep",
            "60",
        ],
    );
    e.ok(&["container", "run", "-d", "--name", "without", "busybox", "sleep", "60"]);
    let with = devices_cgroup(&inspect_pid(&e, "with-bar"));
    let without = devices_cgroup(&inspect_pid(&e, "without"));
    let node = e.ok(&[
        "container",
        "exec",
        "with-bar",
        "sh",
        "-c",
        "ls -l /dev/vendor-bar | awk '{print $1, $5, $6}'",
    ]);
    assert_eq!(node, "crw-rw-rw- 1, 11\n");
    match (with, without) {
        (Some(with), Some(without)) if with.join("devices.list").exists() => {
            let with = fs::read_to_string(with.join("devices.list")).unwrap();
            let without = fs::read_to_string(without.join("devices.list")).unwrap();
            assert!(with.lines().any(|l| l == "c 1:11 rw"), "{with}");
            assert!(!without.lines().any(|l| l.starts_with("c 1:11")), "{without}");
            assert!(with.lines().any(|l| l == "c 1:3 rwm"), "{with}");
        }
        // A v2 host: the eBPF filter has no file to read; the node's
        // presence above is what can be checked.
        _ => eprintln!("no v1 devices hierarchy: devices.list not checked"),
    }
    // Without the request, the same node made by hand is refused.
    let denied = e.ok(&[
        "container",
        "exec",
        "without",
        "sh",
        "-c",
        "mknod /tmp/kmsg c 1 11 && (echo x > /tmp/kmsg) 2>&1 | grep -q 'not permitted' && echo denied",
    ]);
    assert_eq!(denied, "denied\n");
    e.ok(&["container", "rm", "-f", "with-bar", "without"]);
    e.assert_no_residue();
}

#[test]
fn hooks_run_at_their_stages_with_the_oci_state() {
    let e = Engine::new();
    let vendor = Vendor::new();
    ok_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "-d",
            "--name",
            "hooked",
            "--device",
            "vendor.com/device=hooked",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let pid = inspect_pid(&e, "hooked");
    let seen = e.ok(&["container", "exec", "hooked", "cat", "/hook-was-here"]);
    // The createContainer hook ran with the state on stdin, found the
    // rootfs through the bundle, got its args and only its env.
    assert_eq!(seen, format!("status=creating pid={pid} arg=setup env=yes home=none\n"));
    let id = inspect(&e, "hooked")["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        vendor.out("createRuntime"),
        format!("status=creating pid={pid} id={id}\n")
    );
    // startContainer ran inside the container (its /bin/sh), poststart on
    // the host before `run -d` returned.
    let start_state = e.ok(&["container", "exec", "hooked", "cat", "/start-state"]);
    assert!(
        start_state.contains(&format!("\"status\":\"created\",\"pid\":{pid},")),
        "{start_state}"
    );
    assert_eq!(vendor.out("poststart"), format!("status=running pid={pid} id={id}\n"));
    assert_eq!(vendor.out("poststop"), "");
    e.ok(&["container", "stop", "-t", "1", "hooked"]);
    // Poststop runs once the monitor has recorded the exit.
    assert_eq!(
        eventually(|| vendor.out("poststop")),
        format!("status=stopped pid= id={id}\n")
    );
    e.ok(&["container", "rm", "hooked"]);
    e.assert_no_residue();
}

#[test]
fn a_failing_hook_fails_the_start_and_leaves_nothing() {
    let e = Engine::new();
    let vendor = Vendor::new();
    let out = berth_at(
        &e,
        vendor.root(),
        &[
            "container",
            "run",
            "--rm",
            "--device",
            "vendor.com/device=broken",
            "busybox",
            "true",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let hook = vendor.root().join("hooks/broken.sh");
    let expected = format!("createContainer hook {} failed (exit status 7): boom", hook.display());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    e.assert_no_residue();
    // create + start: the container stays "created" with the reason.
    ok_at(
        &e,
        vendor.root(),
        &[
            "container",
            "create",
            "--name",
            "broken",
            "--device",
            "vendor.com/device=broken",
            "busybox",
            "true",
        ],
    );
    let out = e.berth(&["container", "start", "broken"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["container", "inspect", "broken"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "created");
    assert!(inspect[0]["State"]["Error"].as_str().unwrap().contains("exit status 7"));
    e.ok(&["container", "rm", "broken"]);
    e.assert_no_residue();
}

#[test]
fn gpus_on_a_host_without_one_fail_clearly() {
    let e = Engine::new();
    let empty = temp_root();
    let host_has_gpu = Path::new("/dev/nvidiactl").exists();
    let mut roots: Vec<Option<&Path>> = vec![Some(empty.path())];
    if !host_has_gpu {
        roots.push(None);
    }
    for root in roots {
        for gpus in ["all", "1", "device=0"] {
            let args = ["container", "run", "--rm", "--gpus", gpus, "busybox", "true"];
            let out = match root {
                Some(root) => berth_at(&e, root, &args),
                None => e.berth(&args),
            };
            assert_ne!(out.status.code(), Some(0), "--gpus {gpus} must fail");
            assert!(
                stderr(&out).contains("requests a GPU, but this host has none"),
                "--gpus {gpus}: {}",
                stderr(&out)
            );
            assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
            e.assert_no_residue();
        }
    }
    let out = berth_at(
        &e,
        empty.path(),
        &["container", "run", "--rm", "--gpus", "lots", "busybox", "true"],
    );
    assert!(stderr(&out).contains("invalid --gpus \"lots\""), "{}", stderr(&out));
    e.assert_no_residue();
}

/// A driver without a CDI spec: two GPU nodes, the control node and the
/// /proc information that names them (nvidia/tests.rs builds the same
/// tree with plain files).
fn fake_nvidia() -> tempfile::TempDir {
    let dir = temp_root();
    let root = dir.path();
    for (name, minor) in [("nvidia0", 0), ("nvidia1", 1), ("nvidiactl", 255)] {
        mknod(&root.join("dev").join(name), 195, minor);
    }
    for (bus, minor, uuid) in [
        ("0000:01:00.0", 0, "GPU-0a0a0a0a-1111-2222-3333-444455556666"),
        ("0000:41:00.0", 1, "GPU-1b1b1b1b-1111-2222-3333-444455556666"),
    ] {
        write(
            &root.join(format!("proc/driver/nvidia/gpus/{bus}/information")),
            &format!("Model: \t\t NVIDIA H200\nGPU UUID: \t {uuid}\nDevice Minor: \t {minor}\n"),
        );
    }
    dir
}

#[test]
fn a_fake_nvidia_driver_gives_the_container_its_nodes() {
    let e = Engine::new();
    let nvidia = fake_nvidia();
    let show = "ls -l /dev | grep nvidia | awk '{print $NF, $5, $6}'; echo visible=$NVIDIA_VISIBLE_DEVICES caps=$NVIDIA_DRIVER_CAPABILITIES";
    let all = ok_at(
        &e,
        nvidia.path(),
        &["container", "run", "--rm", "--gpus", "all", "busybox", "sh", "-c", show],
    );
    assert_eq!(
        all,
        "nvidia0 195, 0\nnvidia1 195, 1\nnvidiactl 195, 255\nvisible=all caps=compute,utility\n"
    );
    let one = ok_at(
        &e,
        nvidia.path(),
        &[
            "container",
            "run",
            "--rm",
            "--gpus",
            "device=1",
            "busybox",
            "sh",
            "-c",
            show,
        ],
    );
    assert_eq!(
        one,
        "nvidia1 195, 1\nnvidiactl 195, 255\nvisible=1 caps=compute,utility\n"
    );
    let by_uuid = ok_at(
        &e,
        nvidia.path(),
        &[
            "container",
            "run",
            "--rm",
            "--device",
            "nvidia.com/gpu=0",
            "busybox",
            "sh",
            "-c",
            "ls /dev | grep nvidia",
        ],
    );
    assert_eq!(by_uuid, "nvidia0\nnvidiactl\n");
    let out = berth_at(
        &e,
        nvidia.path(),
        &["container", "run", "--rm", "--gpus", "3", "busybox", "true"],
    );
    assert!(
        stderr(&out).contains("3 GPUs requested, but this host has 2"),
        "{}",
        stderr(&out)
    );
    e.assert_no_residue();
}
