//! Resolving a profile for one container: evaluate every rule's
//! `includes`/`excludes` against the container's capabilities, the native
//! architecture and the host kernel, and turn syscall names into numbers.
//! Pure: the kernel version is an input, so tests need no root.
//!
//! Semantics follow moby's `profiles/seccomp/seccomp_linux.go`
//! (`setupSeccomp`): a rule is dropped if *any* excluded cap is held, the
//! arch is excluded, or the kernel is at least `excludes.minKernel`; it is
//! kept only if *all* included caps are held, the arch is included, and the
//! kernel is at least `includes.minKernel`. Docker checks the bounding set;
//! berth passes the container's capability set (the same set by default).

use std::collections::BTreeSet;

use seccompiler::SeccompAction;

use super::error::SeccompError;
use super::profile::{ActionName, ArgCondition, Filter, Profile, SyscallRule};
use super::syscalls;

/// EPERM: libseccomp/runc's errno when `SCMP_ACT_ERRNO` has no `errnoRet`.
const EPERM: u32 = 1;

/// The Go architecture name (what Docker matches `arches` against).
///
/// We compile for the native architecture only and ignore `archMap`'s
/// sub-architectures: a 32-bit (`int 0x80`) or x32 syscall from a container
/// therefore meets seccompiler's arch check (kill) or no syscall rule (the
/// default action) instead of the compat tables Docker installs.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: &str = "amd64";
#[cfg(not(target_arch = "x86_64"))]
pub const NATIVE_ARCH: &str = std::env::consts::ARCH;

/// A kernel `major.minor`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses the leading `MAJOR.MINOR` of `6.18.44-fc-v669` or `4.8`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }
}

/// What a rule's `includes`/`excludes` are evaluated against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Capability names, normalised to `CAP_*` upper case.
    caps: BTreeSet<String>,
    arch: &'static str,
    kernel: KernelVersion,
}

impl Target {
    /// The native architecture with these capabilities on this kernel.
    /// Names may omit the `CAP_` prefix and use any case (`sys_admin`).
    pub fn native(caps: &[String], kernel: KernelVersion) -> Self {
        let caps = caps.iter().map(|c| normalise_cap(c)).collect();
        Self {
            caps,
            arch: NATIVE_ARCH,
            kernel,
        }
    }
}

fn normalise_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// One syscall's rule after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRule {
    pub syscall: String,
    pub nr: i64,
    pub action: SeccompAction,
    /// All must hold (AND); several rules for one syscall are ORed.
    pub args: Vec<ArgCondition>,
}

/// A profile resolved for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub default_action: SeccompAction,
    /// In profile order.
    pub rules: Vec<ResolvedRule>,
    /// Names of applicable rules this arch has no number for (e.g.
    /// `chown32`); skipped, as libseccomp/runc skip them.
    pub unknown: Vec<String>,
}

/// Resolves `profile` for `target`.
pub fn resolve(profile: &Profile, target: &Target) -> Result<Resolved, SeccompError> {
    let default_action = action(profile.default_action, profile.default_errno_ret, 0, "defaultAction")?;
    let mut resolved = Resolved {
        default_action,
        rules: Vec::new(),
        unknown: Vec::new(),
    };
    for (index, rule) in profile.syscalls.iter().enumerate() {
        if !applies(rule, index, target)? {
            continue;
        }
        let names = rule.all_names().collect::<Vec<_>>().join(",");
        let action = action(rule.action, rule.errno_ret, index, &names)?;
        if let Some(bad) = rule.args.iter().find(|a| a.index > 5) {
            return Err(SeccompError::ArgIndex {
                rule: index,
                syscalls: names,
                index: bad.index,
            });
        }
        for name in rule.all_names() {
            match syscalls::number(name) {
                Some(nr) => resolved.rules.push(ResolvedRule {
                    syscall: name.to_owned(),
                    nr,
                    action: action.clone(),
                    args: rule.args.clone(),
                }),
                None => resolved.unknown.push(name.to_owned()),
            }
        }
    }
    Ok(resolved)
}

/// Whether `rule` applies to `target` (see the module doc for the semantics).
fn applies(rule: &SyscallRule, index: usize, target: &Target) -> Result<bool, SeccompError> {
    let ex = &rule.excludes;
    if ex.arches.iter().any(|a| a == target.arch)
        || ex.caps.iter().any(|c| target.caps.contains(&normalise_cap(c)))
        || kernel_at_least(ex, index, target)? == Some(true)
    {
        return Ok(false);
    }
    let inc = &rule.includes;
    Ok((inc.arches.is_empty() || inc.arches.iter().any(|a| a == target.arch))
        && inc.caps.iter().all(|c| target.caps.contains(&normalise_cap(c)))
        && kernel_at_least(inc, index, target)? != Some(false))
}

/// `None` when the filter has no `minKernel`.
fn kernel_at_least(filter: &Filter, index: usize, target: &Target) -> Result<Option<bool>, SeccompError> {
    let Some(min) = &filter.min_kernel else {
        return Ok(None);
    };
    let min = KernelVersion::parse(min).ok_or_else(|| SeccompError::MinKernel {
        rule: index,
        value: min.clone(),
    })?;
    Ok(Some(target.kernel >= min))
}

/// Maps a profile action to seccompiler's, with runc's defaults: errno and
/// trace data default to EPERM; `SCMP_ACT_KILL` is libseccomp's kill-thread.
fn action(
    name: ActionName,
    errno_ret: Option<u32>,
    rule: usize,
    syscalls: &str,
) -> Result<SeccompAction, SeccompError> {
    let errno = errno_ret.unwrap_or(EPERM);
    Ok(match name {
        ActionName::Kill | ActionName::KillThread => SeccompAction::KillThread,
        ActionName::KillProcess => SeccompAction::KillProcess,
        ActionName::Trap => SeccompAction::Trap,
        ActionName::Errno => SeccompAction::Errno(errno),
        ActionName::Trace => SeccompAction::Trace(errno),
        ActionName::Allow => SeccompAction::Allow,
        ActionName::Log => SeccompAction::Log,
        ActionName::Notify => {
            return Err(SeccompError::UnsupportedAction {
                rule,
                syscalls: syscalls.to_owned(),
                action: "SCMP_ACT_NOTIFY",
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::profile::CmpOp;
    use super::super::DOCKER_DEFAULT_JSON;
    use super::*;

    use crate::runtime::caps::DOCKER_DEFAULT as DOCKER_CAPS;
    const KERNEL_6_1: KernelVersion = KernelVersion { major: 6, minor: 1 };

    fn docker_default(extra_caps: &[&str], kernel: KernelVersion) -> Resolved {
        let profile: Profile = serde_json::from_str(DOCKER_DEFAULT_JSON).unwrap();
        let caps: Vec<String> = DOCKER_CAPS.iter().chain(extra_caps).map(|c| c.to_string()).collect();
        resolve(&profile, &Target::native(&caps, kernel)).unwrap()
    }

    fn rules_for<'a>(r: &'a Resolved, name: &str) -> Vec<&'a ResolvedRule> {
        r.rules.iter().filter(|rule| rule.syscall == name).collect()
    }

    fn unconditionally(r: &Resolved, name: &str, action: SeccompAction) -> bool {
        rules_for(r, name)
            .iter()
            .any(|rule| rule.args.is_empty() && rule.action == action)
    }

    #[test]
    fn docker_default_caps() {
        let r = docker_default(&[], KERNEL_6_1);
        assert_eq!(r.default_action, SeccompAction::Errno(1));
        for name in ["read", "write", "execve", "getpid", "arch_prctl", "chroot"] {
            assert!(unconditionally(&r, name, SeccompAction::Allow), "{name}");
        }
        let clone3 = rules_for(&r, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action, SeccompAction::Errno(38));
        for name in ["mount", "unshare", "setns", "bpf", "reboot", "open_by_handle_at"] {
            assert!(rules_for(&r, name).is_empty(), "{name} must fall to EPERM");
        }
        // Other arches' rules do not apply; their names do not exist here.
        assert!(rules_for(&r, "riscv_flush_icache").is_empty());
        assert!(r.unknown.iter().any(|n| n == "chown32"));
    }

    #[test]
    fn clone_is_limited_to_non_namespace_flags_without_sys_admin() {
        let r = docker_default(&[], KERNEL_6_1);
        let clone = rules_for(&r, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0].args,
            [ArgCondition {
                index: 0,
                value: 0x7E02_0000,
                value_two: 0,
                op: CmpOp::MaskedEq
            }]
        );
    }

    #[test]
    fn sys_admin_allows_mount_and_clone3() {
        let r = docker_default(&["sys_admin"], KERNEL_6_1);
        for name in ["mount", "unshare", "setns", "clone", "clone3"] {
            let rules = rules_for(&r, name);
            assert!(unconditionally(&r, name, SeccompAction::Allow), "{name}");
            assert!(rules.iter().all(|rule| rule.action == SeccompAction::Allow));
        }
    }

    #[test]
    fn personality_and_socket_are_argument_restricted() {
        let r = docker_default(&[], KERNEL_6_1);
        let personality = rules_for(&r, "personality");
        let values: Vec<u64> = personality.iter().map(|rule| rule.args[0].value).collect();
        assert_eq!(values, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
        assert!(personality
            .iter()
            .all(|rule| rule.args.len() == 1 && rule.args[0].op == CmpOp::Eq));
        let socket = rules_for(&r, "socket");
        assert_eq!(socket.len(), 1);
        assert_eq!(
            (socket[0].args[0].value, socket[0].args[0].op),
            (libc::AF_VSOCK as u64, CmpOp::Ne)
        );
    }

    #[test]
    fn min_kernel_gates_ptrace() {
        let old = docker_default(&[], KernelVersion { major: 4, minor: 4 });
        assert!(rules_for(&old, "ptrace").is_empty());
        let new = docker_default(&[], KernelVersion { major: 4, minor: 8 });
        assert!(unconditionally(&new, "ptrace", SeccompAction::Allow));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion { major: 6, minor: 18 })
        );
        assert_eq!(KernelVersion::parse("4.8"), Some(KernelVersion { major: 4, minor: 8 }));
        assert_eq!(KernelVersion::parse("4"), None);
        assert_eq!(KernelVersion::parse("x.y"), None);
    }

    #[test]
    fn bad_min_kernel_and_notify_are_errors() {
        let target = Target::native(&[], KERNEL_6_1);
        let profile: Profile = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_LOG","includes":{"minKernel":"new"}}]}"#,
        )
        .unwrap();
        assert!(matches!(
            resolve(&profile, &target),
            Err(SeccompError::MinKernel { rule: 0, .. })
        ));
        let profile: Profile = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let err = resolve(&profile, &target).unwrap_err();
        assert!(err.to_string().contains("rule #0 (read)"), "{err}");
    }
}
