//! What a container is: its configuration (fixed at create) and its state
//! (changing), both stored as JSON in the container's directory.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cgroups::Resources;

/// A mount beyond the defaults (`-v`, `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Host path for binds and directory volumes; the device of a volume
    /// with an `fstype`; unused for tmpfs.
    pub source: Option<PathBuf>,
    pub target: String,
    pub read_only: bool,
    /// tmpfs `size=`/`mode=` etc.; a volume's mount data (`o=`).
    pub options: Vec<String>,
    /// The named volume this mount comes from: what `volume rm` checks
    /// before removing it, and `rm -v` removes when anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// A volume that is its own filesystem (`tmpfs`, `ext4`, …), mounted
    /// from `source` in the container; `None` binds `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    /// `-v NAME:/path:nocopy`: no copy-up of the image's content.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Tmpfs,
    /// A named volume; an empty one is first filled with the image's
    /// content at the target (docker's copy-up).
    Volume,
}

/// A device node made in the container's /dev (`--device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    pub path: String,
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub access: String,
}

/// When an OCI hook runs (runtime-spec `config.md#posix-platform-hooks`);
/// `runtime::hooks` documents where each stage runs in berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookStage {
    /// Deprecated in the runtime spec; runs with `createRuntime`.
    Prestart,
    /// In the runtime's namespaces once the container process exists.
    CreateRuntime,
    /// In the container's mount namespace before `pivot_root`, where the
    /// host's binaries are still reachable (`nvidia-cdi-hook` runs here).
    CreateContainer,
    /// In the container, after `pivot_root`, just before the command.
    StartContainer,
    /// In the runtime's namespaces once the command runs; failure warns.
    Poststart,
    /// In the runtime's namespaces once the container is gone; failure warns.
    Poststop,
}

impl HookStage {
    /// From the OCI (and CDI `hookName`) spelling.
    pub fn from_name(name: &str) -> Option<HookStage> {
        Some(match name {
            "prestart" => HookStage::Prestart,
            "createRuntime" => HookStage::CreateRuntime,
            "createContainer" => HookStage::CreateContainer,
            "startContainer" => HookStage::StartContainer,
            "poststart" => HookStage::Poststart,
            "poststop" => HookStage::Poststop,
            _ => return None,
        })
    }

    /// The OCI spelling, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            HookStage::Prestart => "prestart",
            HookStage::CreateRuntime => "createRuntime",
            HookStage::CreateContainer => "createContainer",
            HookStage::StartContainer => "startContainer",
            HookStage::Poststart => "poststart",
            HookStage::Poststop => "poststop",
        }
    }
}

impl std::fmt::Display for HookStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An OCI hook: a host program run at one lifecycle point with the
/// container's state JSON on stdin (CDI `hooks`, NVIDIA's
/// `nvidia-cdi-hook`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub stage: HookStage,
    /// Absolute path of the program.
    pub path: String,
    /// The whole argv, `argv[0]` included (as in the runtime spec); empty
    /// means just the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The hook's entire environment (`NAME=VALUE`): nothing is inherited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds before the hook is killed and the start fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `nofile`, `nproc`, … as in `--ulimit`.
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace joined to berth bridge networks
    /// ([`ContainerConfig::networks`]) by veth pairs.
    Bridge,
}

/// A link: `alias` is another name for `target` (a container name,
/// hostname or network alias), seen only by the container that has it
/// (docker's per-endpoint link aliases on user-defined networks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub target: String,
    pub alias: String,
}

/// One bridge network a container is joined to, resolved at create time
/// (the address is allocated in the network's record then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network: String,
    /// The kernel name of the network's bridge.
    pub bridge: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// `--network-alias`: extra names the container has on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The host end of the veth pair (`network::veth_name`).
    pub veth_host: String,
    /// The network's MTU, given to both ends of the veth.
    pub mtu: u32,
    /// An internal network gives the container no default route.
    #[serde(default)]
    pub internal: bool,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `-p`: a host address and port forwarded by the monitor to the
/// container's first bridge address. The host port is always concrete
/// (an ephemeral one is picked at create time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    Default,
    Unconfined,
    Profile(PathBuf),
}

/// Everything needed to start the container, resolved at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// Snapshot directories of the image, lowest first.
    pub layers: Vec<PathBuf>,
    /// The process: argv after entrypoint/cmd resolution.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// The `--user` spec as given (resolved inside the rootfs at start).
    pub user: String,
    pub group_add: Vec<String>,
    pub hostname: String,
    pub domainname: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub devices: Vec<DeviceNode>,
    pub resources: Resources,
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    pub rlimits: Vec<Rlimit>,
    pub sysctls: BTreeMap<String, String>,
    pub shm_size: u64,
    pub init: bool,
    pub tty: bool,
    pub interactive: bool,
    pub stop_signal: String,
    pub stop_timeout: u64,
    pub network: NetworkMode,
    /// The bridge networks of [`NetworkMode::Bridge`], in order: the
    /// `i`th is `eth<i>` inside, and the first gives the default route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkAttachment>,
    /// `-p`: ports published on the host (bridge networks only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
    /// `--add-host NAME:IP`, `host-gateway` already resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<(String, std::net::Ipv4Addr)>,
    /// `--dns`, `--dns-search`, `--dns-option`: replace the host's values
    /// in the container's resolv.conf when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// compose `links:`: names that this container alone resolves, through
    /// the engine's DNS server, to what their target resolves to on the
    /// container's networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// The container's monitor removes it when it ends (`run --rm -d`).
    pub auto_remove: bool,
    /// The container is removed when it ends, by its monitor or by the
    /// `run` that waits for it (`--rm`, docker's `AutoRemove`): its
    /// rootfs is a throwaway ([`super::rootfs::UpperSync`]).
    #[serde(default)]
    pub removed_on_exit: bool,
    pub labels: BTreeMap<String, String>,
    /// Log rotation: bytes per file (0 = unlimited) and files kept.
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub created: String,
    /// OCI hooks (from CDI device specs), run by `runtime::hooks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// Run by the engine; `None` when there is none (or it is disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// A healthcheck run by the engine through `exec` (docker's
/// `Config.Healthcheck`); durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["CMD", …]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
    pub retries: u32,
}

/// What the engine does when the container exits (docker's
/// `HostConfig.RestartPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// At most `max_retries` restarts (0: unlimited).
    OnFailure {
        max_retries: u32,
    },
}

/// Lifecycle states, as docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
    Dead,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
            Status::Dead => "dead",
        })
    }
}

/// What changes over a container's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// Host pid of the container's pid 1 while running.
    pub pid: Option<i32>,
    /// Host pid of its monitor while running.
    pub monitor_pid: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Why the start failed, if it did.
    pub error: Option<String>,
    /// Set by `stop`/`kill` so a restart policy does not resurrect it.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Set by `restart` before it stops the container: the monitor keeps
    /// a container it would remove at exit (`run --rm -d`), as docker
    /// does after a manual restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarting: bool,
}

impl ContainerState {
    pub fn created() -> Self {
        ContainerState {
            status: Status::Created,
            pid: None,
            monitor_pid: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            stopped_by_user: false,
            restarting: false,
        }
    }
}
