//! The few filesystem effects the cgroup layer needs, each turning an
//! `io::Error` into a [`CgroupError`] that names the file (and value).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use super::error::{io_of, CgroupError};

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        content: text,
    })
}

/// The value of `key` in a flat-keyed file (`memory.events`,
/// `memory.oom_control`, `cpu.stat`: one `key value` per line).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Maps the result of a cgroups-rs setter to our error, naming the full
/// path of `file` in `dir` and the value written.
pub(crate) fn via_crate<T>(
    dir: &Path,
    file: &str,
    value: impl ToString,
    result: cgroups_rs::fs::error::Result<T>,
) -> Result<T, CgroupError> {
    result.map_err(|e| CgroupError::Write {
        path: dir.join(file),
        value: value.to_string(),
        source: io_of(&e),
    })
}

/// Creates `root/name` one component at a time, recording each directory it
/// made (outermost first) so a failed create can remove exactly those.
pub(crate) fn mkdirs(root: &Path, name: &str, created: &mut Vec<PathBuf>) -> Result<PathBuf, CgroupError> {
    // A shared parent (`a` of `a/b`) is removed by the last cgroup to
    // leave it: one that does so between our mkdir of the
    // parent and of the child makes the child's mkdir fail with ENOENT.
    // Starting over makes the parent again.
    let mut attempts = 0;
    'again: loop {
        let mut dir = root.to_owned();
        for part in name.split('/') {
            dir.push(part);
            match fs::create_dir(&dir) {
                Ok(()) if !created.contains(&dir) => created.push(dir.clone()),
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => {
                    attempts += 1;
                    continue 'again;
                }
                Err(source) => return Err(CgroupError::CreateDir { path: dir, source }),
            }
        }
        return Ok(dir);
    }
}

/// Every pid in `dir`'s `cgroup.procs` and in its descendants' (a container
/// may have made sub-cgroups). A missing directory has no pids.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&procs) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path: procs, source }),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for child in subdirs(dir)? {
        procs_recursive(&child, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            })
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// Removes `dir` and any sub-cgroups, deepest first. `rmdir` on a cgroup
/// can fail with `EBUSY` for a moment after its last task exits (the task
/// is still being unlinked), so retry with backoff like runc's
/// `cgroups.RemovePath`. A missing directory is already removed.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // A container's cgroup rarely has sub-cgroups: one rmdir first, and
    // the listing (open, stat, two getdents, close per hierarchy) only
    // when that fails.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in subdirs(dir)? {
        remove_tree(&child)?;
    }
    let mut delay = Duration::from_millis(10);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && delay < Duration::from_secs(1) => {
                sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Removes the now-empty parents of `leaf` up to (not including) `root`,
/// so the per-project directory goes with its last container. Stops at the
/// first parent that still has children or tasks (`EBUSY`/`ENOTEMPTY`).
pub(crate) fn remove_empty_parents(root: &Path, leaf: &Path) {
    let mut dir = leaf.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse_by_key() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom, "oom_kill"), Some(3));
        assert_eq!(keyed(oom, "under_oom"), Some(0));
        assert_eq!(keyed(oom, "oom"), None);
        let cpu = "usage_usec 1500\nuser_usec 1000\n";
        assert_eq!(keyed(cpu, "usage_usec"), Some(1500));
    }

    #[test]
    fn mkdirs_records_only_what_it_made_and_remove_tree_undoes_it() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("project")).unwrap();
        let mut created = Vec::new();
        let leaf = mkdirs(tmp.path(), "project/ctr/sub", &mut created).unwrap();
        assert_eq!(leaf, tmp.path().join("project/ctr/sub"));
        assert_eq!(
            created,
            vec![tmp.path().join("project/ctr"), tmp.path().join("project/ctr/sub")]
        );
        remove_tree(&tmp.path().join("project/ctr")).unwrap();
        remove_tree(&tmp.path().join("project/ctr")).unwrap();
        remove_empty_parents(tmp.path(), &tmp.path().join("project/ctr"));
        assert!(!tmp.path().join("project").exists());
        assert!(tmp.path().exists());
    }

    #[test]
    fn procs_of_a_missing_cgroup_is_empty() {
        let mut pids = Vec::new();
        procs_recursive(Path::new("/nonexistent/berth"), &mut pids).unwrap();
        assert!(pids.is_empty());
    }
}
