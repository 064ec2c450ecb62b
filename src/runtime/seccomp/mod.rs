//! Seccomp: Docker's default profile compiled to BPF.
//!
//! Pipeline: load the profile (`profile`: Docker/OCI JSON) → resolve it for
//! one container (`resolve`: caps, arch, kernel → syscall-numbered rules) →
//! compile (`compile`: one seccompiler filter per action, see there for
//! why several programs are exactly the profile's meaning) → install.
//!
//! Compile in the parent (it allocates); [`CompiledFilter::install`] is
//! meant for the single-threaded container child right before `execve`:
//! it does not allocate on its success path.
//!
//! `docker-default.json` is moby/moby `profiles/seccomp/default.json` at
//! commit 00f3d189e420d485e42d15fe494f96d272284e0e, byte for byte
//! (Apache-2.0, generated upstream from `profiles/seccomp/default_linux.go`).
//! To update it, replace the file and rerun the tests.

mod cache;
mod compile;
#[cfg(test)]
mod emulator;
mod error;
mod profile;
mod resolve;
mod search;
mod syscalls;

use std::io;
use std::path::{Path, PathBuf};

use seccompiler::{sock_filter, BpfProgram};

pub use error::SeccompError;
use profile::Profile;
use resolve::{KernelVersion, Target};

/// Docker's default profile (provenance in the module doc).
pub const DOCKER_DEFAULT_JSON: &str = include_str!("docker-default.json");

/// `--security-opt seccomp=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompMode {
    /// Docker's default profile (no `seccomp` option).
    #[default]
    DockerDefault,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: a Docker/OCI profile file.
    Profile(PathBuf),
}

impl From<&crate::runtime::config::Seccomp> for SeccompMode {
    fn from(option: &crate::runtime::config::Seccomp) -> SeccompMode {
        match option {
            crate::runtime::config::Seccomp::Default => SeccompMode::DockerDefault,
            crate::runtime::config::Seccomp::Unconfined => SeccompMode::Unconfined,
            crate::runtime::config::Seccomp::Profile(p) => SeccompMode::Profile(p.clone()),
        }
    }
}

/// Where compiled filters are cached under an engine root.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("seccomp")
}

/// BPF programs for one container, in install order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    programs: Vec<BpfProgram>,
}

/// Compiles the filter for a container with effective capabilities `caps`
/// (`"CAP_SYS_ADMIN"`; the `CAP_` prefix and case are optional) for the
/// native architecture and the running kernel. `None` for `Unconfined`.
pub fn compile(mode: &SeccompMode, caps: &[String]) -> Result<Option<CompiledFilter>, SeccompError> {
    let profile = match mode {
        SeccompMode::Unconfined => return Ok(None),
        SeccompMode::DockerDefault => parse(DOCKER_DEFAULT_JSON, "the embedded Docker default profile")?,
        SeccompMode::Profile(path) => {
            let json = std::fs::read_to_string(path).map_err(|source| SeccompError::ReadProfile {
                path: path.clone(),
                source,
            })?;
            parse(&json, &path.display().to_string())?
        }
    };
    let target = Target::native(caps, host_kernel()?);
    compile_profile(&profile, &target).map(Some)
}

/// [`compile`] through a cache of compiled programs in `cache_dir` (see
/// `cache`), so that only the first container with a given profile and
/// capability set pays for the compilation.
pub fn compile_cached(
    mode: &SeccompMode,
    caps: &[String],
    cache_dir: &Path,
) -> Result<Option<CompiledFilter>, SeccompError> {
    let json = match mode {
        SeccompMode::Unconfined => return Ok(None),
        SeccompMode::DockerDefault => std::borrow::Cow::Borrowed(DOCKER_DEFAULT_JSON),
        SeccompMode::Profile(path) => {
            std::borrow::Cow::Owned(
                std::fs::read_to_string(path).map_err(|source| SeccompError::ReadProfile {
                    path: path.clone(),
                    source,
                })?,
            )
        }
    };
    let file = cache::path(cache_dir, &json, caps);
    if let Some(filter) = cache::load(&file) {
        return Ok(Some(filter));
    }
    let origin = match mode {
        SeccompMode::Profile(path) => path.display().to_string(),
        _ => "the embedded Docker default profile".to_owned(),
    };
    let profile = parse(&json, &origin)?;
    let filter = compile_profile(&profile, &Target::native(caps, host_kernel()?))?;
    cache::store(&file, &filter);
    Ok(Some(filter))
}

fn parse(json: &str, origin: &str) -> Result<Profile, SeccompError> {
    serde_json::from_str(json).map_err(|source| SeccompError::ParseProfile {
        origin: origin.to_owned(),
        source,
    })
}

fn compile_profile(profile: &Profile, target: &Target) -> Result<CompiledFilter, SeccompError> {
    let resolved = resolve::resolve(profile, target)?;
    Ok(CompiledFilter {
        programs: compile::programs(&resolved)?,
    })
}

/// The running kernel's `major.minor`, for `minKernel`.
fn host_kernel() -> Result<KernelVersion, SeccompError> {
    let release = uname_release().map_err(|source| SeccompError::KernelVersion {
        release: String::new(),
        source: Some(source),
    })?;
    KernelVersion::parse(&release).ok_or(SeccompError::KernelVersion { release, source: None })
}

/// The kernel release, or "" if `uname` fails (part of the cache key).
fn host_release() -> String {
    uname_release().unwrap_or_default()
}

fn uname_release() -> io::Result<String> {
    // SAFETY: `utsname` is plain C data, for which all-zero bytes are valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` that outlives the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // `c_char` is `i8` on x86_64; reinterpret each as its byte.
    let bytes: Vec<u8> = uts.release.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl CompiledFilter {
    /// Installs the programs on the calling thread, in order.
    ///
    /// Requires `no_new_privs` (`prctl(PR_SET_NO_NEW_PRIVS)`) or
    /// CAP_SYS_ADMIN in the caller's user namespace; otherwise the kernel
    /// answers EACCES. Unlike `seccompiler::apply_filter`, this does not set
    /// `no_new_privs` itself: Docker leaves it off unless asked
    /// (`--security-opt no-new-privileges`), so setuid binaries in the
    /// container keep working; the caller decides.
    ///
    /// Filters are inherited across fork and execve and cannot be removed.
    /// The calling thread only (no TSYNC): call it in the single-threaded
    /// child.
    pub fn install(&self) -> Result<(), SeccompError> {
        let count = self.programs.len();
        for (index, program) in self.programs.iter().enumerate() {
            install_program(program).map_err(|source| SeccompError::Install { index, count, source })?;
        }
        Ok(())
    }

    /// Total BPF instructions over all programs.
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// The programs, in install order.
    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)` for one program.
fn install_program(program: &[sock_filter]) -> io::Result<()> {
    // seccompiler caps programs at 4096 instructions (BPF_MAXINSNS), so this
    // only fails for a program it did not build.
    let len = u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: seccompiler's `sock_filter` is `#[repr(C)]` {u16, u8, u8, u32},
    // the layout of `struct sock_filter` (linux/filter.h) and of
    // `libc::sock_filter`; `prog` points at `len` of them, valid for the
    // call; the kernel copies the program in and keeps no reference to it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
