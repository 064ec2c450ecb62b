use super::*;

fn yaml(version: &str) -> String {
    format!(
        "cdiVersion: {version}\nkind: vendor.com/device\ndevices:\n  - name: dev\n    containerEdits:\n      deviceNodes:\n        - path: /dev/vendor0\ncontainerEdits:\n  env: [VENDOR=1]\n"
    )
}

#[test]
fn every_released_version_parses() {
    for version in RELEASED_VERSIONS {
        let spec = Spec::parse(Path::new("v.yaml"), &yaml(version)).unwrap();
        assert_eq!(spec.cdi_version, *version);
        assert_eq!(spec.devices[0].container_edits.device_nodes[0].path, "/dev/vendor0");
    }
    // The Go loader trims a leading v.
    Spec::parse(Path::new("v.yaml"), &yaml("v0.6.0")).unwrap();
}

#[test]
fn unknown_version_names_the_file() {
    for version in ["0.9.0", "2.0.0", "1.0", "latest"] {
        let err = Spec::parse(Path::new("/etc/cdi/x.yaml"), &yaml(version)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CdiError::UnknownVersion { .. }), "{msg}");
        assert!(
            msg.contains("/etc/cdi/x.yaml") && msg.contains(version) && msg.contains("1.0.0"),
            "{msg}"
        );
    }
}

const FULL_JSON: &str = r#"{
  "cdiVersion": "1.1.0",
  "kind": "vendor.com/net.card",
  "annotations": {"a": "b"},
  "devices": [{
    "name": "card0",
    "annotations": {"c": "d"},
    "containerEdits": {
      "deviceNodes": [{"path": "/dev/card0", "hostPath": "/dev/host-card0", "type": "c",
                       "major": 240, "minor": 1, "fileMode": 432, "permissions": "rw",
                       "uid": 1000, "gid": 44}],
      "netDevices": [{"hostInterfaceName": "eth9", "name": "net0"}]
    }
  }],
  "containerEdits": {
    "env": ["A=1"],
    "hooks": [{"hookName": "createContainer", "path": "/usr/bin/hook", "args": ["hook", "x"],
               "env": ["H=1"], "timeout": 5}],
    "mounts": [{"hostPath": "/usr/lib/libv.so.1", "containerPath": "/usr/lib/libv.so.1",
                "type": "bind", "options": ["ro", "nosuid", "nodev", "bind"]}],
    "intelRdt": {"closID": "clos1", "l3CacheSchema": "L3:0=ff", "enableCMT": true},
    "additionalGids": [44, 0]
  }
}"#;

#[test]
fn json_with_every_field() {
    let spec = Spec::parse(Path::new("full.json"), FULL_JSON).unwrap();
    let node = &spec.devices[0].container_edits.device_nodes[0];
    assert_eq!(node.host_path.as_deref(), Some("/dev/host-card0"));
    assert_eq!(
        (node.major, node.minor, node.file_mode),
        (Some(240), Some(1), Some(0o660))
    );
    assert_eq!((node.uid, node.gid), (Some(1000), Some(44)));
    let edits = &spec.container_edits;
    assert_eq!(edits.hooks[0].timeout, Some(5));
    assert_eq!(edits.mounts[0].kind.as_deref(), Some("bind"));
    assert_eq!(edits.intel_rdt.as_ref().unwrap().clos_id.as_deref(), Some("clos1"));
    assert_eq!(edits.additional_gids, vec![44, 0]);
    assert_eq!(spec.devices[0].container_edits.net_devices[0].name, "net0");
}

#[test]
fn yaml_and_json_agree() {
    let json = Spec::parse(Path::new("full.json"), FULL_JSON).unwrap();
    let as_yaml = serde_yaml::to_string(&json).unwrap();
    let yaml = Spec::parse(Path::new("full.yaml"), &as_yaml).unwrap();
    assert_eq!(json, yaml);
    // SPEC.md's spelling of additionalGids is read too.
    let alt = FULL_JSON.replace("additionalGids", "additionalGIDs");
    assert_eq!(Spec::parse(Path::new("alt.json"), &alt).unwrap(), json);
}

#[test]
fn fields_newer_than_the_declared_version_are_rejected() {
    for (from, to, needs) in [
        ("1.1.0", "1.0.0", "netDevices needs cdiVersion 1.1.0"),
        ("1.1.0", "0.6.0", "netDevices"),
    ] {
        let text = FULL_JSON.replace(from, to);
        let err = Spec::parse(Path::new("/etc/cdi/old.json"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needs) && err.contains("/etc/cdi/old.json"), "{err}");
    }
    let with_host_path = yaml("0.4.0").replace(
        "- path: /dev/vendor0",
        "- path: /dev/vendor0\n          hostPath: /dev/v",
    );
    let err = Spec::parse(Path::new("a.yaml"), &with_host_path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hostPath needs cdiVersion 0.5.0"), "{err}");
    let digit_name = yaml("0.3.0").replace("name: dev", "name: \"0\"");
    let err = Spec::parse(Path::new("a.yaml"), &digit_name).unwrap_err().to_string();
    assert!(err.contains("0.5.0"), "{err}");
    Spec::parse(Path::new("a.yaml"), &yaml("0.5.0").replace("name: dev", "name: \"0\"")).unwrap();
}

#[test]
fn invalid_specs_say_what_is_wrong() {
    let base = yaml("0.8.0");
    for (text, why) in [
        (
            base.replace("kind: vendor.com/device", "kind: device"),
            "vendor.com/class",
        ),
        (
            base.replace("name: dev", "name: -dev"),
            "must start with a letter or digit",
        ),
        (base.replace("env: [VENDOR=1]", "env: [VENDOR]"), "NAME=VALUE"),
        (
            base.replace("devices:\n  - name: dev\n", "devices: []\nx:\n  - name: dev\n"),
            "unknown field",
        ),
        (
            base.replace("env: [VENDOR=1]", "env: [A=1]\n  bogus: 1"),
            "unknown field `bogus`",
        ),
        (
            base.replace("env: [VENDOR=1]", "hooks: [{hookName: preStart, path: /bin/h}]"),
            "unknown hook name \"preStart\"",
        ),
        (
            base.replace("env: [VENDOR=1]", "hooks: [{hookName: poststop, path: h}]"),
            "not absolute",
        ),
        (
            base.replace("env: [VENDOR=1]", "hooks: [{hookName: poststop, path: /h, timeout: 0}]"),
            "greater than zero",
        ),
        (
            base.replace("- path: /dev/vendor0", "- path: /dev/vendor0\n          type: x"),
            "not b, c, u or p",
        ),
        (
            base.replace(
                "- path: /dev/vendor0",
                "- path: /dev/vendor0\n          permissions: rx",
            ),
            "subset of rwm",
        ),
        (
            format!("{base}  mounts: [{{hostPath: /a, containerPath: ''}}]\n"),
            "hostPath and containerPath",
        ),
    ] {
        let err = Spec::parse(Path::new("/etc/cdi/bad.yaml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why) && err.contains("bad.yaml"), "want {why:?}: {err}");
    }
    let dup = base.replace("devices:\n", "devices:\n  - name: dev\n");
    let err = Spec::parse(Path::new("d.yaml"), &dup).unwrap_err().to_string();
    assert!(err.contains("\"dev\" is defined twice"), "{err}");
    let err = Spec::parse(
        Path::new("d.yaml"),
        &base.replace(
            "devices:\n  - name: dev\n    containerEdits:\n      deviceNodes:\n        - path: /dev/vendor0\n",
            "devices: []\n",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no devices"), "{err}");
}

#[test]
fn the_fixture_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdi/vendor.yaml");
    let spec = Spec::load(&path).unwrap();
    assert_eq!(spec.kind, "vendor.com/device");
    assert!(spec.devices.iter().any(|d| d.name == "all"));
}
