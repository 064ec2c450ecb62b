//! Compiled filters cached on disk: resolving Docker's profile and
//! compiling it to BPF costs about a millisecond on every container start,
//! and the result depends only on the profile, the capabilities, the
//! kernel and the architecture, which together name the cache file.
//!
//! Format: `BERTHBPF2\n` (2: since programs start with a binary search),
//! then per program a little-endian u32
//! instruction count and that many `struct sock_filter` (u16 code, u8 jt,
//! u8 jf, u32 k, little-endian). A file that does not parse is ignored
//! and rewritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use seccompiler::sock_filter;
use sha2::{Digest, Sha256};

use super::{host_release, CompiledFilter};

const MAGIC: &[u8] = b"BERTHBPF2\n";

/// The cache file for `profile` (its JSON text) and `caps`, on this
/// kernel and architecture.
pub(super) fn path(dir: &Path, profile: &str, caps: &[String]) -> PathBuf {
    let mut caps: Vec<String> = caps.iter().map(|c| c.to_ascii_uppercase()).collect();
    caps.sort();
    caps.dedup();
    let mut hash = Sha256::new();
    for part in [
        MAGIC,
        profile.as_bytes(),
        caps.join(",").as_bytes(),
        host_release().as_bytes(),
        std::env::consts::ARCH.as_bytes(),
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{digest}.bpf"))
}

pub(super) fn load(file: &Path) -> Option<CompiledFilter> {
    decode(&fs::read(file).ok()?)
}

/// Best effort, atomic (temp file + rename): a failure only means the
/// next start compiles again.
pub(super) fn store(file: &Path, filter: &CompiledFilter) {
    let Some(dir) = file.parent() else { return };
    let _ = fs::create_dir_all(dir);
    let tmp = dir.join(format!(
        ".{}.{}",
        std::process::id(),
        file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    ));
    let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(&encode(filter)));
    if written.is_err() || fs::rename(&tmp, file).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

fn encode(filter: &CompiledFilter) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for program in &filter.programs {
        out.extend((program.len() as u32).to_le_bytes());
        for insn in program {
            out.extend(insn.code.to_le_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend(insn.k.to_le_bytes());
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Option<CompiledFilter> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut programs = Vec::new();
    while !rest.is_empty() {
        let (count, tail) = rest.split_first_chunk::<4>()?;
        let count = u32::from_le_bytes(*count) as usize;
        if count == 0 || count > 4096 || tail.len() < count * 8 {
            return None;
        }
        let (body, tail) = tail.split_at(count * 8);
        let program = body
            .chunks_exact(8)
            .map(|i| sock_filter {
                code: u16::from_le_bytes([i[0], i[1]]),
                jt: i[2],
                jf: i[3],
                k: u32::from_le_bytes([i[4], i[5], i[6], i[7]]),
            })
            .collect();
        programs.push(program);
        rest = tail;
    }
    (!programs.is_empty()).then_some(CompiledFilter { programs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::{compile, SeccompMode};

    #[test]
    fn a_cached_filter_is_the_compiled_one() {
        let caps: Vec<String> = ["CAP_CHOWN", "CAP_KILL"].iter().map(|c| c.to_string()).collect();
        let filter = compile(&SeccompMode::DockerDefault, &caps).unwrap().unwrap();
        assert_eq!(decode(&encode(&filter)), Some(filter.clone()));
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "profile", &caps);
        assert_eq!(
            file,
            path(dir.path(), "profile", &["cap_kill".into(), "CAP_CHOWN".into()])
        );
        assert_ne!(file, path(dir.path(), "profile", &caps[..1]));
        store(&file, &filter);
        assert_eq!(load(&file), Some(filter));
        fs::write(&file, b"BERTHBPF1\n\x05\0\0\0short").unwrap();
        assert_eq!(load(&file), None, "a truncated file is ignored");
    }
}
