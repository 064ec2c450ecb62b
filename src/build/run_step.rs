//! RUN: the command runs in a container of the image so far (its layers
//! as overlay lowers, a fresh upper), then the upper dir becomes the new
//! layer and the container is removed, whatever happened.
//!
//! Network: the host's network namespace (docker build's `--network
//! host`). It reaches whatever the host reaches (package registries
//! included) without a per-build bridge, NAT rules or addresses to clean
//! up; `RUN --network=none` gets no network at all.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::BuildError;
use crate::runtime::attach::FrameKind;
use crate::runtime::container::{self, Container};
use crate::runtime::create::{self, CreateOptions, ImageInfo};
use crate::runtime::lifecycle;
use crate::store::Root;

/// How many output lines a failure quotes.
const TAIL_LINES: usize = 10;

/// What one RUN needs.
pub struct RunRequest<'a> {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `RUN --network`: `none`, or the host's (`host`/`default`).
    pub network: Option<&'a str>,
    /// The image's layers, lowest first.
    pub layers: Vec<PathBuf>,
    /// Output lines go here, prefixed (the build's progress stream).
    pub progress: &'a mut dyn FnMut(&str),
}

/// The container of one RUN; removed (with its cgroup and mounts) on
/// drop, so no error path leaves it behind.
pub struct RunContainer<'a> {
    root: &'a Root,
    container: Option<Container>,
}

impl RunContainer<'_> {
    pub fn upper(&self) -> Option<PathBuf> {
        self.container.as_ref().map(Container::upper)
    }
}

impl Drop for RunContainer<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.container.take() {
            let _ = lifecycle::remove(self.root, &c, true);
        }
    }
}

/// Runs the command to completion; on success returns the container
/// (stopped) for its upper dir to be committed.
pub fn run<'a>(root: &'a Root, request: RunRequest) -> Result<RunContainer<'a>, BuildError> {
    let network = match request.network {
        None | Some("default") | Some("host") => "host",
        Some("none") => "none",
        Some(other) => {
            return Err(BuildError::invalid(format!(
                "RUN --network={other} is not supported: use default, host or none"
            )))
        }
    };
    let options = CreateOptions {
        image: "berth-build".to_string(),
        command: request.argv.clone(),
        env: request.env.clone(),
        workdir: request.workdir.clone(),
        user: request.user.clone(),
        network: Some(network.to_string()),
        labels: vec!["berth.build=1".to_string()],
        ..CreateOptions::default()
    };
    // No VOLUMEs: docker build mounts none during RUN either.
    let image = ImageInfo {
        id: String::new(),
        name: "berth-build".to_string(),
        layers: request.layers.clone(),
        ..ImageInfo::default()
    };
    let id = container::new_id();
    let name = format!("berth-build-{}", &id[..12.min(id.len())]);
    let config = create::build(&options, &image, &id, &name, Vec::new(), &container::now_rfc3339())
        .map_err(BuildError::runtime)?;
    let created = lifecycle::create(root, config).map_err(BuildError::runtime)?;
    let guard = RunContainer {
        root,
        container: Some(created.clone()),
    };
    let (_, mut client) = lifecycle::start_attached(root, &created).map_err(BuildError::runtime)?;
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut partial = String::new();
    let mut code = None;
    let mut emit = |line: &str, tail: &mut VecDeque<String>| {
        (request.progress)(line);
        tail.push_back(line.to_string());
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    };
    loop {
        let (open, frames) = client
            .receive()
            .map_err(|e| BuildError::io("reading the output of", &created.dir)(e))?;
        for (kind, payload) in frames {
            match kind {
                FrameKind::Stdout | FrameKind::Stderr => {
                    partial.push_str(&String::from_utf8_lossy(&payload));
                    while let Some(end) = partial.find('\n') {
                        let line: String = partial.drain(..=end).collect();
                        emit(line.trim_end_matches(['\n', '\r']), &mut tail);
                    }
                }
                FrameKind::Exit => {
                    let bytes: [u8; 4] = payload.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0, 0, 0, 1]);
                    code = Some(i32::from_be_bytes(bytes));
                }
                _ => {}
            }
        }
        if !open || code.is_some() {
            break;
        }
    }
    if !partial.is_empty() {
        emit(partial.trim_end(), &mut tail);
    }
    // The monitor records the exit after reporting it: wait for the state
    // so removal finds a stopped container.
    let recorded = lifecycle::wait_exit(&created, None).map_err(BuildError::runtime)?;
    let code = code.or(recorded).unwrap_or(0);
    if code != 0 {
        return Err(BuildError::RunFailed {
            command: request.argv.join(" "),
            code,
            tail: tail.into_iter().collect(),
        });
    }
    remove_mount_placeholders(&created.upper(), &request.layers);
    Ok(guard)
}

/// The runtime creates mount points the image lacks (`/etc/hosts`,
/// `/etc/resolv.conf`, `/etc/hostname`, `/proc`, `/sys`, `/dev`) in the
/// upper dir; docker build does not ship them in the layer, nor do we.
fn remove_mount_placeholders(upper: &Path, lowers: &[PathBuf]) {
    let in_lower = |rel: &str| lowers.iter().any(|l| fs::symlink_metadata(l.join(rel)).is_ok());
    for rel in [
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
        "proc",
        "sys",
        "dev",
        "etc",
    ] {
        let path = upper.join(rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if in_lower(rel) {
            continue;
        }
        if meta.is_file() && meta.len() == 0 {
            let _ = fs::remove_file(&path);
        } else if meta.is_dir() {
            // Only when empty: remove_dir refuses otherwise.
            let _ = fs::remove_dir(&path);
        }
    }
}

/// Prints `#N <line>` progress lines to stderr.
pub fn stderr_progress(step: usize, quiet: bool) -> impl FnMut(&str) {
    move |line: &str| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "#{step} {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_go_unless_the_image_has_them() {
        let upper = tempfile::tempdir().unwrap();
        let lower = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir_all(u.join("etc")).unwrap();
        fs::create_dir_all(u.join("proc")).unwrap();
        fs::write(u.join("etc/hosts"), "").unwrap();
        fs::write(u.join("etc/resolv.conf"), "").unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::write(lower.path().join("etc/resolv.conf"), "x").unwrap();
        fs::create_dir_all(u.join("sys/keep")).unwrap();
        remove_mount_placeholders(u, &[lower.path().to_path_buf()]);
        assert!(!u.join("etc/hosts").exists());
        assert!(u.join("etc/resolv.conf").exists(), "the image has one: a change");
        assert!(!u.join("proc").exists());
        assert!(u.join("sys/keep").exists());
    }
}
