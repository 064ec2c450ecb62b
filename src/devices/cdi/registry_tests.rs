use std::fs;

use super::*;
use crate::devices::{HookStage, NodeInfo};

fn no_stat(_: &Path) -> Option<NodeInfo> {
    None
}

fn write(root: &Path, path: &str, text: &str) {
    let path = under_root(root, path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn spec(kind: &str, devices: &[(&str, &str)]) -> String {
    let mut text = format!("cdiVersion: 0.6.0\nkind: {kind}\ndevices:\n");
    for (name, env) in devices {
        text.push_str(&format!(
            "  - name: \"{name}\"\n    containerEdits:\n      env: [\"{env}\"]\n"
        ));
    }
    text
}

#[test]
fn later_directories_override_earlier_ones() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/cdi/a.yaml",
        &spec("vendor.com/dev", &[("0", "FROM=etc"), ("1", "ONLY=etc")]),
    );
    write(
        root.path(),
        "/var/run/cdi/a.json",
        r#"{"cdiVersion": "0.5.0", "kind": "vendor.com/dev",
        "devices": [{"name": "0", "containerEdits": {"env": ["FROM=run"]}}]}"#,
    );
    let registry = Registry::load_default(root.path());
    assert!(registry.errors().is_empty());
    let env = |name: &str| registry.apply(&[name.to_owned()], &no_stat).unwrap().env;
    assert_eq!(env("vendor.com/dev=0"), vec!["FROM=run"]);
    assert_eq!(env("vendor.com/dev=1"), vec!["ONLY=etc"]);
    assert_eq!(registry.device_names("vendor.com/dev"), vec!["0", "1"]);
    assert!(registry.has_kind("vendor.com/dev"));
    // Reversed order, reversed winner.
    let registry = Registry::load(root.path(), &["/var/run/cdi", "/etc/cdi"]);
    assert_eq!(
        registry.apply(&["vendor.com/dev=0".into()], &no_stat).unwrap().env,
        vec!["FROM=etc"]
    );
}

#[test]
fn same_directory_duplicates_are_ambiguous() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "/etc/cdi/a.yaml", &spec("vendor.com/dev", &[("0", "A=1")]));
    write(root.path(), "/etc/cdi/b.yml", &spec("vendor.com/dev", &[("0", "A=2")]));
    let err = Registry::load_default(root.path())
        .resolve("vendor.com/dev=0")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.yaml") && err.contains("b.yml") && err.contains("same priority"),
        "{err}"
    );
    // A higher-priority definition settles it.
    write(
        root.path(),
        "/var/run/cdi/c.yaml",
        &spec("vendor.com/dev", &[("0", "A=3")]),
    );
    let registry = Registry::load_default(root.path());
    assert_eq!(
        registry.apply(&["vendor.com/dev=0".into()], &no_stat).unwrap().env,
        vec!["A=3"]
    );
}

#[test]
fn a_broken_file_hides_only_its_own_devices() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/cdi/good.yaml",
        &spec("vendor.com/dev", &[("0", "A=1")]),
    );
    write(
        root.path(),
        "/etc/cdi/broken.yaml",
        "cdiVersion: 9.9.9\nkind: other.com/x\ndevices: [{name: a}]\n",
    );
    write(root.path(), "/etc/cdi/notes.txt", "not a spec");
    let registry = Registry::load_default(root.path());
    assert_eq!(registry.errors().len(), 1);
    assert_eq!(registry.errors()[0].kind.as_deref(), Some("other.com/x"));
    registry.resolve("vendor.com/dev=0").unwrap();
    let err = registry.resolve("other.com/x=a").unwrap_err().to_string();
    assert!(
        err.contains("other.com/x=a") && err.contains("broken.yaml") && err.contains("9.9.9"),
        "{err}"
    );
    // Unparseable: its kind is unknown, so it is blamed for unknown kinds.
    write(root.path(), "/etc/cdi/garbage.json", "{not json");
    let registry = Registry::load_default(root.path());
    let err = registry.resolve("third.com/y=0").unwrap_err().to_string();
    assert!(err.contains("garbage.json") && err.contains("JSON"), "{err}");
}

#[test]
fn unknown_names_say_what_exists() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/cdi/a.yaml",
        &spec("vendor.com/dev", &[("0", "A=1"), ("all", "A=1")]),
    );
    let registry = Registry::load_default(root.path());
    let err = registry.resolve("vendor.com/dev=7").unwrap_err().to_string();
    assert_eq!(
        err,
        "CDI device vendor.com/dev=7 is not defined; vendor.com/dev defines 0, all"
    );
    let err = registry.resolve("nvidia.com/gpu=0").unwrap_err().to_string();
    assert_eq!(
        err,
        "CDI kind nvidia.com/gpu (of nvidia.com/gpu=0) is not defined by any spec in /etc/cdi and /var/run/cdi"
    );
    assert!(matches!(registry.resolve("bad"), Err(CdiError::InvalidName { .. })));
    // `all` is an ordinary name.
    registry.resolve("vendor.com/dev=all").unwrap();
}

#[test]
fn spec_edits_apply_once_and_conflicts_name_both_devices() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/cdi/v.yaml",
        "cdiVersion: 0.5.0\nkind: vendor.com/dev\ncontainerEdits: {env: [SHARED=1], hooks: [{hookName: createContainer, path: /bin/h}]}\ndevices:\n  - {name: '0', containerEdits: {deviceNodes: [{path: /dev/v0, type: c, major: 240, minor: 0}]}}\n  - {name: '1', containerEdits: {deviceNodes: [{path: /dev/v1, type: c, major: 240, minor: 1}]}}\n",
    );
    write(
        root.path(),
        "/etc/cdi/w.yaml",
        "cdiVersion: 0.5.0\nkind: other.com/dev\ndevices:\n  - {name: x, containerEdits: {deviceNodes: [{path: /dev/v0, type: c, major: 241, minor: 0}]}}\n",
    );
    let registry = Registry::load_default(root.path());
    let names = [
        "vendor.com/dev=0".to_owned(),
        "vendor.com/dev=1".into(),
        "vendor.com/dev=0".into(),
    ];
    let applied = registry.apply(&names, &no_stat).unwrap();
    assert_eq!(applied.env, vec!["SHARED=1"]);
    assert_eq!(applied.hooks.len(), 1);
    assert_eq!(applied.devices.iter().map(|d| d.minor).collect::<Vec<_>>(), vec![0, 1]);
    let err = registry
        .apply(&["vendor.com/dev=0".into(), "other.com/dev=x".into()], &no_stat)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "CDI device vendor.com/dev=0 and CDI device other.com/dev=x conflict on device node /dev/v0: c 240:0 vs c 241:0"
    );
}

#[test]
fn the_fixture_resolves() {
    let root = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdi/vendor.yaml");
    write(
        root.path(),
        "/etc/cdi/vendor.yaml",
        &fs::read_to_string(fixture).unwrap(),
    );
    let registry = Registry::load_default(root.path());
    let applied = registry
        .apply(
            &["vendor.com/device=all".into(), "vendor.com/device=1".into()],
            &no_stat,
        )
        .unwrap();
    let paths: Vec<&str> = applied.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/dev/vendorctl", "/dev/vendor0", "/dev/vendor1"]);
    assert_eq!(applied.devices[0].access, "rw");
    assert_eq!(applied.env, vec!["VENDOR_VISIBLE_DEVICES=void"]);
    assert_eq!(applied.hooks[0].stage, HookStage::CreateContainer);
}
