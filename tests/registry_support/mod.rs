//! A real registry for `tests/registry.rs`: Debian's docker-registry (the
//! CNCF distribution registry) on a free 127.0.0.1 port with its own
//! storage, optionally behind htpasswd auth; fixture images built as OCI
//! layouts here and pushed with skopeo; a throttling TCP proxy to break
//! transfers mid-blob. Nothing leaves loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use berth::image::Digest;
use serde_json::{json, Value};

pub const USER: &str = "berth";
pub const PASSWORD: &str = "s3cret-pass";

/// Installs docker-registry, skopeo and htpasswd once per test binary,
/// under a file lock so parallel test binaries do not race apt.
pub fn fixtures() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let lock = fs::File::create(std::env::temp_dir().join("berth-registry-fixtures.lock")).unwrap();
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/registry-fixtures.sh");
        let status = Command::new("bash").arg(script).status().unwrap();
        assert!(status.success(), "scripts/registry-fixtures.sh failed");
    });
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running registry, killed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Registry {
    pub fn start(with_auth: bool) -> Registry {
        Self::start_with(with_auth, "")
    }

    /// With `extra` appended to the config (top-level YAML sections).
    pub fn start_with(with_auth: bool, extra: &str) -> Registry {
        fixtures();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if with_auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(out.status.success());
            fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        config.push_str(extra);
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut registry = Registry { dir, port, child: None };
        registry.restart();
        registry
    }

    /// (Re)starts the process on the same port and storage.
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// GETs of a blob in the access log, over all repositories.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest} ")))
            .count()
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Pushes an OCI layout (all platforms) as `repo:tag`.
    pub fn push(&self, layout: &Path, target: &str, creds: bool) {
        let mut command = Command::new("skopeo");
        command.args([
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if creds {
            command.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        let out = command
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{target}", self.host()))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- images

/// GOARCH of this host, as image configs name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Deterministic incompressible bytes (xorshift).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tar with one file.
pub fn layer(path: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data).unwrap();
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An OCI layout directory being built.
pub struct Layout {
    pub dir: PathBuf,
}

/// One image written into a layout.
pub struct Built {
    /// Its manifest's descriptor.
    pub descriptor: Value,
    pub manifest: String,
    pub config: String,
    pub layers: Vec<String>,
}

impl Layout {
    pub fn new(dir: PathBuf) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    pub fn blob(&self, bytes: &[u8], media_type: &str) -> Value {
        let digest = Digest::of(bytes);
        fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// An image of `layers` (tar bytes; gzip-compressed when `gzip`).
    pub fn image(&self, arch: &str, layers: &[(Vec<u8>, bool)]) -> Built {
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, zip) in layers {
            diff_ids.push(Digest::of(tar).to_string());
            descriptors.push(if *zip {
                self.blob(&gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                self.blob(tar, "application/vnd.oci.image.layer.v1.tar")
            });
        }
        let config = serde_json::to_vec(&json!({
            "created": "2024-05-06T07:08:09Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let config = self.blob(&config, "application/vnd.oci.image.config.v1+json");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": descriptors,
        }))
        .unwrap();
        let descriptor = self.blob(&manifest, "application/vnd.oci.image.manifest.v1+json");
        Built {
            manifest: descriptor["digest"].as_str().unwrap().to_string(),
            config: config["digest"].as_str().unwrap().to_string(),
            layers: descriptors
                .iter()
                .map(|d| d["digest"].as_str().unwrap().to_string())
                .collect(),
            descriptor,
        }
    }

    /// Makes `top` the layout's only entry.
    pub fn finish(&self, top: &Value) {
        let index = json!({"schemaVersion": 2, "manifests": [top]});
        fs::write(self.dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// An OCI index of `images` with their platforms; returns its descriptor.
    pub fn index(&self, images: &[(&Built, &str)]) -> Value {
        let manifests: Vec<Value> = images
            .iter()
            .map(|(built, arch)| {
                let mut d = built.descriptor.clone();
                d["platform"] = json!({"os": "linux", "architecture": arch});
                d
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap();
        self.blob(&index, "application/vnd.oci.image.index.v1+json")
    }
}

// ---------------------------------------------------------------- berth

/// An engine root and a home (credential files) of its own.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let home = tmp.path().join("home");
        fs::create_dir_all(&home).unwrap();
        Env { tmp, root, home }
    }

    pub fn berth(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.berth_env(args, stdin, &[])
    }

    /// As [`Env::berth`], with more environment variables.
    pub fn berth_env(&self, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            // Whatever a test gets wrong, https never leaves this host
            // (port 9, discard: nothing listens there).
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .envs(vars.iter().copied())
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
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args, None);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expects failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args, None);
        assert!(
            !out.status.success(),
            "berth {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn inspect(&self, image: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["image", "inspect", image])).unwrap();
        v[0].clone()
    }

    pub fn store(&self) -> berth::image::ImageStore {
        berth::image::ImageStore::open(&berth::store::Root::new(&self.root)).unwrap()
    }

    /// No image, and nothing half-written in the root's staging area.
    pub fn assert_no_image(&self) {
        assert_eq!(self.ok(&["image", "ls", "-q"]), "", "no image after a failed pull");
        let tmp = self.root.join("tmp");
        let left: Vec<_> = fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "staging left behind: {left:?}");
    }
}

// ---------------------------------------------------------------- fake HTTP

/// What a [`FakeHttp`] answers: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 for what the
/// real registry cannot play (Docker Hub's search API, a registry without
/// a catalog). Records each request line; stops on drop.
pub struct FakeHttp {
    pub port: u16,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start(answer: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("").to_string();
                let mut parts = line.split(' ');
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, headers, body) = answer(method, target);
                seen.lock().unwrap().push(line.clone());
                let mut reply = format!(
                    "HTTP/1.1 {status} Fake\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    reply.push_str(&format!("{name}: {value}\r\n"));
                }
                reply.push_str("\r\n");
                let _ = stream.write_all(reply.as_bytes());
                if method != "HEAD" {
                    let _ = stream.write_all(&body);
                }
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
        FakeHttp { port, requests, stop }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// ---------------------------------------------------------------- proxy

/// A TCP proxy to a local port that passes answers on slowly, so a test
/// can act in the middle of a transfer; counts the bytes it passed on.
pub struct Proxy {
    pub port: u16,
    pub passed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, chunk: usize, pause: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let passed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (passed.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return; // dropping the client closes it, like a dead host
                    };
                    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_in, &mut s_out);
                        let _ = s_out.shutdown(Shutdown::Write);
                    });
                    let (mut server, mut client) = (server, client);
                    let mut buf = vec![0_u8; chunk];
                    loop {
                        match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if client.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                counter.fetch_add(n as u64, Ordering::Relaxed);
                                std::thread::sleep(pause);
                            }
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy { port, passed, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
