//! Helpers for tests that run real containers: a private engine root per
//! test, the busybox fixture image, the built binary, and a residue check
//! that proves a test left no mounts, cgroups, processes, links, nftables
//! tables, network records or container state behind.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod stack;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth::store::Root;

/// Root is required: these tests create namespaces, mounts and cgroups.
/// Without it they fail loudly rather than skip.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "runtime integration tests need root (namespaces, overlayfs, cgroups); run them as root"
    );
}

/// The busybox root filesystem tarball, built once by scripts/fixtures.sh.
pub fn busybox_tarball() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTH_BUSYBOX_TAR") {
        return PathBuf::from(path);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures");
    let tar = dir.join("busybox-rootfs.tar");
    std::fs::create_dir_all(&dir).unwrap();
    // Several test binaries run at once: build under a lock.
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    if !tar.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures.sh");
        let status = Command::new(&script).arg(&dir).status().unwrap();
        assert!(
            status.success(),
            "{} failed: cannot build the busybox fixture",
            script.display()
        );
    }
    tar
}

/// A private engine root with the busybox image imported.
pub struct Engine {
    pub dir: tempfile::TempDir,
    pub root: Root,
}

impl Engine {
    pub fn new() -> Engine {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = Root::new(dir.path().join("root"));
        root.ensure().unwrap();
        let store = berth::image::ImageStore::open(&root).unwrap();
        store
            .import_rootfs(&busybox_tarball(), "busybox:latest", &["CMD [\"sh\"]".to_string()])
            .unwrap();
        Engine { dir, root }
    }

    /// Runs `berth --root <root> ARGS…`.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything this root still owns on the host.
    pub fn residue(&self) -> Vec<String> {
        let mut left = Vec::new();
        let root = self.root.path().to_string_lossy().into_owned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains(&root))
                .map(|l| format!("mount: {l}")),
        );
        left.extend(
            berth::runtime::cgroups::leftover_cgroups(&format!("berth-{}", self.root.tag()))
                .into_iter()
                .map(|p| format!("cgroup: {}", p.display())),
        );
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == std::process::id() as i32 {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&root) {
                left.push(format!("process {pid}: {cmdline}"));
            }
        }
        // Links this root made (bridges and veth host ends carry an alias
        // naming the root's tag), its nftables table, its network records.
        let tag = self.root.tag();
        if let Ok(out) = Command::new("ip").args(["-o", "link"]).output() {
            left.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains(&format!("berth:{tag}")))
                    .map(|l| format!("link: {l}")),
            );
        }
        if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
            let table = berth::network::nat::table_name(&tag);
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim().ends_with(&table))
            {
                left.push(format!("nft table {table}"));
            }
        }
        left.extend(
            berth::network::NetworkStore::new(&self.root)
                .list()
                .unwrap_or_default()
                .into_iter()
                .map(|n| format!("network record: {}", n.name)),
        );
        if let Ok(entries) = std::fs::read_dir(self.root.containers_dir()) {
            left.extend(
                entries
                    .flatten()
                    .map(|e| format!("container state: {}", e.path().display())),
            );
        }
        left
    }

    /// Like [`Engine::assert_no_residue`], for a test that keeps networks
    /// on purpose: their bridges, the root's nft table and the network
    /// records are not counted (veths still are).
    pub fn assert_no_residue_but_networks(&self) {
        let bridge_alias = format!("berth:{}:", self.root.tag());
        self.assert_none_left(|item| {
            !(item.starts_with("nft table")
                || item.starts_with("network record:")
                || (item.starts_with("link:") && item.contains(&bridge_alias)))
        });
    }

    /// Asserts nothing is left, waiting briefly for exiting monitors.
    pub fn assert_no_residue(&self) {
        self.assert_none_left(|_| true);
    }

    fn assert_none_left(&self, counted: impl Fn(&String) -> bool) {
        let residue = || -> Vec<String> { self.residue().into_iter().filter(|i| counted(i)).collect() };
        let mut left = residue();
        for _ in 0..100 {
            if left.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            left = residue();
        }
        panic!("residue left behind:\n{}", left.join("\n"));
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Best effort, so one failing test does not poison the next run.
        if let Ok(containers) = berth::runtime::container::list(&self.root) {
            for c in containers {
                let _ = berth::runtime::lifecycle::remove(&self.root, &c, true);
            }
        }
        // A failed network test must not leave its bridge (and the route
        // to its subnet) to break the next run.
        let networks = berth::network::NetworkStore::new(&self.root);
        for record in networks.list().unwrap_or_default() {
            let _ = berth::network::bridge::teardown(&self.root, &record);
        }
    }
}

/// An engine for network tests: NAT needs the `nft` command, which
/// scripts/test.sh installs; installing it here too keeps `cargo test`
/// alone working on a machine that has package lists.
pub fn network_engine() -> Engine {
    let present = Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", "nftables"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "installing nftables failed (run scripts/test.sh, which installs it)"
        );
    }
    Engine::new()
}

/// The IPv4 address of the host interface holding the default route.
pub fn host_address() -> std::net::Ipv4Addr {
    let out = Command::new("ip")
        .args(["-o", "-4", "route", "show", "default"])
        .output()
        .unwrap();
    let route = String::from_utf8_lossy(&out.stdout).into_owned();
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .expect("the host has a default route")
        .to_string();
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", &dev])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cidr = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap();
    cidr.split('/').next().unwrap().parse().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
