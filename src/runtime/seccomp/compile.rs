//! Compiling a resolved profile to BPF with seccompiler (behind a binary
//! search over the unconditionally matched syscalls, `search`).
//!
//! seccompiler builds a filter with exactly two outcomes (`match_action`
//! for syscalls a rule matches, `mismatch_action` for the rest), while a
//! Docker profile has several: Allow for most rules, `Errno(38)` for
//! `clone3`, `Errno(1)` as the default. We therefore emit one seccompiler
//! filter per outcome and install them all; the kernel runs every installed
//! filter on each syscall and keeps the most severe result
//! (`kernel/seccomp.c: seccomp_run_filters`, precedence
//! KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG >
//! ALLOW; among results of the same action the most recently installed
//! filter's wins).
//!
//! The programs, in install order:
//! 1. one *action filter* per distinct non-Allow rule action A, in reverse
//!    order of A's first appearance in the profile: A for the syscalls
//!    (and argument conditions) of A's rules, Allow otherwise;
//! 2. last, the *coverage filter* (unless the default is Allow): Allow for
//!    every syscall any rule matches, whatever its action, and the default
//!    action otherwise.
//!
//! Why that is the profile's meaning, for a syscall whose matching rules
//! have the actions M:
//! - M empty: the coverage filter gives the default, every action filter
//!   Allow, so the result is the default action.
//! - M = {A} (always the case in Docker's profile): the coverage filter
//!   gives Allow (the coverage filter is why the default cannot override
//!   A, e.g. a KILL default over an ERRNO rule), A's filter A and the other
//!   action filters Allow, so the result is A.
//! - M with several actions (an ambiguous profile; libseccomp rejects some
//!   such combinations): the most severe wins; between errnos, the action
//!   that appears first in the profile (its filter is installed later).
//! - Wrong architecture: every program starts with seccompiler's arch
//!   check, which kills the process.
//!
//! Action filters go first because each later `seccomp(2)` call must pass
//! the filters installed before it: action filters allow everything they
//! do not name, while the coverage filter denies by default (Docker's
//! profile allows `seccomp` anyway, but a custom profile need not).

use std::collections::BTreeMap;

use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::error::SeccompError;
use super::profile::{ArgCondition, CmpOp};
use super::resolve::{Resolved, ResolvedRule};

/// The BPF programs for `resolved`, in install order (see the module doc).
/// Empty when the profile allows everything.
pub fn programs(resolved: &Resolved) -> Result<Vec<BpfProgram>, SeccompError> {
    programs_with(resolved, true)
}

/// [`programs`], with or without the binary search (tests compare both).
pub(super) fn programs_with(resolved: &Resolved, search: bool) -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = native_arch()?;
    let mut actions: Vec<&SeccompAction> = Vec::new();
    for rule in &resolved.rules {
        if rule.action != SeccompAction::Allow && !actions.contains(&&rule.action) {
            actions.push(&rule.action);
        }
    }
    let mut programs = Vec::with_capacity(actions.len() + 1);
    for action in actions.into_iter().rev() {
        let rules = resolved.rules.iter().filter(|r| &r.action == action);
        programs.push(program(rules, SeccompAction::Allow, action, arch, search)?);
    }
    if resolved.default_action != SeccompAction::Allow {
        programs.push(program(
            resolved.rules.iter(),
            resolved.default_action.clone(),
            &SeccompAction::Allow,
            arch,
            search,
        )?);
    }
    Ok(programs)
}

/// `AUDIT_ARCH_X86_64`, the `arch` of `struct seccomp_data`.
#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_003E;

#[cfg(target_arch = "x86_64")]
fn native_arch() -> Result<TargetArch, SeccompError> {
    Ok(TargetArch::x86_64)
}

#[cfg(not(target_arch = "x86_64"))]
const NATIVE_AUDIT_ARCH: u32 = 0;

#[cfg(not(target_arch = "x86_64"))]
fn native_arch() -> Result<TargetArch, SeccompError> {
    Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
}

/// One seccompiler filter: `on_match` for `rules`, `mismatch` otherwise.
fn program<'a>(
    rules: impl Iterator<Item = &'a ResolvedRule>,
    mismatch: SeccompAction,
    on_match: &SeccompAction,
    arch: TargetArch,
    search: bool,
) -> Result<BpfProgram, SeccompError> {
    let compile_error = |source| SeccompError::Compile {
        action: format!("{on_match:?} (mismatch {mismatch:?})"),
        source,
    };
    let mut map = rule_map(rules).map_err(compile_error)?;
    if !search {
        let filter = SeccompFilter::new(map, mismatch.clone(), on_match.clone(), arch).map_err(compile_error)?;
        return BpfProgram::try_from(filter).map_err(compile_error);
    }
    // Unconditional entries go to the search; seccompiler's program keeps
    // the conditional ones (and decides every number the search misses).
    let unconditional: Vec<u32> = map
        .iter()
        .filter(|(_, rules)| rules.is_empty())
        .filter_map(|(nr, _)| u32::try_from(*nr).ok())
        .collect();
    let full = map.clone();
    map.retain(|nr, rules| !rules.is_empty() || u32::try_from(*nr).is_err());
    let filter = SeccompFilter::new(map, mismatch.clone(), on_match.clone(), arch).map_err(compile_error)?;
    let fallback = BpfProgram::try_from(filter).map_err(compile_error)?;
    let runs = super::search::runs(unconditional);
    if let Some(program) = super::search::prepend(&runs, NATIVE_AUDIT_ARCH, on_match.clone().into(), fallback) {
        return Ok(program);
    }
    let filter = SeccompFilter::new(full, mismatch.clone(), on_match.clone(), arch).map_err(compile_error)?;
    BpfProgram::try_from(filter).map_err(compile_error)
}

/// seccompiler's rule map: syscall number → rules, ORed; an empty list
/// matches the syscall unconditionally, so an unconditional rule absorbs
/// any conditional ones for the same syscall.
fn rule_map<'a>(
    rules: impl Iterator<Item = &'a ResolvedRule>,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
    // `None`: some rule matches this syscall unconditionally.
    let mut map: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in rules {
        if rule.args.is_empty() {
            map.insert(rule.nr, None);
            continue;
        }
        let conditions = rule.args.iter().map(condition).collect::<Result<_, _>>()?;
        let compiled = SeccompRule::new(conditions)?;
        if let Some(list) = map.entry(rule.nr).or_insert_with(|| Some(Vec::new())) {
            list.push(compiled);
        }
    }
    Ok(map
        .into_iter()
        .map(|(nr, rules)| (nr, rules.unwrap_or_default()))
        .collect())
}

/// libseccomp compares all 64 bits of an argument on 64-bit arches (hence
/// `Qword`); `MASKED_EQ` is `(arg & value) == valueTwo`. Fails only for an
/// argument index over 5, which `resolve` already rejects.
fn condition(arg: &ArgCondition) -> Result<SeccompCondition, BackendError> {
    let (op, value) = match arg.op {
        CmpOp::Ne => (SeccompCmpOp::Ne, arg.value),
        CmpOp::Lt => (SeccompCmpOp::Lt, arg.value),
        CmpOp::Le => (SeccompCmpOp::Le, arg.value),
        CmpOp::Eq => (SeccompCmpOp::Eq, arg.value),
        CmpOp::Ge => (SeccompCmpOp::Ge, arg.value),
        CmpOp::Gt => (SeccompCmpOp::Gt, arg.value),
        CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value)
}
