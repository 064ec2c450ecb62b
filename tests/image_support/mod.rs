//! Builders and harness for `tests/image_store.rs`: tar layers with raw
//! (possibly hostile) names, OCI layouts, and the `berth` binary driver.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth::image::{Digest, ImageStore};
use berth::store::Root;
use serde_json::{json, Value};
use tar::{EntryType, Header};

// ---------------------------------------------------------------- builders

/// One tar entry; names and link names are written raw, so hostile
/// entries the tar crate's builder would refuse can be built.
pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: EntryType,
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub xattrs: Vec<(&'a str, &'a [u8])>,
}

pub fn e<'a>(path: &'a str, kind: EntryType, data: &'a [u8]) -> Entry<'a> {
    let mode = if kind == EntryType::Directory { 0o755 } else { 0o644 };
    Entry {
        path,
        kind,
        data,
        mode,
        uid: 0,
        xattrs: Vec::new(),
    }
}

pub fn dir(path: &str) -> Entry<'_> {
    e(path, EntryType::Directory, b"")
}
pub fn file<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
    e(path, EntryType::Regular, data)
}
pub fn symlink<'a>(path: &'a str, target: &'a str) -> Entry<'a> {
    e(path, EntryType::Symlink, target.as_bytes())
}
pub fn hardlink<'a>(path: &'a str, target: &'a str) -> Entry<'a> {
    e(path, EntryType::Link, target.as_bytes())
}

pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        if !entry.xattrs.is_empty() {
            let records: Vec<(String, &[u8])> = entry
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                .collect();
            builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..entry.path.len()].copy_from_slice(entry.path.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(1_700_000_000);
        let mut size = 0;
        match entry.kind {
            EntryType::Symlink | EntryType::Link => {
                header.as_old_mut().linkname[..entry.data.len()].copy_from_slice(entry.data);
            }
            EntryType::Char | EntryType::Block => {
                header.set_device_major(1).unwrap();
                header.set_device_minor(3).unwrap();
            }
            EntryType::Regular => size = entry.data.len(),
            _ => {}
        }
        header.set_size(size as u64);
        header.set_cksum();
        builder.append(&header, &entry.data[..size]).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

pub fn digest(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    Digest::of(bytes).hex().to_string()
}

/// Layer kind for media types.
#[derive(Clone, Copy)]
pub enum Zip {
    Plain,
    Gzip,
    Zstd,
}

/// Writes an OCI image layout directory with one image named `name`.
/// Returns the image id (config digest).
pub fn oci_layout(out: &Path, name: Option<&str>, layers: &[(Vec<u8>, Zip)], created: &str) -> String {
    let blobs = out.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        fs::write(blobs.join(hex(bytes)), bytes).unwrap();
        json!({"digest": digest(bytes), "size": bytes.len()})
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, zip) in layers {
        diff_ids.push(digest(tar));
        let (blob, media_type) = match zip {
            Zip::Plain => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
            Zip::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Zip::Zstd => (zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
        };
        let mut d = put(&blob);
        d["mediaType"] = json!(media_type);
        descriptors.push(d);
    }
    let config = serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let mut config_descriptor = put(&config);
    config_descriptor["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": descriptors,
    }))
    .unwrap();
    let mut manifest_descriptor = put(&manifest);
    manifest_descriptor["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    if let Some(name) = name {
        manifest_descriptor["annotations"] = json!({"io.containerd.image.name": name});
    }
    let index = json!({"schemaVersion": 2, "manifests": [manifest_descriptor]});
    fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digest(&config)
}

/// Tars a directory (paths relative to it).
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut builder = tar::Builder::new(fs::File::create(out).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

// ---------------------------------------------------------------- harness

pub struct Env {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub root: Root,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let root = Root::new(base.join("root"));
        Env { _tmp: tmp, base, root }
    }

    pub fn store(&self) -> ImageStore {
        ImageStore::open(&self.root).unwrap()
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.root.path())
            .arg("image")
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth image {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn inspect(&self, image: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    pub fn count(&self, dir: &Path) -> usize {
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }
}

/// A multi-layer image: gzip base, zstd change, a whiteout layer, an
/// opaque-dir layer.
pub fn multi_layer_image(env: &Env) -> (PathBuf, String) {
    let mut setuid = file("bin/tool", b"#!tool");
    setuid.mode = 0o4755;
    setuid.uid = 1000;
    let mut tagged = file("etc/tagged", b"x");
    tagged.xattrs.push(("user.berth", b"yes"));
    let base = tar_of(&[
        dir("./"),
        dir("bin/"),
        dir("etc/"),
        file("etc/hello", b"hello\n"),
        file("etc/remove-me", b"bye\n"),
        hardlink("etc/hello-link", "etc/hello"),
        symlink("bin/hello", "../etc/hello"),
        symlink("bin/abs", "/etc/hello"),
        setuid,
        tagged,
        e("dev-null", EntryType::Char, b""),
        e("fifo", EntryType::Fifo, b""),
        dir("data/"),
        dir("data/opq/"),
        file("data/opq/old", b"old"),
    ]);
    let change = tar_of(&[dir("usr/"), file("usr/new", b"new"), file("etc/hello", b"hello v2\n")]);
    let whiteout = tar_of(&[dir("etc/"), file("etc/.wh.remove-me", b"")]);
    let opaque = tar_of(&[
        dir("data/opq/"),
        file("data/opq/.wh..wh..opq", b""),
        file("data/opq/fresh", b"f"),
    ]);
    let layout = env.base.join("layout");
    let id = oci_layout(
        &layout,
        Some("berth-test/multi:v1"),
        &[
            (base, Zip::Gzip),
            (change, Zip::Zstd),
            (whiteout, Zip::Plain),
            (opaque, Zip::Gzip),
        ],
        "2024-01-02T03:04:05Z",
    );
    let archive = env.base.join("layout.tar");
    tar_dir(&layout, &archive);
    (archive, id)
}
