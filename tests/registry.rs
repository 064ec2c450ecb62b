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
