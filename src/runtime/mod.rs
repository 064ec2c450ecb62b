//! The container runtime: lifecycle, init, rootfs, cgroups, security,
//! exec, logs and the per-container monitor. It knows nothing of compose.

pub mod attach;
pub mod caps;
pub mod cgroups;
pub mod config;
pub mod console;
pub mod container;
pub mod create;
pub mod exec;
pub mod faults;
pub mod files;
pub mod fork;
pub mod fresh_netns;
pub mod hooks;
pub mod init;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod monitor_spawn;
pub mod overlay_mount;
pub mod ports;
pub mod rootfs;
pub mod seccomp;
pub mod user;
pub mod volume_mount;
