//! A binary search over the syscalls a filter matches without argument
//! conditions, put in front of seccompiler's program for the rest.
//!
//! seccompiler compares the syscall number with each syscall of its rule
//! map in turn. For Docker's profile that is a program of ~1500
//! instructions, which the kernel checks, converts and JIT-compiles at
//! every container start (~0.6 ms on the benchmark host) and which each
//! allowed syscall of the container walks up to its own entry. Nearly all
//! of those syscalls are allowed unconditionally and their numbers form a
//! few dozen runs (`read`..`mprotect`, …): a binary search over the runs
//! decides them in a handful of comparisons, and only the syscalls with
//! argument conditions (`clone`, `personality`, `socket`, …) are left to
//! seccompiler's program, which then is short too.
//!
//! The program, for runs `[lo_i, hi_i]` and match result `R`:
//!
//! ```text
//!     ld  arch
//!     jeq NATIVE_ARCH, 0, fallback    ; any other arch: seccompiler's check
//!     ld  nr
//!     <search>                         ; in a run: ret R, else: fallback
//! match:    ret R
//! fallback: <seccompiler's program: arch check, conditional syscalls>
//! ```
//!
//! A number in no run (a conditional or unknown syscall, an x32 number with
//! bit 30 set, a negative one) reaches the fallback, which decides it
//! exactly as seccompiler's program for the whole map would: it is not a
//! syscall of the runs, and the runs hold only unconditional entries.
//! Classic BPF jumps only forward, conditional ones by at most 255
//! instructions; a search that would need a longer jump is not built and
//! the caller keeps the plain program (`None`).

use seccompiler::sock_filter;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

/// Consecutive syscall numbers as inclusive runs, from sorted numbers.
pub(super) fn runs(numbers: impl IntoIterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for nr in numbers {
        match runs.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(nr) => *hi = nr,
            Some((_, hi)) if *hi >= nr => {}
            _ => runs.push((nr, nr)),
        }
    }
    runs
}

/// A jump target while the program is laid out.
#[derive(Clone, Copy)]
enum Target {
    /// The next instruction.
    Next,
    /// The instruction at this index of the search block.
    At(usize),
    /// The `ret R` right after the search.
    Match,
    /// The first instruction of seccompiler's program.
    Fallback,
}

struct Jump {
    code: u16,
    k: u32,
    taken: Target,
    not_taken: Target,
}

/// The search program for `runs` (sorted, disjoint) in front of `fallback`,
/// or `None` when a jump would not fit (see the module doc) or there is
/// nothing to search.
pub(super) fn prepend(
    runs: &[(u32, u32)],
    arch: u32,
    on_match: u32,
    fallback: Vec<sock_filter>,
) -> Option<Vec<sock_filter>> {
    if runs.is_empty() {
        return None;
    }
    let mut search = Vec::new();
    emit(runs, &mut search);
    // Layout: 3 prelude instructions, the search, `ret R`, the fallback.
    let prelude = 3;
    let match_at = prelude + search.len();
    let fallback_at = match_at + 1;
    let offset = |from: usize, target: Target| -> Option<u8> {
        let to = match target {
            Target::Next => from + 1,
            Target::At(i) => prelude + i,
            Target::Match => match_at,
            Target::Fallback => fallback_at,
        };
        u8::try_from(to.checked_sub(from + 1)?).ok()
    };
    let mut program = Vec::with_capacity(fallback_at + fallback.len());
    program.push(stmt(BPF_LD_W_ABS, OFFSET_ARCH));
    program.push(jump(BPF_JEQ_K, arch, 0, offset(1, Target::Fallback)?));
    program.push(stmt(BPF_LD_W_ABS, OFFSET_NR));
    for (i, j) in search.iter().enumerate() {
        let at = prelude + i;
        program.push(jump(j.code, j.k, offset(at, j.taken)?, offset(at, j.not_taken)?));
    }
    program.push(stmt(BPF_RET_K, on_match));
    program.extend(fallback);
    Some(program)
}

/// The decision for `runs`: a split on the middle run's first number, and
/// a bounds check at each leaf.
fn emit(runs: &[(u32, u32)], out: &mut Vec<Jump>) {
    if let [(lo, hi)] = runs {
        out.push(Jump {
            code: BPF_JGE_K,
            k: *lo,
            taken: Target::Next,
            not_taken: Target::Fallback,
        });
        out.push(Jump {
            code: BPF_JGT_K,
            k: *hi,
            taken: Target::Fallback,
            not_taken: Target::Match,
        });
        return;
    }
    let (left, right) = runs.split_at(runs.len() / 2);
    let split = out.len();
    out.push(Jump {
        code: BPF_JGE_K,
        k: right[0].0,
        taken: Target::Next, // patched below, once the left side is laid out
        not_taken: Target::Next,
    });
    emit(left, out);
    out[split].taken = Target::At(out.len());
    emit(right, out);
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::super::emulator::{run, SeccompData, ARCH_X86_64};
    use super::*;

    const FALLBACK_RET: u32 = 0xDEAD;
    const MATCHED: u32 = 0x7fff_0000;

    fn program(runs: &[(u32, u32)]) -> Vec<sock_filter> {
        prepend(runs, ARCH_X86_64, MATCHED, vec![stmt(BPF_RET_K, FALLBACK_RET)]).unwrap()
    }

    #[test]
    fn runs_merge_consecutive_numbers() {
        assert_eq!(runs([0, 1, 2, 5, 7, 8]), vec![(0, 2), (5, 5), (7, 8)]);
        assert_eq!(runs([3, 3, 4]), vec![(3, 4)]);
        assert_eq!(runs([]), vec![]);
        assert_eq!(runs([u32::MAX - 1, u32::MAX]), vec![(u32::MAX - 1, u32::MAX)]);
    }

    #[test]
    fn search_matches_exactly_the_runs() {
        for n in 1..40u32 {
            // Runs of varying width with gaps of varying width.
            let runs: Vec<(u32, u32)> = (0..n).map(|i| (i * 7 + i % 3, i * 7 + i % 3 + i % 4)).collect();
            let p = program(&runs);
            for nr in 0..(n * 7 + 20) {
                let inside = runs.iter().any(|(lo, hi)| (*lo..=*hi).contains(&nr));
                let got = run(&p, &SeccompData::x86_64(i64::from(nr), &[]));
                assert_eq!(got, if inside { MATCHED } else { FALLBACK_RET }, "{n} runs, nr {nr}");
            }
        }
    }

    #[test]
    fn other_architectures_and_odd_numbers_reach_the_fallback() {
        let p = program(&[(0, 10), (12, 12)]);
        let mut data = SeccompData::x86_64(1, &[]);
        data.arch = 0x4000_0003; // i386
        assert_eq!(run(&p, &data), FALLBACK_RET);
        for nr in [-1i64, 11, 0x4000_0001, i64::from(i32::MAX)] {
            assert_eq!(run(&p, &SeccompData::x86_64(nr, &[])), FALLBACK_RET, "nr {nr}");
        }
    }

    #[test]
    fn a_search_too_long_for_its_jumps_is_not_built() {
        let runs: Vec<(u32, u32)> = (0..400u32).map(|i| (i * 2, i * 2)).collect();
        assert!(prepend(&runs, ARCH_X86_64, MATCHED, vec![stmt(BPF_RET_K, 0)]).is_none());
        assert!(prepend(&[], ARCH_X86_64, MATCHED, vec![stmt(BPF_RET_K, 0)]).is_none());
    }
}
