//! The injection path on fake trees: specs and device "nodes" are plain
//! files, [`fake_stat`] gives them numbers.

use std::fs;

use super::*;
use crate::devices::cdi::spec::NetDevice;
use crate::devices::{under_root, HookStage, NodeInfo};
use crate::runtime::create::{self, CreateOptions, ImageInfo};
use crate::spec::model::Gpus;

/// `/dev/vendor-*` → c 1:3 (what /dev/null is), `/dev/nvidiaN` → 195:N,
/// `/dev/nvidiactl` → 195:255; only for files that exist.
fn fake_stat(path: &Path) -> Option<NodeInfo> {
    if !path.is_file() {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let (major, minor) = match name {
        "nvidiactl" => (195, 255),
        n if n.starts_with("vendor-") => (1, 3),
        n => (195, n.strip_prefix("nvidia")?.parse().ok()?),
    };
    Some(NodeInfo {
        kind: 'c',
        major,
        minor,
    })
}

fn write(root: &Path, path: &str, text: &str) {
    let path = under_root(root, path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

const VENDOR_SPEC: &str = "\
cdiVersion: 0.6.0
kind: vendor.com/device
containerEdits:
  env: [VENDOR_SPEC=1]
devices:
  - name: foo
    containerEdits:
      deviceNodes: [{path: /dev/vendor-foo, permissions: rw}]
      env: [VENDOR_FOO=on, PATH=/vendor/bin]
      mounts:
        - {hostPath: /opt/vendor/lib, containerPath: /usr/lib/vendor, options: [ro, nosuid, nodev, bind]}
        - {hostPath: tmpfs, containerPath: /vendor/scratch, type: tmpfs, options: [size=1m, ro]}
      hooks:
        - {hookName: createContainer, path: /usr/bin/vendor-hook, args: [vendor-hook, setup], timeout: 5}
";

/// A vendor CDI spec and its node.
fn vendor_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "/etc/cdi/vendor.yaml", VENDOR_SPEC);
    write(dir.path(), "/dev/vendor-foo", "");
    dir
}

/// One GPU by driver discovery, no spec.
fn gpu_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "/dev/nvidia0", "");
    write(dir.path(), "/dev/nvidiactl", "");
    write(
        dir.path(),
        "/proc/driver/nvidia/gpus/0000:01:00.0/information",
        "GPU UUID: \t GPU-0a0a0a0a-1111-2222-3333-444455556666\nDevice Minor: \t 0\n",
    );
    dir
}

fn config(privileged: bool) -> ContainerConfig {
    let options = CreateOptions {
        image: "busybox".into(),
        privileged,
        ..CreateOptions::default()
    };
    let image = ImageInfo {
        cmd: vec!["sh".into()],
        env: vec!["PATH=/bin".into(), "HOME=/root".into()],
        ..ImageInfo::default()
    };
    create::build(&options, &image, "0123456789abcdef", "c", Vec::new(), "now").unwrap()
}

fn service(yaml: &str) -> Service {
    serde_yaml::from_str(yaml).unwrap()
}

fn edits(name: &str, service: &Service, root: &Path) -> Result<Option<Applied>, DeviceError> {
    let (requests, cdi) = request::service_requests(service);
    edits_for_requests(name, &requests, &cdi, root, &fake_stat)
}

#[test]
fn a_service_without_devices_needs_nothing() {
    let host = tempfile::tempdir().unwrap();
    assert_eq!(edits("web", &Service::default(), host.path()).unwrap(), None);
    // Plain device paths are `--device`'s business, not this layer's.
    let paths = service("devices: [/dev/fuse]");
    assert_eq!(edits_for_service("web", &paths, host.path()).unwrap(), None);
}

#[test]
fn a_cdi_device_lands_in_the_config() {
    let host = vendor_host();
    let applied = edits("app", &service("devices: [vendor.com/device=foo]"), host.path())
        .unwrap()
        .unwrap();
    let mut c = config(false);
    let rules_before = c.resources.devices.len();
    apply_to_config(&mut c, &applied);

    let node = c.devices.iter().find(|d| d.path == "/dev/vendor-foo").unwrap();
    assert_eq!((node.kind, node.major, node.minor, node.mode), ('c', 1, 3, 0o666));
    assert_eq!(node.access, "rw");
    assert_eq!(c.resources.devices.len(), rules_before + 1);
    assert_eq!(
        c.resources.devices.last().unwrap(),
        &DeviceRule::allow('c', Some(1), Some(3), "rw")
    );

    // CDI env overrides the image's by key, and adds the rest in order.
    assert_eq!(
        c.env,
        ["PATH=/vendor/bin", "HOME=/root", "VENDOR_SPEC=1", "VENDOR_FOO=on"]
    );

    let bind = c.mounts.iter().find(|m| m.target == "/usr/lib/vendor").unwrap();
    assert_eq!(bind.kind, MountKind::Bind);
    assert_eq!(bind.source.as_deref(), Some(Path::new("/opt/vendor/lib")));
    assert!(bind.read_only);
    assert_eq!(bind.options, ["ro", "nosuid", "nodev", "bind"]);
    assert_eq!(bind.volume, None);
    let tmpfs = c.mounts.iter().find(|m| m.target == "/vendor/scratch").unwrap();
    assert_eq!(tmpfs.kind, MountKind::Tmpfs);
    assert!(tmpfs.read_only);
    assert_eq!(tmpfs.options, ["size=1m"]);
    assert_eq!(tmpfs.source, None);

    assert_eq!(c.hooks.len(), 1);
    let hook = &c.hooks[0];
    assert_eq!(hook.stage, HookStage::CreateContainer);
    assert_eq!(hook.path, "/usr/bin/vendor-hook");
    assert_eq!(hook.args, ["vendor-hook", "setup"]);
    assert_eq!(hook.timeout, Some(5));

    // Applying twice changes nothing: replaced by path, key and target.
    let once = c.clone();
    apply_to_config(&mut c, &applied);
    assert_eq!(c, once);
}

#[test]
fn privileged_containers_already_allow_every_device() {
    let host = vendor_host();
    let applied = edits("app", &service("devices: [vendor.com/device=foo]"), host.path())
        .unwrap()
        .unwrap();
    let mut c = config(true);
    let rules = c.resources.devices.clone();
    apply_to_config(&mut c, &applied);
    assert_eq!(c.resources.devices, rules);
    assert!(c.devices.iter().any(|d| d.path == "/dev/vendor-foo"));
}

#[test]
fn a_node_replaces_a_same_path_device_and_groups_are_added() {
    let mut c = config(false);
    c.devices.push(DeviceNode {
        path: "/dev/vendor-foo".into(),
        kind: 'c',
        major: 9,
        minor: 9,
        mode: 0o600,
        uid: 0,
        gid: 0,
        access: "r".into(),
    });
    let applied = Applied {
        devices: vec![DeviceNode {
            path: "/dev/vendor-foo".into(),
            kind: 'b',
            major: 8,
            minor: 1,
            mode: 0o660,
            uid: 0,
            gid: 6,
            access: String::new(),
        }],
        additional_gids: vec![44, 44],
        ..Applied::default()
    };
    apply_to_config(&mut c, &applied);
    let nodes: Vec<_> = c.devices.iter().filter(|d| d.path == "/dev/vendor-foo").collect();
    assert_eq!(nodes.len(), 1);
    assert_eq!((nodes[0].kind, nodes[0].major, nodes[0].minor), ('b', 8, 1));
    assert_eq!(
        c.resources.devices.last().unwrap(),
        &DeviceRule::allow('b', Some(8), Some(1), "rwm")
    );
    assert_eq!(c.group_add, ["44"]);
}

#[test]
fn gpus_all_through_driver_discovery() {
    let host = gpu_host();
    let applied = edits("train", &service("gpus: all"), host.path()).unwrap().unwrap();
    let mut c = config(false);
    apply_to_config(&mut c, &applied);
    let paths: Vec<&str> = c.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/dev/nvidia0", "/dev/nvidiactl"]);
    assert!(c.env.contains(&"NVIDIA_VISIBLE_DEVICES=all".to_string()));
    assert!(c
        .resources
        .devices
        .contains(&DeviceRule::allow('c', Some(195), Some(255), "rwm")));
    // The same through a reservation.
    let reserved =
        service("deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}");
    let applied = edits("train", &reserved, host.path()).unwrap().unwrap();
    assert_eq!(applied.devices.len(), 2);
}

#[test]
fn a_gpu_on_a_host_without_one_is_a_clear_error() {
    let host = tempfile::tempdir().unwrap();
    let requests = Gpus::All.requests();
    let err = edits_for_requests("train", &requests, &[], host.path(), &fake_stat).unwrap_err();
    assert!(matches!(err, DeviceError::NoGpu { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("service \"train\" requests a GPU, but this host has none"));
    let err = edits_for_service("train", &service("devices: [vendor.com/device=bar]"), host.path()).unwrap_err();
    assert!(err.to_string().contains("vendor.com/device"), "{err}");
    assert!(err.to_string().starts_with("service \"train\""), "{err}");
}

#[test]
fn edits_the_runtime_cannot_apply_are_refused() {
    let applied = Applied {
        net_devices: vec![NetDevice {
            host_interface_name: "eth9".into(),
            name: "net0".into(),
        }],
        ..Applied::default()
    };
    let err = refuse_unsupported("app", &applied).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service \"app\": its devices need netDevices (eth9), which berth does not support"
    );
    assert!(refuse_unsupported("app", &Applied::default()).is_ok());
}

#[test]
fn the_device_root_comes_from_the_environment() {
    // Read only (tests run in parallel): the variable is unset under cargo
    // test unless a caller set it on purpose.
    match std::env::var_os(DEVICE_ROOT_ENV) {
        Some(root) if !root.is_empty() => assert_eq!(device_root(), PathBuf::from(root)),
        _ => assert_eq!(device_root(), PathBuf::from("/")),
    }
}

#[test]
fn other_filesystems_mount_from_their_source() {
    let spec = mount_spec(&AppliedMount {
        host_path: "/dev/sdz1".into(),
        container_path: "/data".into(),
        fs_type: Some("ext4".into()),
        options: vec!["ro".into(), "noatime".into()],
    });
    assert_eq!(spec.kind, MountKind::Volume);
    assert_eq!(spec.fstype.as_deref(), Some("ext4"));
    assert_eq!(spec.options, ["noatime"]);
    assert!(spec.read_only && spec.volume.is_none());
    let rbind = mount_spec(&AppliedMount {
        host_path: "/x".into(),
        container_path: "/y".into(),
        fs_type: Some("none".into()),
        options: vec!["rbind".into()],
    });
    assert_eq!(rbind.kind, MountKind::Bind);
}
