use std::fs;

use super::*;
use crate::devices::{under_root, NodeInfo};
use crate::spec::model::Gpus;

const UUID0: &str = "GPU-0a0a0a0a-1111-2222-3333-444455556666";

/// `/dev/nvidiaN` → 195:N and `/dev/nvidiactl` → 195:255, if the file exists.
fn fake_stat(path: &Path) -> Option<NodeInfo> {
    if !path.is_file() {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let minor = if name == "nvidiactl" {
        255
    } else {
        name.strip_prefix("nvidia")?.parse().ok()?
    };
    Some(NodeInfo {
        kind: 'c',
        major: 195,
        minor,
    })
}

fn write(root: &Path, path: &str, text: &str) {
    let path = under_root(root, path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// One GPU, found by discovery only.
fn driver_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "/dev/nvidia0", "");
    write(dir.path(), "/dev/nvidiactl", "");
    write(
        dir.path(),
        "/proc/driver/nvidia/gpus/0000:01:00.0/information",
        &format!("GPU UUID: \t {UUID0}\nDevice Minor: \t 0\n"),
    );
    dir
}

/// A host whose GPUs come from a generated spec (two GPUs, index, uuid
/// and `all` names) and no driver nodes.
fn spec_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "/var/run/cdi/nvidia.yaml",
        &format!(
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ncontainerEdits:\n  env: [NVIDIA_VISIBLE_DEVICES=void]\n  deviceNodes: [{{path: /dev/nvidiactl, type: c, major: 195, minor: 255}}]\ndevices:\n\
             - {{name: '0', containerEdits: {{deviceNodes: [{{path: /dev/nvidia0, type: c, major: 195, minor: 0}}]}}}}\n\
             - {{name: '{UUID0}', containerEdits: {{deviceNodes: [{{path: /dev/nvidia0, type: c, major: 195, minor: 0}}]}}}}\n\
             - {{name: '1', containerEdits: {{deviceNodes: [{{path: /dev/nvidia1, type: c, major: 195, minor: 1}}]}}}}\n\
             - {{name: all, containerEdits: {{deviceNodes: [{{path: /dev/nvidia0, type: c, major: 195, minor: 0}}, {{path: /dev/nvidia1, type: c, major: 195, minor: 1}}]}}}}\n"
        ),
    );
    write(
        dir.path(),
        "/etc/cdi/vendor.yaml",
        "cdiVersion: 0.5.0\nkind: vendor.com/dev\ndevices: [{name: x, containerEdits: {env: [X=1]}}]\n",
    );
    dir
}

fn host(root: &Path) -> HostDevices {
    HostDevices::discover(root, &fake_stat).unwrap()
}

fn requests(yaml: &str) -> Vec<DeviceRequest> {
    serde_yaml::from_str::<Gpus>(yaml).unwrap().requests()
}

fn reservation(yaml: &str) -> Vec<DeviceRequest> {
    vec![serde_yaml::from_str(yaml).unwrap()]
}

fn cdi_names(plan: &[Resolved]) -> Vec<String> {
    match plan {
        [Resolved::Cdi { names, .. }] => names.clone(),
        other => panic!("not one CDI step: {other:?}"),
    }
}

#[test]
fn no_gpu_names_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    for reqs in [
        requests("all"),
        reservation("{capabilities: [gpu], count: 1}"),
        reservation("{driver: nvidia}"),
    ] {
        let err = plan("trainer", &reqs, &[], &host).unwrap_err();
        assert!(matches!(err, DeviceError::NoGpu { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("service \"trainer\" requests a GPU, but this host has none"),
            "{err}"
        );
    }
}

#[test]
fn discovery_when_there_is_no_spec() {
    let dir = driver_host();
    let host = host(dir.path());
    let steps = plan("web", &requests("[{count: 1, capabilities: [utility]}]"), &[], &host).unwrap();
    assert_eq!(
        steps,
        [Resolved::Nvidia {
            selection: GpuSelection::Count(1),
            capabilities: vec!["gpu".into(), "utility".into()],
        }]
    );
    let applied = apply("web", &steps, &host, &fake_stat).unwrap();
    let paths: Vec<&str> = applied.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/dev/nvidia0", "/dev/nvidiactl"]);
    assert!(
        applied.env.contains(&"NVIDIA_DRIVER_CAPABILITIES=utility".to_owned()),
        "{:?}",
        applied.env
    );
    assert!(applied.env.contains(&"NVIDIA_VISIBLE_DEVICES=0".to_owned()));
    let err = plan("web", &requests("[{count: 2}]"), &[], &host).unwrap();
    let err = apply("web", &err, &host, &fake_stat).unwrap_err().to_string();
    assert_eq!(err, "service \"web\": 2 GPUs requested, but this host has 1");
}

#[test]
fn a_generated_spec_is_preferred() {
    let dir = spec_host();
    let host = host(dir.path());
    assert_eq!(
        cdi_names(&plan("s", &requests("all"), &[], &host).unwrap()),
        ["nvidia.com/gpu=all"]
    );
    assert_eq!(
        cdi_names(&plan("s", &requests("[{count: 2}]"), &[], &host).unwrap()),
        ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    );
    let by_uuid = plan(
        "s",
        &reservation(&format!("{{capabilities: [gpu], device_ids: ['{UUID0}']}}")),
        &[],
        &host,
    )
    .unwrap();
    assert_eq!(cdi_names(&by_uuid), [format!("nvidia.com/gpu={UUID0}")]);
    let err = plan("s", &requests("[{count: 3}]"), &[], &host)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "service \"s\": 3 GPUs requested, but this host has 2");
    let err = plan(
        "s",
        &reservation("{capabilities: [gpu], device_ids: ['7']}"),
        &[],
        &host,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("service \"s\": CDI device nvidia.com/gpu=7 is not defined"),
        "{err}"
    );

    let steps = plan(
        "s",
        &requests("[{count: 1, capabilities: [compute, video]}]"),
        &[],
        &host,
    )
    .unwrap();
    let applied = apply("s", &steps, &host, &fake_stat).unwrap();
    assert_eq!(
        applied.env,
        [
            "NVIDIA_VISIBLE_DEVICES=void",
            "NVIDIA_DRIVER_CAPABILITIES=compute,video"
        ]
    );
    let paths: Vec<&str> = applied.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/dev/nvidiactl", "/dev/nvidia0"]);
}

#[test]
fn count_and_device_ids_together_name_the_service() {
    let dir = driver_host();
    let both = DeviceRequest {
        capabilities: vec!["gpu".into()],
        count: Some(crate::spec::model::DeviceCount::Count(1)),
        device_ids: vec!["0".into()],
        driver: None,
        options: Default::default(),
    };
    let err = plan("api", &[both], &[], &host(dir.path())).unwrap_err().to_string();
    assert_eq!(
        err,
        "service \"api\": a GPU request may set count or device_ids, not both"
    );
}

#[test]
fn driver_cdi_takes_qualified_names() {
    let dir = spec_host();
    let host = host(dir.path());
    let steps = plan(
        "s",
        &reservation("{driver: cdi, capabilities: [gpu], device_ids: [vendor.com/dev=x, nvidia.com/gpu=1]}"),
        &[],
        &host,
    )
    .unwrap();
    assert_eq!(cdi_names(&steps), ["vendor.com/dev=x", "nvidia.com/gpu=1"]);
    for (yaml, why) in [
        ("{driver: cdi, count: 1}", "driver cdi needs device_ids"),
        (
            "{driver: cdi, device_ids: [vendor.com/dev=x], options: {a: b}}",
            "takes no options",
        ),
        ("{driver: cdi, device_ids: ['0']}", "invalid CDI device name \"0\""),
        (
            "{driver: cdi, device_ids: [vendor.com/dev=y]}",
            "vendor.com/dev defines x",
        ),
    ] {
        let err = plan("svc", &reservation(yaml), &[], &host).unwrap_err().to_string();
        assert!(
            err.starts_with("service \"svc\": ") && err.contains(why),
            "{yaml}: {err}"
        );
    }
}

#[test]
fn other_drivers_and_capabilities_are_refused() {
    let dir = driver_host();
    let host = host(dir.path());
    let err = plan("s", &reservation("{driver: amd, capabilities: [gpu]}"), &[], &host)
        .unwrap_err()
        .to_string();
    assert!(err.contains("device driver \"amd\" is not supported"), "{err}");
    let err = plan("s", &reservation("{capabilities: [tpu]}"), &[], &host)
        .unwrap_err()
        .to_string();
    assert!(err.contains("capabilities [tpu]"), "{err}");
    let err = plan("s", &reservation("{capabilities: [gpu, bogus]}"), &[], &host)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown GPU capability \"bogus\""), "{err}");
}

#[test]
fn devices_entries_resolve_through_specs_or_discovery() {
    let dir = spec_host();
    let host = host(dir.path());
    let steps = plan("s", &[], &["vendor.com/dev=x".into(), "nvidia.com/gpu=0".into()], &host).unwrap();
    assert_eq!(cdi_names(&steps), ["vendor.com/dev=x", "nvidia.com/gpu=0"]);
    let applied = apply("s", &steps, &host, &fake_stat).unwrap();
    assert!(applied.env.contains(&"X=1".to_owned()));
    assert!(!applied.env.iter().any(|e| e.starts_with("NVIDIA_DRIVER_CAPABILITIES")));
    let err = plan("s", &[], &["other.com/x=1".into()], &host)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("service \"s\": CDI kind other.com/x"), "{err}");

    let dir = driver_host();
    let host = super::tests::host(dir.path());
    let steps = plan("s", &[], &["nvidia.com/gpu=all".into()], &host).unwrap();
    assert!(
        matches!(
            &steps[..],
            [Resolved::Nvidia {
                selection: GpuSelection::All,
                ..
            }]
        ),
        "{steps:?}"
    );
}

#[test]
fn gpu_requests_merge_with_cdi_devices() {
    let dir = spec_host();
    // The driver too: discovery-only names are not used when a spec exists.
    write(dir.path(), "/dev/nvidia0", "");
    let host = host(dir.path());
    let mut reqs = requests("all");
    reqs.extend(reservation("{capabilities: [gpu, utility], device_ids: ['0']}"));
    let steps = plan("s", &reqs, &["nvidia.com/gpu=1".into()], &host).unwrap();
    let applied = apply("s", &steps, &host, &fake_stat).unwrap();
    let paths: Vec<&str> = applied.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1"]);
    assert!(
        applied.env.contains(&"NVIDIA_DRIVER_CAPABILITIES=utility".to_owned()),
        "{:?}",
        applied.env
    );
}

#[test]
fn a_broken_nvidia_spec_is_reported_instead_of_no_gpu() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "/etc/cdi/nvidia.yaml",
        "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []\n",
    );
    let err = plan("s", &requests("all"), &[], &host(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nvidia.yaml") && err.contains("no devices"), "{err}");
}

#[test]
fn union_of_discovery_requests() {
    let (all, one, two, ids) = (
        GpuSelection::All,
        GpuSelection::Count(1),
        GpuSelection::Count(2),
        GpuSelection::Ids(vec!["1".into()]),
    );
    assert_eq!(union(&[]), None);
    assert_eq!(union(&[&one, &two]), Some(two.clone()));
    assert_eq!(union(&[&one, &all]), Some(GpuSelection::All));
    assert_eq!(
        union(&[&ids, &two]),
        Some(GpuSelection::Ids(vec!["1".into(), "0".into()]))
    );
}

#[test]
fn service_requests_collects_gpus_reservations_and_cdi_devices() {
    let service: Service = serde_yaml::from_str(
        "image: x\ngpus: all\ndevices: [nvidia.com/gpu=0, /dev/fuse]\n\
         deploy: {resources: {reservations: {devices: [{capabilities: [gpu], count: 1}]}}}\n",
    )
    .unwrap();
    let (reqs, cdi) = service_requests(&service);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].count, Some(crate::spec::model::DeviceCount::All));
    assert_eq!(reqs[1].count, Some(crate::spec::model::DeviceCount::Count(1)));
    assert_eq!(cdi, ["nvidia.com/gpu=0"]);
}
