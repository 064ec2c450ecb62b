//! The Docker/OCI seccomp profile format (`docker run --security-opt
//! seccomp=FILE`), as data. Field names follow moby's
//! `profiles/seccomp/seccomp.go`; fields we do not act on (`flags`,
//! `listenerPath`, …) are ignored, as Docker's JSON decoder ignores them.

use serde::Deserialize;

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Action for syscalls no rule matches.
    pub default_action: ActionName,
    /// errno for `defaultAction: SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE`; EPERM if unset.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// OCI form: architectures the filter covers. We compile for the
    /// native architecture only (see `resolve`), so this is informational.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Docker form of `architectures`; likewise informational.
    #[serde(default)]
    pub arch_map: Vec<ArchMapEntry>,
    /// The rules, in profile order.
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// One `archMap` entry: a native architecture and its compat sub-architectures.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One entry of `syscalls`: an action for some syscall names, optionally
/// only when all `args` conditions hold, and only for containers the
/// `includes`/`excludes` filters select.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(default)]
    pub names: Vec<String>,
    /// Deprecated single-name form, still accepted by Docker.
    #[serde(default)]
    pub name: Option<String>,
    pub action: ActionName,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<ArgCondition>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

impl SyscallRule {
    /// `names` plus the deprecated `name`, in that order.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().chain(self.name.iter()).map(String::as_str)
    }
}

/// A condition on one syscall argument (all conditions of a rule must hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCondition {
    /// Argument index, 0–5.
    pub index: u8,
    /// Compared value; for `SCMP_CMP_MASKED_EQ` the mask.
    pub value: u64,
    /// For `SCMP_CMP_MASKED_EQ`, the value `arg & value` must equal.
    #[serde(default)]
    pub value_two: u64,
    pub op: CmpOp,
}

/// Comparison operators (libseccomp's `scmp_compare`); all compare the full
/// 64-bit argument, as libseccomp does on 64-bit architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CmpOp {
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

/// Rule actions (libseccomp's `SCMP_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ActionName {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Needs a seccomp-notify listener; berth has none (rejected at resolve).
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

/// `includes`/`excludes`: which containers a rule applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capability names (`CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Vec<String>,
    /// Go architecture names (`amd64`, `arm64`, `x32`, …).
    #[serde(default)]
    pub arches: Vec<String>,
    /// `major.minor`: the host kernel must be at least this.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_form_with_value_two_and_old_name() {
        let p: Profile = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"name":"clone","action":"SCMP_ACT_ERRNO","errnoRet":38,
                  "args":[{"index":0,"value":255,"valueTwo":16,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, ActionName::KillProcess);
        assert_eq!(p.default_errno_ret, None);
        let rule = &p.syscalls[0];
        assert_eq!(rule.all_names().collect::<Vec<_>>(), ["clone"]);
        assert_eq!(rule.errno_ret, Some(38));
        assert_eq!(
            rule.args[0],
            ArgCondition {
                index: 0,
                value: 255,
                value_two: 16,
                op: CmpOp::MaskedEq
            }
        );
        assert_eq!(rule.includes, Filter::default());
    }

    #[test]
    fn rejects_unknown_action() {
        let err = serde_json::from_str::<Profile>(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#).unwrap_err();
        assert!(err.to_string().contains("SCMP_ACT_MAYBE"), "{err}");
    }
}
