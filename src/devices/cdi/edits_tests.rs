use std::path::PathBuf;

use super::*;
use crate::devices::NodeInfo;

/// Pretends `<root>/dev/fake*` are char devices 10:<n> and
/// `<root>/dev/blk` a block device 8:0; nothing else exists.
fn fake_stat(path: &Path) -> Option<NodeInfo> {
    let name = path.file_name()?.to_str()?;
    if !path.starts_with("/fakeroot/dev") {
        return None;
    }
    if name == "blk" {
        return Some(NodeInfo {
            kind: 'b',
            major: 8,
            minor: 0,
        });
    }
    let n = name.strip_prefix("fake")?.parse().ok()?;
    Some(NodeInfo {
        kind: 'c',
        major: 10,
        minor: n,
    })
}

fn root() -> PathBuf {
    PathBuf::from("/fakeroot")
}

fn edits(yaml: &str) -> ContainerEdits {
    serde_yaml::from_str(yaml).unwrap()
}

fn node(path: &str, major: u64, minor: u64) -> DeviceNode {
    DeviceNode {
        path: path.into(),
        kind: 'c',
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        access: "rwm".into(),
    }
}

#[test]
fn missing_node_info_comes_from_the_host_node_under_root() {
    let applied = convert(
        "CDI device v.com/c=x",
        &edits(
            "deviceNodes:
               - {path: /dev/fake3}
               - {path: /dev/in-container, hostPath: /dev/fake7, permissions: rw, fileMode: 0o600, uid: 5, gid: 6}
               - {path: /dev/blk, type: b}
               - {path: /dev/explicit, type: c, major: 1, minor: 9}
               - {path: /dev/pipe, type: p}",
        ),
        &root(),
        &fake_stat,
    )
    .unwrap();
    let d = &applied.devices;
    assert_eq!(d[0], node("/dev/fake3", 10, 3));
    assert_eq!(
        (d[1].path.as_str(), d[1].major, d[1].minor),
        ("/dev/in-container", 10, 7)
    );
    assert_eq!(
        (d[1].access.as_str(), d[1].mode, d[1].uid, d[1].gid),
        ("rw", 0o600, 5, 6)
    );
    assert_eq!((d[2].kind, d[2].major, d[2].minor), ('b', 8, 0));
    assert_eq!(d[3], node("/dev/explicit", 1, 9));
    assert_eq!((d[4].kind, d[4].major), ('p', 0));
}

#[test]
fn node_info_errors_name_the_device_and_path() {
    let err = convert(
        "CDI device v.com/c=x",
        &edits("deviceNodes: [{path: /dev/gone}]"),
        &root(),
        &fake_stat,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("CDI device v.com/c=x") && err.contains("/dev/gone") && err.contains("not found"),
        "{err}"
    );
    let err = convert(
        "d",
        &edits("deviceNodes: [{path: /dev/blk, type: c}]"),
        &root(),
        &fake_stat,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("spec says type c but the host node is type b"), "{err}");
}

#[test]
fn hooks_mounts_and_gids_convert() {
    let applied = convert(
        "s",
        &edits(
            "hooks: [{hookName: createContainer, path: /bin/h, args: [h, a], timeout: 3}, \
             {hookName: poststop, path: /bin/p}]\n\
             mounts: [{hostPath: /h/lib, containerPath: /usr/lib/x, type: none, options: [ro, bind]}]\n\
             additionalGids: [0, 44]",
        ),
        &root(),
        &fake_stat,
    )
    .unwrap();
    assert_eq!(applied.hooks[0].stage, HookStage::CreateContainer);
    assert_eq!((applied.hooks[0].args.len(), applied.hooks[0].timeout), (2, Some(3)));
    assert_eq!(applied.hooks[1].stage, HookStage::Poststop);
    assert_eq!(applied.mounts[0].fs_type.as_deref(), Some("none"));
    assert_eq!(applied.additional_gids, vec![44]);
}

fn applied_nodes(nodes: Vec<DeviceNode>) -> Applied {
    Applied {
        devices: nodes,
        ..Applied::default()
    }
}

#[test]
fn conflicting_device_nodes_name_both_devices() {
    let mut merger = Merger::new();
    merger
        .add("CDI device a.com/x=0", applied_nodes(vec![node("/dev/foo", 10, 1)]))
        .unwrap();
    let err = merger
        .add("CDI device b.com/y=1", applied_nodes(vec![node("/dev/foo", 10, 2)]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "CDI device a.com/x=0 and CDI device b.com/y=1 conflict on device node /dev/foo: c 10:1 vs c 10:2"
    );
}

#[test]
fn conflicting_env_and_mounts_name_both_devices() {
    let mut merger = Merger::new();
    let env = |v: &str| Applied {
        env: vec![format!("MODE={v}")],
        ..Applied::default()
    };
    merger.add("A", env("x")).unwrap();
    merger.add("B", env("x")).unwrap();
    let err = merger.add("C", env("y")).unwrap_err().to_string();
    assert_eq!(err, "A and C conflict on env MODE: \"x\" vs \"y\"");

    let mount = |host: &str| Applied {
        mounts: vec![AppliedMount {
            host_path: host.into(),
            container_path: "/usr/lib/libv.so".into(),
            fs_type: None,
            options: vec![],
        }],
        ..Applied::default()
    };
    let mut merger = Merger::new();
    merger.add("A", mount("/h/1")).unwrap();
    merger.add("B", mount("/h/1")).unwrap();
    let err = merger.add("C", mount("/h/2")).unwrap_err().to_string();
    assert_eq!(
        err,
        "A and C conflict on mount /usr/lib/libv.so: from /h/1 vs from /h/2"
    );
}

#[test]
fn duplicates_collapse_and_mounts_sort_by_depth() {
    let mut merger = Merger::new();
    let mut read_only = node("/dev/ctl", 195, 255);
    read_only.access = "r".into();
    let mut write = node("/dev/ctl", 195, 255);
    write.access = "w".into();
    let hook = Hook {
        stage: HookStage::CreateContainer,
        path: "/bin/h".into(),
        args: vec![],
        env: vec![],
        timeout: None,
    };
    let mount = |c: &str| AppliedMount {
        host_path: "/h".into(),
        container_path: c.into(),
        fs_type: None,
        options: vec![],
    };
    merger
        .add(
            "A",
            Applied {
                devices: vec![read_only],
                hooks: vec![hook.clone()],
                mounts: vec![mount("/a/b/c"), mount("/a")],
                additional_gids: vec![44],
                ..Applied::default()
            },
        )
        .unwrap();
    merger
        .add(
            "B",
            Applied {
                devices: vec![write],
                hooks: vec![hook],
                mounts: vec![mount("/a/b")],
                additional_gids: vec![44, 45],
                ..Applied::default()
            },
        )
        .unwrap();
    let applied = merger.finish();
    assert_eq!(applied.devices.len(), 1);
    assert_eq!(applied.devices[0].access, "rw");
    assert_eq!(applied.hooks.len(), 1);
    assert_eq!(applied.additional_gids, vec![44, 45]);
    let order: Vec<&str> = applied.mounts.iter().map(|m| m.container_path.as_str()).collect();
    assert_eq!(order, ["/a", "/a/b", "/a/b/c"]);
}
