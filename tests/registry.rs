//! Pulling from a real registry on 127.0.0.1 (Debian's docker-registry),
//! with images pushed by skopeo: by tag and digest, with credentials,
//! per platform, and through failures (corrupt blob, registry killed
//! mid-blob, dead mirror, unknown names), each leaving no partial image.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth::image::registry::credentials::CredentialStore;
use berth::image::registry::{Progress, PullOptions, Puller};
use berth::store::Root;
use registry_support::*;

/// A two-layer image (gzip + plain) pushed as `repo:tag`.
fn small_image(registry: &Registry, env: &Env, repo_tag: &str, creds: bool) -> Built {
    let layout = Layout::new(
        env.tmp
            .path()
            .join(format!("layout-{}", repo_tag.replace([':', '/'], "-"))),
    );
    let built = layout.image(
        host_arch(),
        &[
            (layer("etc/hello", b"hello from the registry\n"), true),
            (layer("data/blob", &random_bytes(300_000, 7)), false),
        ],
    );
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, repo_tag, creds);
    built
}

#[test]
fn pull_by_tag_then_up_to_date_then_by_digest() {
    let registry = Registry::start(false);
    let env = Env::new();
    let built = small_image(&registry, &env, "berth/app:v1", false);
    let image = format!("{}/berth/app:v1", registry.host());

    let out = env.ok(&["image", "pull", &image]);
    assert!(out.contains("v1: Pulling from berth/app"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {}", built.manifest)), "{out}");
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(out.lines().last().unwrap(), image);

    let ls = env.ok(&["image", "ls"]);
    assert!(
        ls.contains(&format!("{}/berth/app", registry.host())) && ls.contains(" v1 "),
        "{ls}"
    );
    let inspect = env.inspect(&image);
    assert_eq!(inspect["Id"], built.config.as_str());
    assert_eq!(inspect["Architecture"], host_arch());
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let resolved = env.store().resolve(&image).unwrap();
    assert_eq!(
        fs::read(resolved.layers[0].join("etc/hello")).unwrap(),
        b"hello from the registry\n"
    );
    assert_eq!(fs::read(resolved.layers[1].join("data/blob")).unwrap().len(), 300_000);

    // Again: HEAD says the manifest is stored; no blob is fetched again.
    let gets = registry.blob_gets(&built.layers[1]);
    assert_eq!(gets, 1);
    let again = env.ok(&["image", "pull", "-q", &image]);
    assert_eq!(again.trim(), image, "-q prints only the name");
    assert_eq!(registry.blob_gets(&built.layers[1]), 1);
    let again = env.ok(&["image", "pull", &image]);
    assert!(again.contains("Status: Image is up to date"), "{again}");

    // By digest, into another root.
    let other = Env::new();
    let by_digest = format!("{}/berth/app@{}", registry.host(), built.manifest);
    other.ok(&["image", "pull", &by_digest]);
    assert_eq!(other.inspect(&by_digest)["Id"], built.config.as_str());
    assert!(other.store().resolve(&by_digest).unwrap().layers[0]
        .join("etc/hello")
        .is_file());
}

#[test]
fn unknown_names_and_a_dead_registry_are_clear_errors() {
    let registry = Registry::start(false);
    let env = Env::new();
    small_image(&registry, &env, "berth/known:v1", false);
    let host = registry.host();

    let err = env.fails(&["image", "pull", &format!("{host}/berth/nothing:v1")]);
    assert!(err.contains(&format!("cannot pull {host}/berth/nothing:v1")), "{err}");
    assert!(err.contains("repository berth/nothing not found"), "{err}");

    let err = env.fails(&["image", "pull", &format!("{host}/berth/known:v2")]);
    assert!(err.contains("manifest v2 not found"), "{err}");

    let err = env.fails(&["image", "pull", "Bad_Name"]);
    assert!(err.contains("invalid reference"), "{err}");

    let dead = format!("127.0.0.1:{}/berth/known:v1", free_port());
    let err = env.fails(&["image", "pull", &dead]);
    assert!(
        err.contains(&format!("cannot pull {dead}")) && err.contains("cannot reach registry"),
        "{err}"
    );
    env.assert_no_image();
}

#[test]
fn login_with_password_stdin_then_pull_and_logout() {
    let registry = Registry::start(true);
    let env = Env::new();
    small_image(&registry, &env, "private/app:v1", true);
    let host = registry.host();
    let image = format!("{host}/private/app:v1");

    let err = env.fails(&["image", "pull", &image]);
    assert!(err.contains(&format!("{host} requires authentication")), "{err}");

    let wrong = env.berth(&["login", "-u", USER, "--password-stdin", &host], Some("wrong\n"));
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("refused the credentials"), "{err}");
    let auth_file = env.home.join(".config/berth/auth.json");
    assert!(!auth_file.exists(), "wrong credentials are not saved");

    let login = env.berth(
        &["login", "-u", USER, "--password-stdin", &host],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "Login Succeeded");
    assert_eq!(fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);
    env.ok(&["image", "pull", &image]);
    assert!(env.store().resolve(&image).is_ok());

    assert!(env.ok(&["logout", &host]).contains("Removing login credentials"));
    env.ok(&["image", "rm", &image]);
    assert!(env
        .fails(&["image", "pull", &image])
        .contains("requires authentication"));

    // A wrong password in docker's config.json is refused too, naming the image.
    let docker = env.home.join(".docker");
    fs::create_dir_all(&docker).unwrap();
    let auth = |pass: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{pass}"))
    };
    let config = |pass: &str| serde_json::json!({"auths": {host.clone(): {"auth": auth(pass)}}}).to_string();
    fs::write(docker.join("config.json"), config("nope")).unwrap();
    let err = env.fails(&["image", "pull", &image]);
    assert!(
        err.contains(&format!("cannot pull {image}")) && err.contains("refused the credentials"),
        "{err}"
    );
    env.assert_no_image();
    // …and a right one is used.
    fs::write(docker.join("config.json"), config(PASSWORD)).unwrap();
    env.ok(&["image", "pull", &image]);
}

#[test]
fn platform_is_chosen_from_a_multi_platform_index() {
    let registry = Registry::start(false);
    let env = Env::new();
    let layout = Layout::new(env.tmp.path().join("multi"));
    let amd64 = layout.image("amd64", &[(layer("arch", b"amd64\n"), true)]);
    let arm64 = layout.image("arm64", &[(layer("arch", b"arm64\n"), true)]);
    let index = layout.index(&[(&amd64, "amd64"), (&arm64, "arm64")]);
    layout.finish(&index);
    registry.push(&layout.dir, "berth/multi:v1", false);
    let image = format!("{}/berth/multi:v1", registry.host());

    env.ok(&["image", "pull", "--platform", "linux/arm64", &image]);
    let inspect = env.inspect(&image);
    assert_eq!(inspect["Id"], arm64.config.as_str());
    assert_eq!(inspect["Architecture"], "arm64");
    assert_eq!(
        fs::read(env.store().resolve(&image).unwrap().layers[0].join("arch")).unwrap(),
        b"arm64\n"
    );
    env.ok(&["image", "pull", "--platform", "linux/x86_64", &image]);
    assert_eq!(env.inspect(&image)["Id"], amd64.config.as_str());

    let other = Env::new();
    let err = other.fails(&["image", "pull", "--platform", "linux/s390x", &image]);
    assert!(err.contains(&format!("cannot pull {image}")), "{err}");
    assert!(
        err.contains("no image for platform linux/s390x (available: linux/amd64, linux/arm64)"),
        "{err}"
    );
    other.assert_no_image();
    let err = other.fails(&["image", "pull", "--platform", "linux", &image]);
    assert!(err.contains("invalid platform"), "{err}");
}

#[test]
fn a_corrupt_blob_is_refused_and_a_later_pull_succeeds() {
    let registry = Registry::start(false);
    let env = Env::new();
    let built = small_image(&registry, &env, "berth/corrupt:v1", false);
    let image = format!("{}/berth/corrupt:v1", registry.host());
    let data = registry.blob_data(&built.layers[1]);
    let good = fs::read(&data).unwrap();
    let mut bad = good.clone();
    bad[1000] ^= 0xff;
    fs::write(&data, &bad).unwrap();

    let err = env.fails(&["image", "pull", &image]);
    assert!(err.contains(&format!("cannot pull {image}")), "{err}");
    assert!(err.contains("does not match its digest"), "{err}");
    env.assert_no_image();
    let hex = built.layers[1].strip_prefix("sha256:").unwrap();
    assert!(!env.root.join("images/blobs/sha256").join(hex).exists());

    fs::write(&data, &good).unwrap();
    env.ok(&["image", "pull", &image]);
    assert_eq!(env.inspect(&image)["Id"], built.config.as_str());
}

#[test]
fn registry_killed_mid_blob_is_retried_then_fails_cleanly() {
    let mut registry = Registry::start(false);
    let env = Env::new();
    let layout = Layout::new(env.tmp.path().join("big"));
    let built = layout.image(host_arch(), &[(layer("big", &random_bytes(24 << 20, 3)), false)]);
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, "berth/big:v1", false);
    // ~8 MB/s through the proxy: the kill lands mid-blob.
    let proxy = Proxy::start(registry.port, 16 * 1024, Duration::from_millis(2));
    let image = format!("127.0.0.1:{}/berth/big:v1", proxy.port);

    let pull = {
        let (root, image) = (env.root.clone(), image.clone());
        std::thread::spawn(move || {
            let puller = Puller::with_credentials(&Root::new(&root), no_credentials()).unwrap();
            let started = std::time::Instant::now();
            let result = puller.pull(&image, &PullOptions::default(), &Progress::quiet());
            (result, started.elapsed())
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while proxy.passed.load(std::sync::atomic::Ordering::Relaxed) < 2 << 20 {
        assert!(std::time::Instant::now() < deadline, "the transfer never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    registry.kill();
    let (result, elapsed) = pull.join().unwrap();
    let err = result.unwrap_err().chain();
    assert!(err.starts_with(&format!("cannot pull {image}")), "{err}");
    assert!(err.contains(&format!("download of blob {}", built.layers[0])), "{err}");
    assert!(
        elapsed > Duration::from_millis(500),
        "retried with backoff before giving up: {elapsed:?}"
    );
    env.assert_no_image();

    registry.restart();
    let outcome = Puller::with_credentials(&Root::new(&env.root), no_credentials())
        .unwrap()
        .pull(&image, &PullOptions::default(), &Progress::quiet())
        .unwrap();
    assert_eq!(outcome.id.to_string(), built.config);
}

#[test]
fn a_dead_mirror_falls_through_to_the_next() {
    let registry = Registry::start(false);
    let env = Env::new();
    let built = small_image(&registry, &env, "library/mirrored:v1", false);
    fs::create_dir_all(&env.root).unwrap();
    let mirrors = serde_json::json!({"registry-mirrors": [
        format!("http://127.0.0.1:{}", free_port()),
        format!("http://{}/", registry.host()),
    ]});
    fs::write(env.root.join("config.json"), mirrors.to_string()).unwrap();

    let out = env.ok(&["image", "pull", "mirrored:v1"]);
    assert!(
        out.contains("failed") && out.contains("trying the next source"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), "docker.io/library/mirrored:v1");
    assert_eq!(env.inspect("mirrored:v1")["Id"], built.config.as_str());
    assert!(env.ok(&["image", "ls"]).contains("mirrored "));
}

#[test]
fn concurrent_pulls_download_shared_layers_once() {
    let registry = Registry::start(false);
    let env = Env::new();
    let base = layer("base", &random_bytes(3 << 20, 11));
    let middle = layer("middle", &random_bytes(2 << 20, 12));
    let mut shared = Vec::new();
    for (name, own) in [("one", 13), ("two", 14)] {
        let layout = Layout::new(env.tmp.path().join(name));
        let built = layout.image(
            host_arch(),
            &[
                (base.clone(), true),
                (middle.clone(), false),
                (layer(name, &random_bytes(1 << 20, own)), false),
            ],
        );
        layout.finish(&built.descriptor);
        registry.push(&layout.dir, &format!("berth/{name}:v1"), false);
        shared = built.layers[..2].to_vec();
    }
    let before: Vec<usize> = shared.iter().map(|d| registry.blob_gets(d)).collect();
    assert_eq!(before, vec![0, 0]);

    let root = Root::new(&env.root);
    std::thread::scope(|scope| {
        let pulls: Vec<_> = ["one", "two"]
            .iter()
            .map(|name| {
                let (root, image) = (&root, format!("{}/berth/{name}:v1", registry.host()));
                scope.spawn(move || {
                    Puller::with_credentials(root, no_credentials()).unwrap().pull(
                        &image,
                        &PullOptions::default(),
                        &Progress::quiet(),
                    )
                })
            })
            .collect();
        for pull in pulls {
            pull.join().unwrap().unwrap();
        }
    });
    for digest in &shared {
        assert_eq!(registry.blob_gets(digest), 1, "{digest} downloaded once");
    }
    let ls = env.ok(&["image", "ls"]);
    assert!(ls.contains("berth/one") && ls.contains("berth/two"), "{ls}");
    assert_eq!(
        fs::read_dir(env.root.join("images/downloads")).unwrap().count(),
        0,
        "no lock left"
    );
}

fn no_credentials() -> CredentialStore {
    CredentialStore {
        berth_file: std::env::temp_dir().join("berth-test-no-such-dir/auth.json"),
        docker_file: None,
    }
}

// ------------------------------------------------- unpack while downloading

/// A tar whose entries' names are written raw (the tar crate refuses `..`).
fn raw_layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Entries of the root's snapshot store and staging area.
fn store_residue(env: &Env) -> (Vec<String>, Vec<String>) {
    let list = |dir: &str| -> Vec<String> {
        fs::read_dir(env.root.join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (list("images/snapshots"), list("tmp"))
}

#[test]
fn layers_unpack_while_they_download() {
    let registry = Registry::start(false);
    let env = Env::new();
    let first = random_bytes(4 << 20, 21);
    let second = random_bytes(12 << 20, 22);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [("first", &first), ("second", &second)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let layout = Layout::new(env.tmp.path().join("streamed"));
    let built = layout.image(host_arch(), &[(tar, true)]);
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, "berth/streamed:v1", false);
    // A few MB/s: the 16 MB gzip blob takes seconds to arrive.
    let proxy = Proxy::start(registry.port, 16 * 1024, Duration::from_millis(2));
    let image = format!("127.0.0.1:{}/berth/streamed:v1", proxy.port);
    let blob = env
        .root
        .join("images/blobs/sha256")
        .join(built.layers[0].strip_prefix("sha256:").unwrap());

    let pull = {
        let (root, image) = (env.root.clone(), image.clone());
        std::thread::spawn(move || {
            Puller::with_credentials(&Root::new(&root), no_credentials())
                .unwrap()
                .pull(&image, &PullOptions::default(), &Progress::quiet())
        })
    };
    // The first file shows up whole in the staging snapshot while most of
    // the blob is still on its way.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (seen_at, blob_stored) = loop {
        let staged = fs::read_dir(env.root.join("tmp"))
            .map(|d| d.flatten().map(|e| e.path().join("fs/first")).collect::<Vec<_>>())
            .unwrap_or_default();
        if staged
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| m.len() == first.len() as u64))
        {
            break (proxy.passed.load(std::sync::atomic::Ordering::Relaxed), blob.exists());
        }
        if pull.is_finished() {
            panic!(
                "the pull ended before a staging snapshot was seen: {:?}",
                pull.join().unwrap().map_err(|e| e.chain())
            );
        }
        assert!(std::time::Instant::now() < deadline, "no staging snapshot appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        seen_at < (12 << 20),
        "the first file was unpacked after {seen_at} bytes of ~16 MB"
    );
    assert!(!blob_stored, "the blob is stored only once complete and verified");

    let outcome = pull.join().unwrap().unwrap();
    assert_eq!(outcome.id.to_string(), built.config);
    assert!(blob.is_file());
    let layers = env.store().resolve(&image).unwrap().layers;
    assert_eq!(fs::read(layers[0].join("first")).unwrap(), first);
    assert_eq!(fs::read(layers[0].join("second")).unwrap(), second);
    let (snapshots, staging) = store_residue(&env);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert!(staging.is_empty(), "staging left behind: {staging:?}");
}

#[test]
fn a_hostile_layer_is_refused_and_leaves_no_snapshot() {
    let registry = Registry::start(false);
    let env = Env::new();
    let layout = Layout::new(env.tmp.path().join("hostile"));
    let escape = format!("../escape-{}", std::process::id());
    let built = layout.image(
        host_arch(),
        &[
            (layer("etc/ok", b"fine\n"), true),
            (raw_layer(&[("a", b"a"), (&escape, b"pwned")]), true),
        ],
    );
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, "berth/hostile:v1", false);
    let image = format!("{}/berth/hostile:v1", registry.host());

    let err = env.fails(&["image", "pull", &image]);
    assert!(err.contains(&format!("cannot pull {image}")), "{err}");
    assert!(err.contains(&format!("layer {}", built.layers[1])), "{err}");
    assert!(err.contains("escapes the layer root"), "{err}");
    env.assert_no_image();
    let (snapshots, _) = store_residue(&env);
    assert!(snapshots.len() <= 1, "only the harmless layer may stay: {snapshots:?}");
    assert!(!env.root.join("images").join(&escape[3..]).exists());
    assert!(!env.root.join(&escape[3..]).exists());
}

#[test]
fn a_layer_whose_diff_id_does_not_match_is_not_published() {
    let registry = Registry::start(false);
    let env = Env::new();
    let layout = Layout::new(env.tmp.path().join("lying"));
    let tar = layer("etc/file", &random_bytes(200_000, 31));
    let blob = layout.blob(&gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip");
    let wrong = berth::image::Digest::of(b"another layer");
    let config = serde_json::json!({
        "architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [wrong.to_string()]},
    });
    let config = layout.blob(
        &serde_json::to_vec(&config).unwrap(),
        "application/vnd.oci.image.config.v1+json",
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [blob],
    });
    let top = layout.blob(
        &serde_json::to_vec(&manifest).unwrap(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    layout.finish(&top);
    registry.push(&layout.dir, "berth/lying:v1", false);
    let image = format!("{}/berth/lying:v1", registry.host());

    let err = env.fails(&["image", "pull", &image]);
    assert!(
        err.contains("uncompressed layer (diff id) does not match its digest") && err.contains(&wrong.to_string()),
        "{err}"
    );
    env.assert_no_image();
    let (snapshots, staging) = store_residue(&env);
    assert!(snapshots.is_empty() && staging.is_empty(), "{snapshots:?} {staging:?}");
}

#[test]
fn a_corrupt_gzip_blob_is_reported_as_corrupt_not_as_bad_gzip() {
    let registry = Registry::start(false);
    let env = Env::new();
    let layout = Layout::new(env.tmp.path().join("corrupt-gz"));
    let built = layout.image(host_arch(), &[(layer("data", &random_bytes(1 << 20, 41)), true)]);
    layout.finish(&built.descriptor);
    registry.push(&layout.dir, "berth/corrupt-gz:v1", false);
    let data = registry.blob_data(&built.layers[0]);
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    bytes.truncate(bytes.len() - 4); // and a gzip trailer that cannot check out
    bytes.extend_from_slice(b"JUNK");
    fs::write(&data, &bytes).unwrap();
    let image = format!("{}/berth/corrupt-gz:v1", registry.host());

    let err = env.fails(&["image", "pull", &image]);
    assert!(
        err.contains(&format!(
            "content of blob {} does not match its digest",
            built.layers[0]
        )),
        "{err}"
    );
    env.assert_no_image();
    let (snapshots, staging) = store_residue(&env);
    assert!(snapshots.is_empty() && staging.is_empty(), "{snapshots:?} {staging:?}");
    let hex = built.layers[0].strip_prefix("sha256:").unwrap();
    assert!(!env.root.join("images/blobs/sha256").join(hex).exists());
}
