//! Building the container's root filesystem inside its mount namespace:
//! overlay of the image's snapshots, Docker's default mounts and devices,
//! user mounts, `pivot_root`, masked and read-only paths.
//!
//! Every function here runs in the container's init, after
//! `unshare(CLONE_NEWNS)` and `/` made `rslave`, so nothing mounted here is
//! visible on the host and all of it disappears with the namespace.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use thiserror::Error;

use super::cgroups::CgroupTree;
use super::config::{ContainerConfig, DeviceNode, MountKind};

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("mount {what} on {target}: {errno}")]
    Mount { what: String, target: String, errno: Errno },
    #[error("{action} {path}: {errno}")]
    Path {
        action: &'static str,
        path: String,
        errno: Errno,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("pivot_root into {0}: {1}")]
    Pivot(String, Errno),
}

/// `mount(2)` with the context a user needs when it fails.
pub(super) fn do_mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    mount(source, target, fstype, flags, data).map_err(|errno| RootfsError::Mount {
        what: fstype.or(source).unwrap_or("bind").to_string(),
        target: target.display().to_string(),
        errno,
    })
}

pub(super) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// Joins `path` under `root`, resolving symlinks as if `root` were `/`, so
/// a symlink in the image can never send a mount target outside the rootfs
/// (the class of bug behind runc's CVE-2021-30465).
pub fn scoped_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(&resolved).join(&part);
        match fs::read_link(&candidate) {
            Ok(target) if hops < 40 => {
                hops += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
            _ => resolved.push(&part),
        }
    }
    // Components are plain names now; strip anything else defensively.
    let clean: PathBuf = resolved
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    root.join(clean)
}

/// Makes every mount of this (new) mount namespace a slave of the host's,
/// so nothing mounted from here on propagates back to the host.
pub fn make_root_rslave() -> Result<(), Errno> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
}

/// The overlay of the image's layers with the container's upper dir;
/// `volatile` skips the syncs of the upper layer (see [`UpperSync`]).
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    sync: UpperSync,
    target: &Path,
) -> Result<(), RootfsError> {
    sync.prepare_work_dir(work)?;
    let mut data: Vec<String> = overlay_options(layers, upper, work)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if sync == UpperSync::Volatile {
        data.push("volatile".into());
    }
    do_mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data.join(",")),
    )
}

/// The overlay's options for `layers` (lowest first): overlayfs wants the
/// topmost lower layer first.
/// Whether an overlay syncs its upper layer.
///
/// Unmounting an overlay syncs the whole filesystem under its upper dir
/// (overlayfs' `sync_fs` calls `sync_filesystem` on it): on a host whose
/// disk has other dirty data that is a journal commit and writeback, a
/// millisecond to many, at the end of every container. A container that
/// is removed when it ends (`--rm`) loses its upper dir anyway, so its
/// overlay is mounted `volatile` (Linux 5.10), which skips those syncs
/// (podman does the same for `--rm`). A crash may leave such an upper
/// dir incomplete, which only matters to a container nobody keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpperSync {
    Synced,
    Volatile,
}

impl UpperSync {
    /// `Volatile` for a container removed when it ends.
    pub fn for_container(config: &ContainerConfig) -> Self {
        match config.removed_on_exit {
            true => UpperSync::Volatile,
            false => UpperSync::Synced,
        }
    }

    /// Readies `work` for a mount: a volatile overlay's marker from its
    /// last mount goes ([`clear_volatile_marker`]). Only a volatile overlay
    /// leaves one, and a container's overlay is always mounted the same
    /// way, so a synced mount has nothing to look for.
    pub(super) fn prepare_work_dir(self, work: &Path) -> Result<(), RootfsError> {
        match self {
            UpperSync::Volatile => clear_volatile_marker(work),
            UpperSync::Synced => Ok(()),
        }
    }
}

/// A `volatile` mount leaves `WORK/work/incompat/volatile` behind, and
/// overlayfs refuses any later mount of that work dir while it exists (so
/// that nobody reuses an upper dir a crash may have left incomplete).
/// berth mounts only throwaway containers volatile, and mounts one again
/// only to restart it or copy files from it after it stopped: the marker
/// goes first.
fn clear_volatile_marker(work: &Path) -> Result<(), RootfsError> {
    let incompat = work.join("work").join("incompat");
    match fs::remove_dir_all(&incompat) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("removing", &incompat)(e)),
        _ => Ok(()),
    }
}

pub(super) fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> [(&'static str, String); 3] {
    let lower: Vec<String> = layers.iter().rev().map(|p| p.display().to_string()).collect();
    [
        ("lowerdir", lower.join(":")),
        ("upperdir", upper.display().to_string()),
        ("workdir", work.display().to_string()),
    ]
}

pub(super) fn ensure_dir(path: &Path) -> Result<(), RootfsError> {
    fs::create_dir_all(path).map_err(io_err("creating directory", path))
}

fn ensure_file(path: &Path) -> Result<(), RootfsError> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    if !path.exists() {
        fs::File::create(path).map_err(io_err("creating file", path))?;
    }
    Ok(())
}

/// Docker's default mounts (`daemon/pkg/oci/defaults.go`) but the cgroup
/// tree, which needs the container's cgroup namespace
/// ([`mount_cgroup_tree`]), and the device nodes.
pub fn mount_defaults(rootfs: &Path, config: &ContainerConfig) -> Result<(), RootfsError> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc_dir = rootfs.join("proc");
    ensure_dir(&proc_dir)?;
    do_mount(Some("proc"), &proc_dir, Some("proc"), nosuid_noexec_nodev, None)?;

    let dev = rootfs.join("dev");
    ensure_dir(&dev)?;
    do_mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    let pts = dev.join("pts");
    ensure_dir(&pts)?;
    do_mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    ensure_dir(&shm)?;
    let shm_size = if config.shm_size == 0 {
        64 * 1024 * 1024
    } else {
        config.shm_size
    };
    do_mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        nosuid_noexec_nodev,
        Some(&format!("mode=1777,size={shm_size}")),
    )?;
    let mqueue = dev.join("mqueue");
    ensure_dir(&mqueue)?;
    do_mount(Some("mqueue"), &mqueue, Some("mqueue"), nosuid_noexec_nodev, None)?;

    let sys = rootfs.join("sys");
    ensure_dir(&sys)?;
    let sys_flags = nosuid_noexec_nodev
        | if config.privileged {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
    do_mount(Some("sysfs"), &sys, Some("sysfs"), sys_flags, None)?;
    if config.privileged {
        // Docker gives a privileged container every host device (and the
        // cgroup allows "a"); read now, at start, as Docker does. Still
        // the host's /dev: the init has not pivoted yet.
        let mut devices = host_devices(Path::new("/dev"), "/dev");
        devices.extend(config.devices.iter().cloned());
        return create_devices(&dev, &devices);
    }
    create_devices(&dev, &config.devices)
}

/// The device nodes under `dir` (shown in the container under `prefix`),
/// skipping what runc's `devices.GetDevices` skips (its own mounts `pts`,
/// `shm`, `mqueue`, `fuse`, tool state dirs, `console`, fifos, symlinks)
/// and `ptmx`, which stays the link to the container's devpts (runc
/// `setupPtmx`). Unreadable entries are skipped.
pub fn host_devices(dir: &Path, prefix: &str) -> Vec<DeviceNode> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let path = format!("{}/{name}", prefix.trim_end_matches('/'));
        let kind = meta.file_type();
        if kind.is_dir() {
            if !matches!(
                name.as_str(),
                "pts" | "shm" | "fuse" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                found.extend(host_devices(&entry.path(), &path));
            }
            continue;
        }
        let kind = match () {
            _ if kind.is_char_device() => 'c',
            _ if kind.is_block_device() => 'b',
            _ => continue,
        };
        if matches!(name.as_str(), "console" | "ptmx") && prefix == "/dev" {
            continue;
        }
        let rdev = meta.rdev();
        found.push(DeviceNode {
            path,
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: "rwm".into(),
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// `/sys/fs/cgroup` of the container, once it is in its cgroup namespace
/// (after [`mount_defaults`] mounted `/sys`).
pub fn mount_cgroup_tree(rootfs: &Path, config: &ContainerConfig, tree: &CgroupTree) -> Result<(), RootfsError> {
    mount_cgroups(&rootfs.join("sys/fs/cgroup"), config.privileged, tree)
}

/// The container's view of its own cgroups, read-only: cgroup2 on a
/// unified host; on v1/hybrid hosts a tmpfs with one mount per hierarchy
/// (in the container's cgroup namespace the root is its own cgroup).
fn mount_cgroups(target: &Path, privileged: bool, tree: &CgroupTree) -> Result<(), RootfsError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let ro = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let CgroupTree::V1(hierarchies) = tree else {
        return do_mount(Some("cgroup2"), target, Some("cgroup2"), flags | ro, None);
    };
    do_mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some("mode=755"))?;
    for (name, controllers) in hierarchies {
        let dir = target.join(name);
        ensure_dir(&dir)?;
        do_mount(Some("cgroup"), &dir, Some("cgroup"), flags | ro, Some(controllers))?;
        // cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if name.contains(',') {
            for alias in name.split(',') {
                let _ = symlink(name, target.join(alias));
            }
        }
    }
    if !privileged {
        do_mount(
            None,
            target,
            None,
            MsFlags::MS_REMOUNT | flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// The runtime-spec default devices, then the configured ones, plus the
/// standard /dev symlinks.
fn create_devices(dev: &Path, extra: &[DeviceNode]) -> Result<(), RootfsError> {
    const DEFAULTS: &[(&str, u64, u64)] = &[
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    // A fresh tmpfs, and root makes them: nothing to replace or chown.
    for (name, major, minor) in DEFAULTS {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*major, *minor),
        )
        .map_err(|errno| RootfsError::Path {
            action: "mknod",
            path: path.display().to_string(),
            errno,
        })?;
    }
    for node in extra {
        let path = scoped_join(dev.parent().unwrap_or(dev), &node.path);
        if let Some(parent) = path.parent() {
            ensure_dir(parent)?;
        }
        make_node(&path, node.kind, node.major, node.minor, node.mode, node.uid, node.gid)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        symlink(target, dev.join(link)).map_err(io_err("creating symlink", &dev.join(link)))?;
    }
    Ok(())
}

fn make_node(
    path: &Path,
    kind: char,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), RootfsError> {
    let sflag = match kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let _ = fs::remove_file(path);
    mknod(path, sflag, Mode::from_bits_truncate(mode), makedev(major, minor)).map_err(|errno| RootfsError::Path {
        action: "mknod",
        path: path.display().to_string(),
        errno,
    })?;
    nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).map_err(|errno| RootfsError::Path {
        action: "chown",
        path: path.display().to_string(),
        errno,
    })
}

/// `-v` binds and volumes, `--tmpfs` mounts, and the /etc files berth
/// manages.
pub fn mount_user_mounts(
    rootfs: &Path,
    config: &ContainerConfig,
    etc_files: &[(PathBuf, &str)],
) -> Result<(), RootfsError> {
    for (source, target) in etc_files {
        let dest = scoped_join(rootfs, target);
        ensure_file(&dest)?;
        do_mount(source.to_str(), &dest, None, MsFlags::MS_BIND, None)?;
    }
    for m in &config.mounts {
        let dest = scoped_join(rootfs, &m.target);
        match m.kind {
            MountKind::Bind => {
                let source = m.source.clone().unwrap_or_default();
                if source.is_dir() {
                    ensure_dir(&dest)?;
                } else {
                    ensure_file(&dest)?;
                }
                let source_str = source.display().to_string();
                do_mount(Some(&source_str), &dest, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
                let flags = bind_flags(m.read_only, &m.options);
                if !flags.is_empty() {
                    // Flags are ignored on the first bind: remount to apply.
                    do_mount(
                        None,
                        &dest,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_REC | flags,
                        None,
                    )?;
                }
            }
            MountKind::Volume => super::volume_mount::mount(&dest, m)?,
            MountKind::Tmpfs => {
                ensure_dir(&dest)?;
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                let data = m.options.join(",");
                do_mount(
                    Some("tmpfs"),
                    &dest,
                    Some("tmpfs"),
                    flags,
                    (!data.is_empty()).then_some(data.as_str()),
                )?;
            }
        }
    }
    Ok(())
}

/// The per-mount flags of a bind's OCI options (CDI mounts carry `ro`,
/// `nosuid`, `nodev`, …); propagation and `bind`/`rbind` need no remount.
fn bind_flags(read_only: bool, options: &[String]) -> MsFlags {
    let mut flags = MsFlags::empty();
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    for option in options {
        flags |= match option.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            _ => MsFlags::empty(),
        };
    }
    flags
}

/// Makes `rootfs` the root: the `pivot_root(".", ".")` dance runc and youki
/// use, which needs no temporary directory inside the image.
pub fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let pivot_err = |errno| RootfsError::Pivot(rootfs.display().to_string(), errno);
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(pivot_err)?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(pivot_err)?;
    nix::unistd::fchdir(&new).map_err(pivot_err)?;
    nix::unistd::pivot_root(".", ".").map_err(pivot_err)?;
    nix::unistd::fchdir(&old).map_err(pivot_err)?;
    // MS_SLAVE, not MS_PRIVATE: runc PR #1500 — unmounting must not
    // propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(pivot_err)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(pivot_err)?;
    nix::unistd::chdir("/").map_err(pivot_err)
}

/// Docker's masked paths: directories get an empty read-only tmpfs, files
/// get /dev/null; missing paths are skipped.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Identical in Docker, containerd, runc and crun.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub fn mask_paths() -> Result<(), RootfsError> {
    for path in MASKED_PATHS {
        let p = Path::new(path);
        let Ok(meta) = fs::metadata(p) else { continue };
        if meta.is_dir() {
            do_mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None)?;
        } else {
            do_mount(Some("/dev/null"), p, None, MsFlags::MS_BIND, None)?;
        }
    }
    Ok(())
}

pub fn readonly_paths() -> Result<(), RootfsError> {
    for path in READONLY_PATHS {
        let p = Path::new(path);
        if !p.exists() {
            continue;
        }
        do_mount(Some(path), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        do_mount(
            Some(path),
            p,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// `--read-only`: the root becomes read-only (mounts below keep theirs).
pub fn remount_root_readonly() -> Result<(), RootfsError> {
    do_mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    )
}

/// Writes `--sysctl` values through /proc/sys (before it is read-only).
pub fn apply_sysctls(sysctls: &std::collections::BTreeMap<String, String>) -> Result<(), RootfsError> {
    for (key, value) in sysctls {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(io_err("writing sysctl", &path))?;
    }
    Ok(())
}

/// A C string for exec, refusing interior NULs.
pub fn cstring(s: &str) -> Result<CString, RootfsError> {
    CString::new(s).map_err(|_| RootfsError::Path {
        action: "converting",
        path: s.to_string(),
        errno: Errno::EINVAL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volatile_marker_goes_and_the_rest_of_the_work_dir_stays() {
        let work = tempfile::tempdir().unwrap();
        let dirty = work.path().join("work/incompat/volatile/dirty");
        fs::create_dir_all(&dirty).unwrap();
        fs::write(work.path().join("work/keep"), b"").unwrap();
        clear_volatile_marker(work.path()).unwrap();
        assert!(!work.path().join("work/incompat").exists());
        assert!(work.path().join("work/keep").exists());
        // Nothing to clear is fine too (a first mount, a synced overlay).
        clear_volatile_marker(work.path()).unwrap();
    }

    #[test]
    fn bind_options_become_remount_flags() {
        let options: Vec<String> = ["ro", "nosuid", "nodev", "rbind", "rprivate"]
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            bind_flags(false, &options),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
        );
        assert_eq!(bind_flags(true, &[]), MsFlags::MS_RDONLY);
        assert!(bind_flags(false, &["rbind".to_string()]).is_empty());
    }

    #[test]
    fn scoped_join_never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        symlink("../../..", root.join("usr/lib/up")).unwrap();
        symlink("lib", root.join("usr/lib64")).unwrap();
        assert_eq!(scoped_join(root, "/etc-link/passwd"), root.join("etc/passwd"));
        assert_eq!(scoped_join(root, "/usr/lib/up/x"), root.join("x"));
        assert_eq!(scoped_join(root, "/usr/lib/up/up/x"), root.join("up/x"));
        assert_eq!(scoped_join(root, "../../../x"), root.join("x"));
        assert_eq!(scoped_join(root, "/usr/lib64/a"), root.join("usr/lib/a"));
        // A symlink loop ends instead of spinning.
        symlink("loop", root.join("loop")).unwrap();
        assert!(scoped_join(root, "/loop/x").starts_with(root));
    }

    #[test]
    fn host_devices_lists_nodes_like_runc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["pts", "net", "shm"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        fs::write(root.join("file"), "").unwrap();
        symlink("/proc/self/fd", root.join("fd")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let nodes = [
            ("kmsg", 1, 11),
            ("console", 5, 1),
            ("ptmx", 5, 2),
            ("net/tun", 10, 200),
            ("pts/0", 136, 0),
            ("shm/x", 1, 3),
        ];
        for (name, major, minor) in nodes {
            if mknod(
                &root.join(name),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o640),
                makedev(major, minor),
            )
            .is_err()
            {
                return; // not root: nothing to list
            }
        }
        let found: Vec<(String, u64, u64, u32)> = host_devices(root, "/dev")
            .into_iter()
            .map(|d| (d.path, d.major, d.minor, d.mode))
            .collect();
        assert_eq!(
            found,
            vec![
                ("/dev/kmsg".into(), 1, 11, 0o640),
                ("/dev/net/tun".into(), 10, 200, 0o640)
            ]
        );
    }
}
