//! Host device paths (`--device`, compose `devices:`) as container nodes:
//! the type and numbers are read from the host node.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::runtime::config::DeviceNode;

#[derive(Debug, thiserror::Error)]
pub enum HostDeviceError {
    #[error("error gathering device information for {path:?}")]
    Stat {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a device node")]
    NotADevice { path: String },
}

/// `/dev/x[:/dev/y[:rwm]]` entries → nodes with the host's numbers.
pub fn device_nodes(specs: &[String]) -> Result<Vec<DeviceNode>, HostDeviceError> {
    let mut nodes = Vec::new();
    for spec in specs {
        let parts: Vec<&str> = spec.split(':').collect();
        let source = parts.first().copied().unwrap_or_default();
        let target = parts.get(1).filter(|t| t.starts_with('/')).copied().unwrap_or(source);
        let access = parts.last().filter(|p| !p.starts_with('/')).copied().unwrap_or("rwm");
        let meta = std::fs::metadata(source).map_err(|e| HostDeviceError::Stat {
            path: source.to_string(),
            source: e,
        })?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return Err(HostDeviceError::NotADevice {
                path: source.to_string(),
            });
        };
        let rdev = meta.rdev();
        nodes.push(DeviceNode {
            path: target.to_string(),
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: access.to_string(),
        });
    }
    Ok(nodes)
}
