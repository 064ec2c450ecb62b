//! NVIDIA discovery on fake trees: plain files stand in for device nodes
//! and [`fake_stat`] gives them the numbers a real host would.

use std::fs;
use std::os::unix::fs::symlink;

use super::*;
use crate::devices::{under_root, NodeInfo};

const VERSION: &str = "550.54.15";
const UUID0: &str = "GPU-0a0a0a0a-1111-2222-3333-444455556666";
const UUID1: &str = "GPU-1b1b1b1b-1111-2222-3333-444455556666";

/// Numbers by name, for files that exist: 195:N for GPUs, 195:255/254 for
/// ctl/modeset, a dynamic 508 for uvm and 511 for MIG caps.
fn fake_stat(path: &Path) -> Option<NodeInfo> {
    if !path.is_file() {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let (major, minor) = match name {
        "nvidiactl" => (195, 255),
        "nvidia-modeset" => (195, 254),
        "nvidia-uvm" => (508, 0),
        "nvidia-uvm-tools" => (508, 1),
        _ => match (name.strip_prefix("nvidia-cap"), name.strip_prefix("nvidia")) {
            (Some(n), _) => (511, n.parse().ok()?),
            (None, Some(n)) => (195, n.parse().ok()?),
            _ => return None,
        },
    };
    Some(NodeInfo {
        kind: 'c',
        major,
        minor,
    })
}

fn touch(root: &Path, path: &str) {
    write(root, path, "");
}

fn write(root: &Path, path: &str, text: &str) {
    let path = under_root(root, path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn link(root: &Path, path: &str, target: &str) {
    symlink(target, under_root(root, path)).unwrap();
}

fn information(minor: u64, uuid: &str) -> String {
    format!("Model: \t\t NVIDIA H200\nGPU UUID: \t {uuid}\nBus Type: \t PCIe\nDevice Minor: \t {minor}\nGPU Excluded:\t No\n")
}

/// Two GPUs with their nodes, /proc information and a driver install.
fn fake_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for node in [
        "nvidia0",
        "nvidia1",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
        "nvidia-caps/nvidia-cap1",
        "nvidia-caps/nvidia-cap2",
        "null",
    ] {
        touch(root, &format!("/dev/{node}"));
    }
    write(
        root,
        "/proc/driver/nvidia/gpus/0000:01:00.0/information",
        &information(0, UUID0),
    );
    write(
        root,
        "/proc/driver/nvidia/gpus/0000:41:00.0/information",
        &information(1, UUID1),
    );
    write(
        root,
        "/proc/driver/nvidia/version",
        &format!("NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.3.0\n"),
    );
    let lib = "/usr/lib/x86_64-linux-gnu";
    for stem in [
        "libcuda",
        "libnvidia-ml",
        "libnvidia-ptxjitcompiler",
        "libnvidia-nvvm",
        "libnvidia-encode",
    ] {
        touch(root, &format!("{lib}/{stem}.so.{VERSION}"));
    }
    link(root, &format!("{lib}/libcuda.so.1"), &format!("libcuda.so.{VERSION}"));
    link(root, &format!("{lib}/libcuda.so"), "libcuda.so.1");
    link(
        root,
        &format!("{lib}/libnvidia-ml.so.1"),
        &format!("{lib}/libnvidia-ml.so.{VERSION}"),
    );
    link(
        root,
        &format!("{lib}/libnvidia-nvvm.so.4"),
        &format!("libnvidia-nvvm.so.{VERSION}"),
    );
    // A stale library of an older driver and an unrelated one.
    touch(root, &format!("{lib}/libcuda.so.535.104.05"));
    touch(root, &format!("{lib}/libfoo.so.1"));
    write(
        root,
        "/etc/ld.so.conf.d/nvidia.conf",
        "# driver\n/opt/nvidia/lib\ninclude /etc/other/*.conf\n",
    );
    touch(root, &format!("/opt/nvidia/lib/libnvidia-cfg.so.{VERSION}"));
    for bin in ["nvidia-smi", "nvidia-debugdump", "nvidia-cuda-mps-control"] {
        touch(root, &format!("/usr/bin/{bin}"));
    }
    touch(root, "/var/run/nvidia-persistenced/socket");
    touch(root, &format!("/lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin"));
    dir
}

fn host(root: &Path) -> NvidiaHost {
    NvidiaHost::discover(root, &fake_stat).unwrap().unwrap()
}

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| (*c).to_owned()).collect()
}

fn env<'a>(applied: &'a Applied, name: &str) -> Option<&'a str> {
    applied.env.iter().find_map(|e| e.strip_prefix(&format!("{name}=")))
}

fn node_paths(applied: &Applied) -> Vec<&str> {
    applied.devices.iter().map(|d| d.path.as_str()).collect()
}

fn mount_paths(applied: &Applied) -> Vec<&str> {
    applied.mounts.iter().map(|m| m.host_path.as_str()).collect()
}

#[test]
fn discovers_gpus_nodes_and_driver() {
    let dir = fake_host();
    let host = host(dir.path());
    assert_eq!(host.gpus.len(), 2);
    assert_eq!((host.gpus[0].index, host.gpus[0].minor), (0, 0));
    assert_eq!(host.gpus[0].uuid.as_deref(), Some(UUID0));
    assert_eq!(host.gpus[1].bus_id.as_deref(), Some("0000:41:00.0"));
    assert_eq!((host.gpus[1].node.major, host.gpus[1].node.minor), (195, 1));
    let control: Vec<(&str, u64, u64)> = host
        .control_nodes
        .iter()
        .map(|n| (n.path.as_str(), n.major, n.minor))
        .collect();
    assert_eq!(
        control,
        [
            ("/dev/nvidiactl", 195, 255),
            ("/dev/nvidia-uvm", 508, 0),
            ("/dev/nvidia-uvm-tools", 508, 1),
            ("/dev/nvidia-modeset", 195, 254)
        ]
    );
    assert_eq!(host.mig_caps.len(), 2);
    assert_eq!(host.driver_version.as_deref(), Some(VERSION));
}

#[test]
fn count_one_takes_the_first_gpu_and_the_control_nodes() {
    let dir = fake_host();
    let applied = host(dir.path())
        .edits(&GpuSelection::Count(1), &caps(&["gpu"]))
        .unwrap();
    assert_eq!(
        node_paths(&applied),
        [
            "/dev/nvidia0",
            "/dev/nvidiactl",
            "/dev/nvidia-uvm",
            "/dev/nvidia-uvm-tools",
            "/dev/nvidia-modeset"
        ]
    );
    assert!(applied
        .devices
        .iter()
        .all(|d| d.kind == 'c' && d.access == "rwm" && d.mode == 0o666));
    assert_eq!(env(&applied, "NVIDIA_VISIBLE_DEVICES"), Some("0"));
    assert_eq!(env(&applied, "NVIDIA_DRIVER_CAPABILITIES"), Some("compute,utility"));
}

#[test]
fn count_all_takes_every_gpu() {
    let dir = fake_host();
    let selection = GpuSelection::from_request(Some(DeviceCount::All), &[]).unwrap();
    let applied = host(dir.path()).edits(&selection, &caps(&["gpu"])).unwrap();
    assert_eq!(&node_paths(&applied)[..2], ["/dev/nvidia0", "/dev/nvidia1"]);
    assert_eq!(env(&applied, "NVIDIA_VISIBLE_DEVICES"), Some("all"));
    // No count and no ids also means all.
    assert_eq!(GpuSelection::from_request(None, &[]).unwrap(), GpuSelection::All);
}

#[test]
fn device_ids_by_index_uuid_and_bus_id() {
    let dir = fake_host();
    let host = host(dir.path());
    let pick = |ids: &[&str]| {
        let selection = GpuSelection::from_request(None, &caps(ids)).unwrap();
        host.select(&selection)
            .unwrap()
            .iter()
            .map(|g| g.minor)
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&["1"]), [1]);
    assert_eq!(pick(&[UUID1]), [1]);
    assert_eq!(pick(&[&UUID0.to_lowercase().replace("gpu-", "GPU-")]), [0]);
    assert_eq!(pick(&["0000:41:00.0", "1", "0"]), [1, 0]);
    let applied = host.edits(&GpuSelection::Ids(caps(&[UUID1])), &caps(&["gpu"])).unwrap();
    assert_eq!(node_paths(&applied)[0], "/dev/nvidia1");
    assert_eq!(env(&applied, "NVIDIA_VISIBLE_DEVICES"), Some(UUID1));
}

#[test]
fn selection_errors() {
    let err = GpuSelection::from_request(Some(DeviceCount::Count(1)), &caps(&["0"])).unwrap_err();
    assert!(matches!(err, NvidiaError::CountAndIds), "{err}");
    let dir = fake_host();
    let host = host(dir.path());
    let err = host.select(&GpuSelection::Count(3)).unwrap_err().to_string();
    assert_eq!(err, "3 GPUs requested, but this host has 2");
    let err = host
        .select(&GpuSelection::Ids(caps(&["GPU-nope"])))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"GPU-nope\"") && err.contains(&format!("0 ({UUID0}), 1 ({UUID1})")),
        "{err}"
    );
    let err = host.select(&GpuSelection::Ids(caps(&["7"]))).unwrap_err().to_string();
    assert!(err.contains("no such GPU"), "{err}");
    let err = host.select(&GpuSelection::Ids(caps(&["0:1"]))).unwrap_err().to_string();
    assert!(err.contains("MIG"), "{err}");
}

#[test]
fn libraries_binaries_and_extras_are_mounted_read_only() {
    let dir = fake_host();
    let applied = host(dir.path()).edits(&GpuSelection::All, &caps(&["gpu"])).unwrap();
    let lib = "/usr/lib/x86_64-linux-gnu";
    let expected = [
        format!("/opt/nvidia/lib/libnvidia-cfg.so.{VERSION}"),
        format!("{lib}/libcuda.so.1"),
        format!("{lib}/libcuda.so.{VERSION}"),
        format!("{lib}/libnvidia-ml.so.1"),
        format!("{lib}/libnvidia-ml.so.{VERSION}"),
        format!("{lib}/libnvidia-nvvm.so.4"),
        format!("{lib}/libnvidia-nvvm.so.{VERSION}"),
        format!("{lib}/libnvidia-ptxjitcompiler.so.{VERSION}"),
        "/usr/bin/nvidia-cuda-mps-control".into(),
        "/usr/bin/nvidia-debugdump".into(),
        "/usr/bin/nvidia-smi".into(),
        "/var/run/nvidia-persistenced/socket".into(),
        format!("/lib/firmware/nvidia/{VERSION}"),
    ];
    let mut mounted = mount_paths(&applied);
    mounted.sort();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(mounted, expected);
    for m in &applied.mounts {
        assert_eq!(m.container_path, m.host_path);
        assert_eq!(m.options, ["ro", "nosuid", "nodev", "rbind", "rprivate"]);
    }
    // Without nvidia-cdi-hook on the host, no hook.
    assert!(applied.hooks.is_empty());
}

#[test]
fn capabilities_choose_libraries_and_env() {
    let dir = fake_host();
    let host = host(dir.path());
    let edits = |list: &[&str]| host.edits(&GpuSelection::Count(1), &caps(list)).unwrap();
    let video = edits(&["gpu", "compute", "video"]);
    assert_eq!(env(&video, "NVIDIA_DRIVER_CAPABILITIES"), Some("compute,video"));
    assert!(mount_paths(&video).iter().any(|p| p.contains("libnvidia-encode")));
    assert!(!mount_paths(&video).iter().any(|p| p.contains("nvidia-smi")));
    let utility = edits(&["utility"]);
    assert!(!mount_paths(&utility).iter().any(|p| p.contains("libcuda")));
    assert!(mount_paths(&utility).iter().any(|p| p.ends_with("nvidia-smi")));
    let all = edits(&["gpu", "all"]);
    assert_eq!(env(&all, "NVIDIA_DRIVER_CAPABILITIES"), Some("all"));
    assert!(mount_paths(&all).iter().any(|p| p.contains("libnvidia-encode")));
    let err = host
        .edits(&GpuSelection::All, &caps(&["gpu", "tpu"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown GPU capability \"tpu\""), "{err}");
}

#[test]
fn ldcache_hook_when_the_host_has_nvidia_cdi_hook() {
    let dir = fake_host();
    touch(dir.path(), "/usr/bin/nvidia-cdi-hook");
    let applied = host(dir.path()).edits(&GpuSelection::All, &caps(&["gpu"])).unwrap();
    let hook = &applied.hooks[0];
    assert_eq!(hook.stage, HookStage::CreateContainer);
    assert_eq!(
        hook.args,
        [
            "nvidia-cdi-hook",
            "update-ldcache",
            "--folder",
            "/opt/nvidia/lib",
            "--folder",
            "/usr/lib/x86_64-linux-gnu"
        ]
    );
}

#[test]
fn indices_follow_pci_bus_order_not_minors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "/dev/nvidia0");
    touch(root, "/dev/nvidia1");
    touch(root, "/dev/nvidiactl");
    write(
        root,
        "/proc/driver/nvidia/gpus/0000:01:00.0/information",
        &information(1, UUID1),
    );
    write(
        root,
        "/proc/driver/nvidia/gpus/0000:02:00.0/information",
        &information(0, UUID0),
    );
    // A GPU without a node keeps its index but is not offered.
    write(
        root,
        "/proc/driver/nvidia/gpus/0000:03:00.0/information",
        &information(2, "GPU-2"),
    );
    let host = host(root);
    let view: Vec<(usize, u64)> = host.gpus.iter().map(|g| (g.index, g.minor)).collect();
    assert_eq!(view, [(0, 1), (1, 0)]);
    // No libraries found: no mounts, but the nodes and env are still there.
    let applied = host.edits(&GpuSelection::Count(1), &caps(&["gpu"])).unwrap();
    assert_eq!(node_paths(&applied), ["/dev/nvidia1", "/dev/nvidiactl"]);
    assert!(applied.mounts.is_empty());
    assert_eq!(host.driver_version, None);
}

#[test]
fn without_proc_information_minors_are_indices() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "/dev/nvidia3");
    touch(dir.path(), "/dev/nvidia1");
    let host = host(dir.path());
    let view: Vec<(usize, u64, Option<&str>)> = host
        .gpus
        .iter()
        .map(|g| (g.index, g.minor, g.uuid.as_deref()))
        .collect();
    assert_eq!(view, [(0, 1, None), (1, 3, None)]);
}

#[test]
fn no_driver_no_host() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "/dev/null");
    assert!(NvidiaHost::discover(dir.path(), &fake_stat).unwrap().is_none());
    // Plain files are not device nodes to the real stat.
    touch(dir.path(), "/dev/nvidia0");
    touch(dir.path(), "/dev/nvidiactl");
    assert!(NvidiaHost::discover(dir.path(), &crate::devices::host_stat)
        .unwrap()
        .is_none());
}
