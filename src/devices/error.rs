//! Errors of the device layer. Each names what to fix: the spec file, the
//! device or the service.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Loading CDI specs, resolving CDI names and merging their edits.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("cannot read CDI spec {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot parse CDI spec {path} as JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("cannot parse CDI spec {path} as YAML: {source}")]
    Yaml { path: PathBuf, source: serde_yaml::Error },
    #[error("CDI spec {path}: cdiVersion {version:?} is not a released CDI version (known: {known})")]
    UnknownVersion {
        path: PathBuf,
        version: String,
        known: String,
    },
    #[error("CDI spec {path}: {feature} needs cdiVersion {required} or later, but the spec declares {version}")]
    VersionTooLow {
        path: PathBuf,
        version: String,
        required: &'static str,
        feature: String,
    },
    #[error("CDI spec {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("invalid CDI device name {name:?}: {reason}; expected vendor.com/class=name")]
    InvalidName { name: String, reason: String },
    #[error("CDI kind {kind} (of {name}) is not defined by any spec in {dirs}")]
    UnknownKind { name: String, kind: String, dirs: String },
    #[error("CDI device {name} is not defined; {kind} defines {known}")]
    UnknownDevice { name: String, kind: String, known: String },
    #[error("CDI device {name} cannot be resolved because spec {path} failed to load: {source}")]
    BrokenSpec {
        name: String,
        path: PathBuf,
        source: Arc<CdiError>,
    },
    #[error("CDI device {name} is defined by both {first} and {second}, which have the same priority; remove one")]
    Ambiguous {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{first} and {second} conflict on {what}: {detail}")]
    Conflict {
        what: String,
        first: String,
        second: String,
        detail: String,
    },
    #[error("{device}: hook {path}: unknown hook name {name:?}")]
    UnknownHook { device: String, path: String, name: String },
    #[error("{device}: device node {path}: {reason}")]
    NodeInfo {
        device: String,
        path: String,
        reason: String,
    },
}

/// NVIDIA discovery and GPU selection without a CDI spec.
#[derive(Debug, thiserror::Error)]
pub enum NvidiaError {
    #[error("a GPU request may set count or device_ids, not both")]
    CountAndIds,
    #[error("{wanted} GPUs requested, but this host has {found}")]
    NotEnoughGpus { wanted: u64, found: usize },
    #[error("GPU {id:?} requested, but this host has no such GPU (GPUs: {known})")]
    UnknownGpu { id: String, known: String },
    #[error("GPU {id:?}: MIG devices need a CDI spec (nvidia-ctk cdi generate)")]
    Mig { id: String },
    #[error("unknown GPU capability {capability:?} (known: gpu, nvidia, compute, utility, graphics, video, display, compat32, ngx, all)")]
    UnknownCapability { capability: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// Turning a service's device requests into edits.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("service {service:?} requests a GPU, but this host has none: no /dev/nvidia* device nodes and no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi")]
    NoGpu { service: String },
    #[error("service {service:?}: device driver {driver:?} is not supported; use nvidia or cdi")]
    UnsupportedDriver { service: String, driver: String },
    #[error("service {service:?}: device request with capabilities [{capabilities}] has no driver berth knows; only GPU requests (capability gpu) are supported")]
    UnsupportedCapabilities { service: String, capabilities: String },
    #[error("service {service:?}: driver cdi {reason}")]
    CdiRequest { service: String, reason: String },
    #[error("service {service:?}: {source}")]
    Cdi { service: String, source: CdiError },
    #[error("service {service:?}: {source}")]
    Nvidia { service: String, source: NvidiaError },
    #[error("service {service:?}: its devices need {what}, which berth does not support")]
    Unsupported { service: String, what: String },
}
