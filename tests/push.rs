//! Pushing to a real registry on 127.0.0.1 (Debian's docker-registry):
//! the busybox fixture, a built image and a compose service's image, each
//! checked with skopeo (an independent client) and pulled back by digest
//! into a fresh engine root and run; skipped and mounted blobs; htpasswd
//! auth before and after `berth login`; and the bearer-token flow against
//! a real token server (tests/token_support).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod registry_support;
mod support;
mod token_support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use registry_support::{Registry, PASSWORD, USER};
use serde_json::Value;
use support::Engine;
use token_support::TokenServer;

/// berth on one engine root, as one user (a home of its own for
/// credentials), optionally in a project directory.
struct Berth {
    root: PathBuf,
    home: PathBuf,
    cwd: Option<PathBuf>,
}

impl Berth {
    fn new(root: &Path, home: PathBuf) -> Berth {
        fs::create_dir_all(&home).unwrap();
        Berth {
            root: root.to_path_buf(),
            home,
            cwd: None,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            // https never leaves this host (port 9: nothing listens).
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs, expects success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "berth {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expects failure, returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            !out.status.success(),
            "berth {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn login(&self, registry: &Registry) {
        let out = self.run(
            &["login", "-u", USER, "--password-stdin", &registry.host()],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The digest of the manifest the store holds for `image`.
    fn manifest_digest(&self, image: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["image", "inspect", image])).unwrap();
        v[0]["Descriptor"]["digest"].as_str().unwrap().to_string()
    }
}

/// A fresh engine root (no images) that removes its containers on drop.
struct Fresh {
    dir: tempfile::TempDir,
}

impl Fresh {
    fn new() -> Fresh {
        let dir = tempfile::Builder::new()
            .prefix("berth-push-")
            .tempdir_in("/var/tmp")
            .unwrap();
        Fresh { dir }
    }

    fn berth(&self) -> Berth {
        Berth::new(&self.dir.path().join("root"), self.dir.path().join("home"))
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let root = berth::store::Root::new(self.dir.path().join("root"));
        for c in berth::runtime::container::list(&root).unwrap_or_default() {
            let _ = berth::runtime::lifecycle::remove(&root, &c, true);
        }
    }
}

fn skopeo_inspect(reference: &str, creds: bool, raw: bool) -> Vec<u8> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if creds {
        command.arg(format!("--creds={USER}:{PASSWORD}"));
    }
    if raw {
        command.arg("--raw");
    }
    let out = command.arg(format!("docker://{reference}")).output().unwrap();
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Checks `reference` on the registry with skopeo: the digest is the
/// local one and the manifest bytes are those the store holds.
fn assert_on_registry(user: &Berth, local: &str, reference: &str, creds: bool) -> String {
    let digest = user.manifest_digest(local);
    let inspect: Value = serde_json::from_slice(&skopeo_inspect(reference, creds, false)).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str(), "{inspect}");
    let raw = skopeo_inspect(reference, creds, true);
    let store = berth::image::ImageStore::open(&berth::store::Root::new(&user.root)).unwrap();
    let stored = store
        .blobs()
        .read_blob(&berth::image::Digest::parse(&digest).unwrap())
        .unwrap();
    assert_eq!(raw, stored, "the registry holds the store's manifest bytes");
    digest
}

/// Pulls `name@digest` into a fresh root and runs `command` in it.
fn pull_back_and_run(name: &str, digest: &str, command: &[&str], creds_from: Option<&Registry>) -> String {
    let fresh = Fresh::new();
    let other = fresh.berth();
    if let Some(registry) = creds_from {
        other.login(registry);
    }
    let by_digest = format!("{name}@{digest}");
    let out = other.ok(&["image", "pull", &by_digest]);
    assert!(out.contains("Pull complete"), "{out}");
    let mut args = vec!["container", "run", "--rm", &by_digest];
    args.extend_from_slice(command);
    other.ok(&args)
}

#[test]
fn push_busybox_then_skip_existing_blobs_and_mount_across_repositories() {
    let registry = Registry::start(false);
    let engine = Engine::new();
    let user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    let target = format!("{}/test/busybox:v1", registry.host());
    user.ok(&["image", "tag", "busybox", &target]);

    let out = user.ok(&["image", "push", &target]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/test/busybox]",
            registry.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = assert_on_registry(&user, &target, &target, false);
    assert!(out.contains(&format!("v1: digest: {digest} size: ")), "{out}");
    assert_eq!(out.lines().last().unwrap(), target);

    // Again: every blob is there already; only the manifest is PUT.
    let again = user.ok(&["image", "push", &target]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");

    // Another repository of the same registry: blobs are mounted, not sent.
    let other = format!("{}/test/other:v1", registry.host());
    user.ok(&["image", "tag", &target, &other]);
    let mounted = user.ok(&["image", "push", &other]);
    assert!(mounted.contains(": Mounted from test/busybox"), "{mounted}");
    assert_on_registry(&user, &other, &other, false);

    // -q prints only the name.
    assert_eq!(user.ok(&["image", "push", "-q", &target]).trim(), target);

    let name = format!("{}/test/busybox", registry.host());
    let said = pull_back_and_run(&name, &digest, &["echo", "pushed and pulled"], None);
    assert_eq!(said.trim(), "pushed and pulled");

    // Unknown local image, digest target: clear errors, nothing sent.
    let err = user.fails(&["image", "push", &format!("{}/test/nothing:v1", registry.host())]);
    assert!(err.contains("not in the local store"), "{err}");
    let err = user.fails(&["image", "push", &format!("{name}@{digest}")]);
    assert!(err.contains("names a tag, not a digest"), "{err}");
    engine.assert_no_residue();
}

#[test]
fn push_to_an_htpasswd_registry_needs_login() {
    let registry = Registry::start(true);
    let engine = Engine::new();
    let user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    let target = format!("{}/private/busybox:1", registry.host());
    user.ok(&["image", "tag", "busybox:latest", &target]);

    let err = user.fails(&["image", "push", &target]);
    assert!(
        err.contains(&format!("cannot push {target} to {}/private/busybox", registry.host())),
        "{err}"
    );
    assert!(err.contains(&format!("berth login {}", registry.host())), "{err}");

    user.login(&registry);
    let out = user.ok(&["image", "push", &target]);
    assert!(out.contains(": Pushed"), "{out}");
    let digest = assert_on_registry(&user, &target, &target, true);
    let name = format!("{}/private/busybox", registry.host());
    let said = pull_back_and_run(&name, &digest, &["echo", "private"], Some(&registry));
    assert_eq!(said.trim(), "private");
}

#[test]
fn push_a_built_image_and_run_it_elsewhere() {
    let registry = Registry::start(false);
    let engine = Engine::new();
    let user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    let ctx = engine.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built-here > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
    )
    .unwrap();
    let target = format!("{}/test/built:1", registry.host());
    user.ok(&["image", "build", "-q", "-t", &target, ctx.to_str().unwrap()]);

    let out = user.ok(&["image", "push", &target]);
    assert_eq!(
        out.matches(": Pushed").count(),
        2,
        "the base layer and the RUN layer: {out}"
    );
    let digest = assert_on_registry(&user, &target, &target, false);
    let said = pull_back_and_run(&format!("{}/test/built", registry.host()), &digest, &[], None);
    assert_eq!(said.trim(), "built-here");
    engine.assert_no_residue();
}

#[test]
fn compose_push_sends_the_images_of_built_services() {
    let registry = Registry::start(false);
    let engine = Engine::new();
    let project = engine.dir.path().join("project");
    fs::create_dir_all(project.join("app")).unwrap();
    fs::write(
        project.join("app/Dockerfile"),
        "FROM busybox\nRUN echo app > /app.txt\n",
    )
    .unwrap();
    let image = format!("{}/stack/app:2", registry.host());
    let extra = format!("{}/stack/app:latest", registry.host());
    // `unreachable` names a registry that is not there (port 9).
    fs::write(
        project.join("compose.yaml"),
        format!(
            "name: pushstack\nservices:\n  app:\n    image: {image}\n    build:\n      context: ./app\n      tags: [\"{extra}\"]\n  \
             db:\n    image: busybox\n  unreachable:\n    image: 127.0.0.1:9/stack/app:2\n    build: ./app\n"
        ),
    )
    .unwrap();
    let mut user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    user.cwd = Some(project.clone());
    let built = user.run(&["build", "app", "unreachable"], None);
    let _ = user.run(&["engine", "--stop"], None);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    let out = user.ok(&["push", "app"]);
    assert!(out.contains(&format!("Pushing app: {image}")), "{out}");
    assert!(out.contains(&format!("Pushing app: {extra}")), "{out}");
    assert!(!out.contains("busybox"), "db has no build section: {out}");
    assert_on_registry(&user, &image, &image, false);
    assert_on_registry(&user, &image, &extra, false);

    let err = user.fails(&["push"]);
    assert!(err.contains("pushing service unreachable"), "{err}");
    assert!(err.contains("cannot reach registry 127.0.0.1:9"), "{err}");
    let out = user.run(&["push", "--ignore-push-failures"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("WARNING: pushing unreachable failed"), "{warned}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Layer already exists"));
    engine.assert_no_residue();
}

/// The bearer flow with a real token server: anonymous callers get pull
/// only, so a push needs `berth login`; the registry checks every token's
/// signature, issuer, audience and grants.
#[test]
fn pull_and_push_go_through_the_token_flow() {
    let engine = Engine::new();
    let tokens = TokenServer::start(engine.dir.path());
    let registry = tokens.registry();
    let user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    let target = format!("{}/tok/busybox:v1", registry.host());
    user.ok(&["image", "tag", "busybox", &target]);

    let err = user.fails(&["image", "push", &target]);
    assert!(err.contains(&format!("berth login {}", registry.host())), "{err}");
    let anonymous = tokens.requests();
    assert!(
        anonymous.iter().any(|r| r.scope == "repository:tok/busybox:pull,push"
            && r.user.is_none()
            && r.granted == ["tok/busybox:pull"]),
        "{anonymous:?}"
    );

    user.login(&registry);
    let out = user.ok(&["image", "push", &target]);
    assert!(out.contains(": Pushed"), "{out}");
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.scope == "repository:tok/busybox:pull,push"
                && r.user.as_deref() == Some(USER)
                && r.granted == ["tok/busybox:pull,push"]),
        "{:?}",
        tokens.requests()
    );
    let digest = user.manifest_digest(&target);

    // An anonymous pull in another root: a pull-scoped token.
    let before = tokens.requests().len();
    let said = pull_back_and_run(
        &format!("{}/tok/busybox", registry.host()),
        &digest,
        &["echo", "via token"],
        None,
    );
    assert_eq!(said.trim(), "via token");
    let pulls: Vec<_> = tokens.requests()[before..].to_vec();
    assert!(
        pulls
            .iter()
            .any(|r| r.scope == "repository:tok/busybox:pull" && r.user.is_none()),
        "{pulls:?}"
    );
    engine.assert_no_residue();
}

#[test]
fn a_build_pulls_its_base_from_the_registry() {
    let registry = Registry::start(false);
    let engine = Engine::new();
    let user = Berth::new(engine.root.path(), engine.dir.path().join("home"));
    let base = format!("{}/library/busybox:base", registry.host());
    user.ok(&["image", "tag", "busybox", &base]);
    user.ok(&["image", "push", "-q", &base]);
    engine.assert_no_residue();

    // A root that has never seen busybox: FROM pulls it.
    let fresh = Fresh::new();
    let builder = fresh.berth();
    let ctx = fresh.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo from-registry > /origin\n"),
    )
    .unwrap();
    builder.ok(&["image", "build", "-q", "-t", "derived:1", ctx.to_str().unwrap()]);
    let out = builder.ok(&["container", "run", "--rm", "derived:1", "cat", "/origin"]);
    assert_eq!(out.trim(), "from-registry");
}
