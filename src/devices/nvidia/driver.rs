//! The driver's user-space side: libraries, binaries, firmware and IPC
//! sockets a container needs for each `NVIDIA_DRIVER_CAPABILITIES` entry
//! (NVIDIA/libnvidia-container `src/nvc_info.c`).

use std::path::Path;

use super::gpus::list_dir;
use crate::devices::{under_root, NvidiaError};

/// A driver capability (nvidia-container-toolkit
/// `internal/config/image/capabilities.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Compute,
    Utility,
    Graphics,
    Video,
    Display,
    Compat32,
    Ngx,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Compute,
        Capability::Utility,
        Capability::Graphics,
        Capability::Video,
        Capability::Display,
        Capability::Compat32,
        Capability::Ngx,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Compute => "compute",
            Capability::Utility => "utility",
            Capability::Graphics => "graphics",
            Capability::Video => "video",
            Capability::Display => "display",
            Capability::Compat32 => "compat32",
            Capability::Ngx => "ngx",
        }
    }

    /// Library stems (`libcuda` for `libcuda.so.*`).
    fn libraries(self) -> &'static [&'static str] {
        match self {
            Capability::Utility => &["libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq"],
            Capability::Compute => &[
                "libcuda",
                "libcudadebugger",
                "libnvidia-ptxjitcompiler",
                "libnvidia-nvvm",
                "libnvidia-opencl",
                "libnvidia-allocator",
                "libnvidia-gpucomp",
                "libnvidia-pkcs11",
                "libnvidia-pkcs11-openssl3",
            ],
            Capability::Video => &[
                "libvdpau_nvidia",
                "libnvidia-encode",
                "libnvidia-opticalflow",
                "libnvcuvid",
            ],
            Capability::Graphics => &[
                "libnvidia-eglcore",
                "libnvidia-glcore",
                "libnvidia-tls",
                "libnvidia-glsi",
                "libnvidia-fbc",
                "libnvidia-rtcore",
                "libnvoptix",
                "libnvidia-glvkspirv",
                "libGLX_nvidia",
                "libEGL_nvidia",
                "libGLESv2_nvidia",
                "libGLESv1_CM_nvidia",
            ],
            Capability::Ngx => &["libnvidia-ngx"],
            // Display needs the X driver modules, compat32 the 32-bit
            // libraries; neither is discovered here.
            Capability::Display | Capability::Compat32 => &[],
        }
    }

    fn binaries(self) -> &'static [&'static str] {
        match self {
            Capability::Utility => &["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced"],
            Capability::Compute => &["nvidia-cuda-mps-control", "nvidia-cuda-mps-server"],
            _ => &[],
        }
    }
}

/// Library directories: the root's `/etc/ld.so.conf.d/*.conf` entries, then
/// the standard multiarch and lib64 directories (ldconfig's order).
pub(super) fn library_dirs(root: &Path) -> Result<Vec<String>, NvidiaError> {
    let mut dirs: Vec<String> = Vec::new();
    for conf in list_dir(root, "/etc/ld.so.conf.d")? {
        if !conf.ends_with(".conf") {
            continue;
        }
        let path = under_root(root, &format!("/etc/ld.so.conf.d/{conf}"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // `include` and `hwcap` lines are skipped: the driver's directory is
        // listed directly in the files that matter (`x86_64-linux-gnu.conf`,
        // the driver package's own conf).
        dirs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with('/'))
                .map(str::to_owned),
        );
    }
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
    ] {
        dirs.push(dir.to_owned());
    }
    let mut seen = std::collections::BTreeSet::new();
    dirs.retain(|d| seen.insert(d.trim_end_matches('/').to_owned()));
    Ok(dirs)
}

/// The kernel module's version: `NVRM version: NVIDIA UNIX x86_64 Kernel
/// Module  550.54.15  …` in `/proc/driver/nvidia/version`; failing that,
/// the suffix of a `libcuda.so.<version>` in `dirs`.
pub(super) fn driver_version(root: &Path, dirs: &[String]) -> Result<Option<String>, NvidiaError> {
    if let Ok(text) = std::fs::read_to_string(under_root(root, "/proc/driver/nvidia/version")) {
        let line = text.lines().find(|l| l.starts_with("NVRM version")).unwrap_or_default();
        if let Some(v) = line.split_whitespace().find(|t| is_version(t)) {
            return Ok(Some(v.to_owned()));
        }
    }
    for dir in dirs {
        for name in list_dir(root, dir)? {
            if let Some(v) = name.strip_prefix("libcuda.so.").filter(|v| is_version(v)) {
                return Ok(Some(v.to_owned()));
            }
        }
    }
    Ok(None)
}

/// `550.54.15` or `535.104` (not the soname's `1`).
fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Host paths of the libraries of `caps`: the `<stem>.so.<version>` files
/// and the soname links to them (`libcuda.so.1`), so that the container
/// finds them without an ldcache update. Without a known version, every
/// `<stem>.so.*`. The first directory holding a name wins.
pub(super) fn libraries(
    root: &Path,
    dirs: &[String],
    version: Option<&str>,
    caps: &[Capability],
) -> Result<Vec<String>, NvidiaError> {
    let stems: Vec<&str> = caps.iter().flat_map(|c| c.libraries().iter().copied()).collect();
    let mut found: Vec<(String, String)> = Vec::new();
    for dir in dirs {
        for name in list_dir(root, dir)? {
            let Some((stem, suffix)) = name.split_once(".so.") else {
                continue;
            };
            if !stems.contains(&stem) || found.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let host = format!("{}/{name}", dir.trim_end_matches('/'));
            let wanted = match version {
                None => true,
                Some(v) if suffix == v => true,
                Some(v) => std::fs::read_link(under_root(root, &host))
                    .ok()
                    .and_then(|target| target.file_name().map(|t| t.to_string_lossy().into_owned()))
                    .is_some_and(|target| target == format!("{stem}.so.{v}")),
            };
            if wanted {
                found.push((name, host));
            }
        }
    }
    Ok(found.into_iter().map(|(_, host)| host).collect())
}

/// Host paths of the binaries of `caps`, first hit in the usual `PATH`.
pub(super) fn binaries(root: &Path, caps: &[Capability]) -> Vec<String> {
    let mut found = Vec::new();
    for name in caps.iter().flat_map(|c| c.binaries().iter()) {
        let hit = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"]
            .iter()
            .map(|dir| format!("{dir}/{name}"))
            .find(|path| under_root(root, path).is_file());
        if let Some(path) = hit {
            if !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// Other host paths the driver's user space expects: the persistenced
/// socket (`nvc_internal.h`) and the GSP firmware of the running driver
/// (`lookup_firmwares`).
pub(super) fn extras(root: &Path, version: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    let socket = "/var/run/nvidia-persistenced/socket";
    if under_root(root, socket).symlink_metadata().is_ok() {
        found.push(socket.to_owned());
    }
    if let Some(v) = version {
        let firmware = format!("/lib/firmware/nvidia/{v}");
        if under_root(root, &firmware).is_dir() {
            found.push(firmware);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_version("550.54.15"));
        assert!(is_version("535.104"));
        assert!(!is_version("1"));
        assert!(!is_version("1.x"));
        assert!(!is_version("Module"));
    }
}
