//! The image store end to end: the real binary with `--root <tempdir>`,
//! and the library, on the real filesystem (runs as root, like CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod image_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth::image::ImageError;
use image_support::*;
use serde_json::json;

// ---------------------------------------------------------------- tests

#[test]
fn load_list_inspect_tag_save_and_reload() {
    let env = Env::new();
    let (archive, id) = multi_layer_image(&env);
    let loaded = env.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: berth-test/multi:v1");

    let ls = env.ok(&["ls"]);
    let mut lines = ls.lines();
    let header = lines.next().unwrap();
    for column in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("berth-test/multi"), "{row}");
    assert!(row.contains(" v1 ") && row.contains(&id[7..19]), "{row}");
    assert_eq!(env.ok(&["ls", "-q"]).trim(), &id[7..19]);

    let inspect = env.inspect("berth-test/multi:v1");
    assert_eq!(inspect["Id"], id);
    assert_eq!(inspect["RepoTags"], json!(["berth-test/multi:v1"]));
    assert_eq!(inspect["Config"]["Cmd"], json!(["/bin/true"]));
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    assert_eq!(env.inspect(&id[7..13])["Id"], id, "short id prefix");

    // The layers, as the runtime sees them.
    let image = env.store().resolve("berth-test/multi:v1").unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.name.as_deref(), Some("docker.io/berth-test/multi:v1"));
    let [l0, l1, l2, l3] = &image.layers[..] else {
        panic!("{:?}", image.layers)
    };
    assert_eq!(fs::read(l0.join("etc/hello")).unwrap(), b"hello\n");
    assert_eq!(fs::read(l1.join("etc/hello")).unwrap(), b"hello v2\n");
    let tool = fs::symlink_metadata(l0.join("bin/tool")).unwrap();
    assert_eq!((tool.mode() & 0o7777, tool.uid()), (0o4755, 1000));
    assert_eq!(fs::read_link(l0.join("bin/hello")).unwrap(), Path::new("../etc/hello"));
    assert_eq!(fs::read_link(l0.join("bin/abs")).unwrap(), Path::new("/etc/hello"));
    assert_eq!(
        fs::metadata(l0.join("etc/hello")).unwrap().ino(),
        fs::metadata(l0.join("etc/hello-link")).unwrap().ino()
    );
    let null = fs::symlink_metadata(l0.join("dev-null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(fs::symlink_metadata(l0.join("fifo")).unwrap().file_type().is_fifo());
    assert_eq!(fs::symlink_metadata(l0.join("etc")).unwrap().mtime(), 1_700_000_000);
    let whiteout = fs::symlink_metadata(l2.join("etc/remove-me")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert!(!l2.join("etc/.wh.remove-me").exists());
    assert_eq!(
        xattr(&l3.join("data/opq"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(xattr(&l0.join("etc/tagged"), "user.berth"), Some(b"yes".to_vec()));

    // Tag, then save both names and load them into a fresh root.
    env.ok(&["tag", "berth-test/multi:v1", "localhost:5000/copy:latest"]);
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("localhost:5000/copy"), "{ls}");
    let saved = env.base.join("saved.tar");
    env.ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "berth-test/multi:v1",
        "localhost:5000/copy",
    ]);
    let names = tar_names(&saved);
    for member in ["oci-layout", "index.json", "manifest.json"] {
        assert!(names.contains(&member.to_string()), "{names:?}");
    }
    let fresh = Env::new();
    let out = fresh.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains("Loaded image: berth-test/multi:v1"), "{out}");
    assert!(out.contains("Loaded image: localhost:5000/copy:latest"), "{out}");
    assert_eq!(fresh.inspect("localhost:5000/copy")["Id"], id);
    assert_eq!(fresh.ok(&["ls", "-q"]).trim(), &id[7..19]);

    // An OCI layout directory loads too.
    let again = Env::new();
    again.ok(&["load", "-i", env.base.join("layout").to_str().unwrap()]);
    assert_eq!(again.inspect("berth-test/multi:v1")["Id"], id);
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0_u8; 64];
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a writable buffer of the given length.
    let n = unsafe { libc::lgetxattr(cpath.as_ptr(), cname.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn tar_names(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn docker_save_archives_load() {
    let env = Env::new();
    let layer = tar_of(&[dir("bin/"), file("bin/sh", b"#!sh")]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-05-06T07:08:09.123456789Z",
        "config": {"Cmd": ["sh"]},
        "container_config": {"Hostname": "legacy"},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let config_hex = hex(&config);
    let tree = env.base.join("docker");
    fs::create_dir_all(tree.join("abc123")).unwrap();
    fs::write(tree.join(format!("{config_hex}.json")), &config).unwrap();
    fs::write(tree.join("abc123/layer.tar"), &layer).unwrap();
    fs::write(tree.join("abc123/VERSION"), "1.0").unwrap();
    fs::write(
        tree.join("manifest.json"),
        serde_json::to_vec(&json!([{
            "Config": format!("{config_hex}.json"),
            "RepoTags": ["legacy:1"],
            "Layers": ["abc123/layer.tar"],
        }]))
        .unwrap(),
    )
    .unwrap();
    fs::write(tree.join("repositories"), r#"{"legacy":{"1":"abc123"}}"#).unwrap();
    let archive = env.base.join("docker.tar");
    tar_dir(&tree, &archive);

    assert_eq!(
        env.ok(&["load", "-i", archive.to_str().unwrap()]).trim(),
        "Loaded image: legacy:1"
    );
    let image = env.store().resolve("legacy:1").unwrap();
    assert_eq!(image.id, format!("sha256:{config_hex}"));
    assert_eq!(fs::read(image.layers[0].join("bin/sh")).unwrap(), b"#!sh");
    assert_eq!(
        env.inspect("docker.io/library/legacy:1")["Created"],
        "2023-05-06T07:08:09.123456789Z"
    );
}

#[test]
fn import_with_changes() {
    let env = Env::new();
    let rootfs = env.base.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::write(rootfs.join("bin/sh"), b"#!fake").unwrap();
    let tarball = env.base.join("rootfs.tar.gz");
    let mut plain = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut plain);
        builder.append_dir_all(".", &rootfs).unwrap();
        builder.finish().unwrap();
    }
    fs::write(&tarball, gzip(&plain)).unwrap();

    let id = env.ok(&[
        "import",
        tarball.to_str().unwrap(),
        "imported:1",
        "--change",
        r#"CMD ["/bin/sh"]"#,
        "--change",
        "ENV A=1",
        "-m",
        "from a test",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let inspect = env.inspect("imported:1");
    assert_eq!(inspect["Id"], id);
    assert_eq!(inspect["Config"]["Cmd"], json!(["/bin/sh"]));
    assert_eq!(inspect["Config"]["Env"], json!(["A=1"]));
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["History"][0]["comment"], "from a test");
    let image = env.store().resolve(id).unwrap();
    assert_eq!(fs::read(image.layers[0].join("bin/sh")).unwrap(), b"#!fake");

    let bad = env.berth(&["import", tarball.to_str().unwrap(), "x:1", "--change", "RUN make"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RUN make"));
}

#[test]
fn rm_refuses_images_in_use_and_prune_collects() {
    let env = Env::new();
    let rootfs = env.base.join("rootfs.tar");
    fs::write(&rootfs, tar_of(&[file("a", b"1")])).unwrap();
    let first = env
        .ok(&["import", rootfs.to_str().unwrap(), "app:1"])
        .trim()
        .to_string();
    fs::write(&rootfs, tar_of(&[file("a", b"2")])).unwrap();
    let second = env
        .ok(&["import", rootfs.to_str().unwrap(), "app:1"])
        .trim()
        .to_string();
    assert_ne!(first, second);
    env.ok(&["tag", "app:1", "app:2"]);

    // The first image lost its name: dangling.
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("<none>"), "{ls}");

    // In use by a container: refused, by the CLI and the library.
    let container = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(env.root.path())
            .arg("container")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "container {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    container(&["create", "--name", "c1", "app:1", "true"]);
    env.ok(&["rm", "app:2"]); // one of two names: untag only
    let out = env.berth(&["rm", "app:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    let err = env.store().remove(&second, false, &|id| id == second).unwrap_err();
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    container(&["rm", "c1"]);

    let blobs = env.root.blobs_dir().join("sha256");
    let before = (env.count(&blobs), env.count(&env.root.snapshots_dir()));
    let out = env.ok(&["prune", "--force"]);
    assert!(out.contains(&format!("Deleted: {first}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(
        env.count(&blobs),
        before.0 - 3,
        "manifest, config and layer of the dangling image"
    );
    assert_eq!(env.count(&env.root.snapshots_dir()), before.1 - 1);

    let out = env.ok(&["rm", "app:1"]);
    assert!(
        out.contains("Untagged: app:1") && out.contains(&format!("Deleted: {second}")),
        "{out}"
    );
    assert_eq!(env.ok(&["ls", "-q"]), "");
    assert_eq!(env.count(&blobs), 0);
    assert_eq!(env.count(&env.root.snapshots_dir()), 0);
    let missing = env.berth(&["inspect", "app:1"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such image"));
}

// ------------------------------------------------------- hostile layers

/// Loads a one-layer image made of `entries` and expects a refusal naming
/// `entry`, with nothing left in tmp or snapshots and nothing written
/// outside.
fn refuses(entries: &[Entry<'_>], entry: &str) -> Env {
    let env = Env::new();
    let layout = env.base.join("hostile");
    oci_layout(
        &layout,
        Some("hostile:1"),
        &[(tar_of(entries), Zip::Gzip)],
        "2024-01-01T00:00:00Z",
    );
    let err = env.store().load_archive(&layout).unwrap_err();
    let message = err.chain();
    assert!(
        message.contains(&format!("{entry:?}")),
        "error does not name {entry:?}: {message}"
    );
    eprintln!("refused as expected: {message}");
    assert_eq!(env.count(&env.root.tmp_dir()), 0, "staging left in tmp");
    assert_eq!(env.count(&env.root.snapshots_dir()), 0, "snapshot left behind");
    assert!(
        env.store().resolve("hostile:1").is_err(),
        "refused image was registered"
    );
    assert_no_file_named(&env.base, "evil");
    assert!(!Path::new("/etc/evil").exists());
    env
}

fn assert_no_file_named(dir: &Path, name: &str) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        assert_ne!(entry.file_name(), name, "{} was written", entry.path().display());
        if entry.file_type().unwrap().is_dir() {
            assert_no_file_named(&entry.path(), name);
        }
    }
}

#[test]
fn hostile_dotdot() {
    refuses(&[file("ok", b"fine"), file("../evil", b"x")], "../evil");
}

#[test]
fn hostile_nested_dotdot() {
    refuses(&[dir("a/"), file("a/../../evil", b"x")], "a/../../evil");
}

#[test]
fn hostile_absolute_path() {
    refuses(&[file("/etc/evil", b"x")], "/etc/evil");
}

#[test]
fn hostile_write_through_symlink_to_etc() {
    // `link/passwd` itself is proven in the next test against a directory
    // the test owns: a regression here must not clobber the host.
    let probe = format!("berth-probe-{}", std::process::id());
    let path = format!("link/{probe}");
    refuses(&[symlink("link", "/etc"), file(&path, b"x")], &path);
    assert!(!Path::new("/etc").join(&probe).exists());
}

#[test]
fn hostile_write_through_symlink_to_outside_dir() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    refuses(
        &[symlink("link", &target), file("link/passwd", b"root::0:0::/:/bin/sh")],
        "link/passwd",
    );
    assert!(!outside.path().join("passwd").exists());
}

#[test]
fn hostile_relative_symlink_escape() {
    refuses(&[symlink("link", "../../.."), file("link/x", b"x")], "link/x");
}

#[test]
fn hostile_hardlink_to_host_file() {
    let before = fs::metadata("/etc/passwd").unwrap();
    refuses(&[hardlink("evil-link", "/etc/passwd")], "evil-link");
    let after = fs::metadata("/etc/passwd").unwrap();
    assert_eq!((before.nlink(), before.mode()), (after.nlink(), after.mode()));
}

#[test]
fn hostile_hardlink_outside_root() {
    refuses(&[hardlink("evil-link", "../outside")], "evil-link");
}

#[test]
fn hostile_whiteout_escape() {
    refuses(&[file("../.wh.x", b"")], "../.wh.x");
    refuses(&[dir("a/"), file("a/.wh...", b"")], "a/.wh...");
}

#[test]
fn corrupt_blob_is_refused_and_not_stored() {
    let env = Env::new();
    let layout = env.base.join("corrupt");
    oci_layout(
        &layout,
        Some("corrupt:1"),
        &[(tar_of(&[file("a", b"1")]), Zip::Gzip)],
        "2024-01-01T00:00:00Z",
    );
    // Flip the layer blob's content, keeping its name.
    let blobs = layout.join("blobs/sha256");
    let mut tampered = false;
    for entry in fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            fs::write(&path, gzip(&tar_of(&[file("a", b"evil")]))).unwrap();
            tampered = true;
        }
    }
    assert!(tampered);
    let err = env.store().load_archive(&layout).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(env.count(&env.root.tmp_dir()), 0);
    assert!(env.store().resolve("corrupt:1").is_err());
}

#[test]
fn commit_turns_an_upper_dir_into_a_layer() {
    let env = Env::new();
    let (archive, _) = multi_layer_image(&env);
    let store = env.store();
    store.load_archive(&archive).unwrap();
    let parent = store.resolve("berth-test/multi:v1").unwrap();

    let upper = env.base.join("upper");
    fs::create_dir_all(upper.join("data/opq")).unwrap();
    fs::write(upper.join("data/opq/mine"), b"m").unwrap();
    fs::write(upper.join("added"), b"a").unwrap();
    nix::sys::stat::mknod(
        &upper.join("fifo"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let opq = std::ffi::CString::new(upper.join("data/opq").to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated strings and a one-byte value buffer.
    let rc = unsafe {
        libc::lsetxattr(
            opq.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0);

    let id = store
        .commit(
            &parent,
            &upper,
            &["USER nobody".to_string()],
            Some("snapshot"),
            Some("committed:1"),
        )
        .unwrap();
    let image = store.resolve("committed:1").unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.layers.len(), parent.layers.len() + 1);
    assert_eq!(&image.layers[..4], &parent.layers[..], "parent snapshots are shared");
    let top = image.layers.last().unwrap();
    assert_eq!(fs::read(top.join("added")).unwrap(), b"a");
    let whiteout = fs::symlink_metadata(top.join("fifo")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert_eq!(
        xattr(&top.join("data/opq"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    let inspect = env.inspect("committed:1");
    assert_eq!(inspect["Config"]["User"], "nobody");
    assert_eq!(inspect["Config"]["Cmd"], json!(["/bin/true"]), "inherited");
    assert_eq!(
        inspect["History"].as_array().unwrap().last().unwrap()["comment"],
        "snapshot"
    );
}
