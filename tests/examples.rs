//! The example stacks under examples/, run end to end as a user would:
//! `up` each one with its compose.test.yaml override (stand-in images
//! built offline by scripts/stand-in-images.sh), use it through its
//! published ports, `down`, and find nothing left behind.
//!
//! Each test has its own engine root, project, 10.204.x.0/24 subnet (a
//! generated override) and host ports 184xx (the examples read their
//! ports from the environment), so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{network_engine, stderr, stdout, Engine};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// Where the stand-in tarballs are cached between runs.
fn stand_in_dir() -> PathBuf {
    Path::new(MANIFEST).join("target/fixtures/stand-ins")
}

/// One example, run from its own directory with a private root.
struct Example {
    engine: Engine,
    dir: PathBuf,
    files: Vec<PathBuf>,
    project: String,
    env: Vec<(String, String)>,
}

impl Example {
    /// examples/NAME with compose.yaml, compose.test.yaml and an override
    /// putting the default network on `subnet`.
    fn new(name: &str, project: &str, subnet: &str) -> Example {
        let engine = network_engine();
        let dir = Path::new(MANIFEST).join("examples").join(name);
        let network = engine.dir.path().join("network.yaml");
        std::fs::write(
            &network,
            format!("networks:\n  default:\n    ipam:\n      config:\n        - subnet: {subnet}\n"),
        )
        .unwrap();
        // hello needs no override: it runs the busybox image as it is.
        let files = [dir.join("compose.yaml"), dir.join("compose.test.yaml"), network]
            .into_iter()
            .filter(|f| f.exists())
            .collect();
        Example {
            files,
            engine,
            dir,
            project: project.to_string(),
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &str, value: &str) -> Example {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Imports the named stand-in images into this root, building them
    /// first if needed.
    fn stand_ins(&self, names: &[&str]) {
        let script = Path::new(MANIFEST).join("scripts/stand-in-images.sh");
        let out = Command::new(&script)
            .arg(stand_in_dir())
            .arg(self.engine.root.path())
            .args(names)
            .env("BERTH", env!("CARGO_BIN_EXE_berth"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} failed: cannot build the stand-in images {names:?}\n{}{}",
            script.display(),
            stdout(&out),
            stderr(&out)
        );
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .current_dir(&self.dir)
            .arg("--root")
            .arg(self.engine.root.path())
            .args(["-p", &self.project]);
        for file in &self.files {
            command.arg("-f").arg(file);
        }
        command.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out),
            self.diagnostics()
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// `ps`, the project's logs and the engine log, for failure messages.
    fn diagnostics(&self) -> String {
        let ps = self.run(&["ps", "-a"]);
        let logs = self.run(&["logs", "--no-color"]);
        let engine = std::fs::read_to_string(self.engine.root.path().join("engine.log")).unwrap_or_default();
        format!(
            "ps:\n{}\nlogs:\n{}{}\nengine log:\n{engine}",
            stdout(&ps),
            stdout(&logs),
            stderr(&logs)
        )
    }

    /// Stops the root's engine (auto-started by the verbs).
    fn stop_engine(&self) {
        let _ = self.engine.berth(&["engine", "--stop"]);
    }

    /// Polls `done` for up to `secs`; a timeout shows `ps`, the project's
    /// logs and the engine log.
    fn wait_for(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Nothing of the root may remain: containers, mounts, cgroups,
    /// processes (the engine stopped), networks, bridges, volumes.
    fn assert_nothing_left(&self) {
        self.stop_engine();
        self.engine.assert_no_residue();
        let networks = berth::network::NetworkStore::new(&self.engine.root).list().unwrap();
        assert!(networks.is_empty(), "networks left: {networks:?}");
        let volumes = berth::volume::VolumeStore::open(&self.engine.root)
            .unwrap()
            .list()
            .unwrap();
        assert!(volumes.is_empty(), "volumes left: {volumes:?}");
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        let tag = self.engine.root.tag();
        let text = stdout(&links);
        assert!(
            !text.contains(&format!("berth:{tag}")),
            "links of this root left:\n{text}"
        );
    }

    /// `down -v`, then nothing left.
    fn down_and_check(&self) {
        self.ok(&["down", "-v", "-t", "1"]);
        self.assert_nothing_left();
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        // A failed test must not leave its project or engine running.
        if std::thread::panicking() {
            let _ = self.run(&["down", "-v", "-t", "0"]);
        }
        self.stop_engine();
    }
}

/// One HTTP/1.0 GET of 127.0.0.1:PORT/PATH: the status code and body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((code, response[split + 4..].to_vec()))
}

/// GET until it answers 200 (the server may still be starting).
fn get_ok(example: &Example, port: u16, path: &str) -> Vec<u8> {
    let mut body = Vec::new();
    example.wait_for(&format!("GET :{port}{path}"), 30, || match get(port, path) {
        Ok((200, b)) => {
            body = b;
            true
        }
        _ => false,
    });
    body
}

#[test]
fn hello_serves_its_page_on_the_published_port() {
    let example = Example::new("hello", "ex-hello", "10.204.1.0/24").env("HELLO_PORT", "18401");
    let up = example.ok(&["up", "-d"]);
    assert!(up.contains("ex-hello-web-1  Healthy"), "{up}");
    let page = String::from_utf8(get_ok(&example, 18401, "/")).unwrap();
    assert!(page.contains("hello from berth"), "{page}");
    // The client reached the web by its service name on the network.
    example.wait_for("the client's fetch", 30, || {
        stdout(&example.run(&["logs", "--no-color", "client"])).contains("hello from berth")
    });
    example.down_and_check();
}

#[test]
fn web_db_answers_with_data_kept_in_the_db_volume() {
    let example = Example::new("web-db", "ex-webdb", "10.204.2.0/24").env("WEB_PORT", "18402");
    example.stand_ins(&["redis", "redis-web"]);
    let up = example.ok(&["up", "-d"]);
    // The web waited for the db's healthcheck.
    let healthy = up.find("ex-webdb-db-1  Healthy");
    let web_started = up.rfind("ex-webdb-web-1  Started");
    assert!(matches!((healthy, web_started), (Some(h), Some(w)) if h < w), "{up}");
    let set = example.ok(&["exec", "-T", "db", "redis-cli", "set", "greeting", "hello from redis"]);
    assert!(set.contains("OK"), "{set}");
    let body = get_ok(&example, 18402, "/cgi-bin/get?greeting");
    assert_eq!(String::from_utf8_lossy(&body), "hello from redis\n");
    // The data lives in the named volume: a new db container still has it.
    example.ok(&["down", "-t", "1"]);
    example.ok(&["up", "-d"]);
    let body = get_ok(&example, 18402, "/cgi-bin/get?greeting");
    assert_eq!(String::from_utf8_lossy(&body), "hello from redis\n");
    example.down_and_check();
}

/// The host's ffmpeg and ffprobe (Debian's ffmpeg), installed if missing
/// under the stand-ins' lock so two apt runs never race.
fn host_ffmpeg() {
    let present = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present("ffmpeg") && present("ffprobe") {
        return;
    }
    let dir = stand_in_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let install = || {
        Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=120",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "ffmpeg",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(
            install(),
            "the rtmp-hls test publishes with the host's ffmpeg: `apt-get install ffmpeg` failed"
        );
    }
    assert!(
        present("ffmpeg") && present("ffprobe"),
        "ffmpeg and ffprobe are still missing after installing Debian's ffmpeg"
    );
}

#[test]
fn rtmp_hls_repackages_a_published_stream_as_hls() {
    let example = Example::new("rtmp-hls", "ex-rtmp", "10.204.3.0/24")
        .env("RTMP_PORT", "18403")
        .env("HLS_PORT", "18404");
    example.stand_ins(&["nginx-rtmp"]);
    host_ffmpeg();
    // The publisher sits behind its profile.
    assert_eq!(example.ok(&["config", "--services"]), "rtmp\n");
    example.ok(&["up", "-d"]);
    get_ok(&example, 18404, "/health");

    let ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t",
            "5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-g",
            "25",
            "-c:a",
            "aac",
            "-f",
            "flv",
            "rtmp://127.0.0.1:18403/live/test",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The playlist appears once the first fragment is cut.
    let mut playlist = String::new();
    example.wait_for("an HLS playlist with a segment", 30, || {
        match get(18404, "/hls/test.m3u8") {
            Ok((200, body)) => {
                playlist = String::from_utf8_lossy(&body).into_owned();
                playlist.lines().any(|l| l.ends_with(".ts"))
            }
            _ => false,
        }
    });
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    assert!(playlist.contains("#EXT-X-TARGETDURATION:"), "{playlist}");
    let segment = playlist.lines().find(|l| l.ends_with(".ts")).unwrap().to_string();
    let (code, bytes) = get(18404, &format!("/hls/{segment}")).unwrap();
    assert_eq!(code, 200, "GET /hls/{segment}");
    let file = example.engine.dir.path().join("segment.ts");
    std::fs::write(&file, &bytes).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(probe.status.success(), "ffprobe {segment}: {}", stderr(&probe));
    let streams = stdout(&probe);
    assert!(streams.lines().any(|l| l == "h264,video"), "{streams}");
    assert!(streams.lines().any(|l| l == "aac,audio"), "{streams}");

    let published = ffmpeg.wait_with_output().unwrap();
    assert!(published.status.success(), "ffmpeg: {}", stderr(&published));
    example.down_and_check();
}

/// A fake NVIDIA driver without a CDI spec: two GPU nodes, the control
/// node and the /proc information naming them (as in tests/gpu.rs).
fn fake_nvidia() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-devroot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dev")).unwrap();
    for (name, minor) in [("nvidia0", 0), ("nvidia1", 1), ("nvidiactl", 255)] {
        nix::sys::stat::mknod(
            &root.join("dev").join(name),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(195, minor),
        )
        .unwrap();
    }
    for (bus, minor, uuid) in [
        ("0000:01:00.0", 0, "GPU-0a0a0a0a-1111-2222-3333-444455556666"),
        ("0000:41:00.0", 1, "GPU-1b1b1b1b-1111-2222-3333-444455556666"),
    ] {
        let info = root.join(format!("proc/driver/nvidia/gpus/{bus}/information"));
        std::fs::create_dir_all(info.parent().unwrap()).unwrap();
        std::fs::write(
            info,
            format!("Model: \t\t NVIDIA H200\nGPU UUID: \t {uuid}\nDevice Minor: \t {minor}\n"),
        )
        .unwrap();
    }
    dir
}

#[test]
fn llama_cpp_cuda_resolves_and_gets_the_gpus_it_reserves() {
    let example = Example::new("llama-cpp-cuda", "ex-llama", "10.204.4.0/24").env("LLAMA_PORT", "18405");

    // The example itself resolves, with the model from its .env.
    let dotenv = std::fs::read_to_string(example.dir.join(".env")).unwrap();
    let model = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("MODEL_FILE="))
        .expect("MODEL_FILE in examples/llama-cpp-cuda/.env");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(&example.dir)
        .args(["config", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "berth config: {}", stderr(&out));
    let config: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let llama = &config["services"]["llama"];
    assert_eq!(llama["image"], "ghcr.io/ggml-org/llama.cpp:server-cuda");
    let command: Vec<&str> = llama["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        command
            .windows(2)
            .any(|w| w == ["--model", &format!("/models/{model}")]),
        "{command:?}"
    );
    let device = &llama["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(device["driver"], "nvidia", "{llama}");
    assert_eq!(device["capabilities"][0], "gpu", "{llama}");

    // Without a GPU, `up` refuses the service by name and starts nothing.
    // (On a host with one, an empty device root stands for "none".)
    let empty = tempfile::Builder::new()
        .prefix("berth-devroot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut without_gpu = example.command(&["up", "-d"]);
    if Path::new("/dev/nvidiactl").exists() {
        without_gpu.env("BERTH_DEVICE_ROOT", empty.path());
    }
    let out = without_gpu.output().unwrap();
    assert_ne!(out.status.code(), Some(0), "up without a GPU must fail");
    assert!(
        stderr(&out).contains("service \"llama\" requests a GPU, but this host has none"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // No container, mount, cgroup or process is left. The project's
    // network and volume, created in the plan's first wave, stay until
    // `down` (as with docker compose).
    example.stop_engine();
    let left: Vec<String> = example
        .engine
        .residue()
        .into_iter()
        .filter(|l| {
            !["link: ", "nft table ", "network record: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(left.is_empty(), "a failed up left:\n{}", left.join("\n"));
    example.ok(&["down", "-v", "-t", "1"]);
    example.assert_nothing_left();

    // With the fake driver (the engine restarted to see it), the container
    // gets every GPU node and the visibility env.
    let nvidia = fake_nvidia();
    let example = example.env("BERTH_DEVICE_ROOT", nvidia.path().to_str().unwrap());
    example.ok(&["up", "-d"]);
    let mut logs = String::new();
    example.wait_for("the container's device listing", 30, || {
        logs = stdout(&example.run(&["logs", "--no-color", "--no-log-prefix", "llama"]));
        logs.contains("NVIDIA_VISIBLE_DEVICES=")
    });
    let nodes: Vec<String> = logs
        .lines()
        .filter(|l| l.starts_with('c'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[f.len() - 1], f[4], f[5])
        })
        .collect();
    assert_eq!(
        nodes,
        ["/dev/nvidia0 195, 0", "/dev/nvidia1 195, 1", "/dev/nvidiactl 195, 255"],
        "{logs}"
    );
    assert!(logs.contains("NVIDIA_VISIBLE_DEVICES=all"), "{logs}");
    example.down_and_check();
}
