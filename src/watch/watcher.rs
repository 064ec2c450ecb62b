//! The host side: inotify (through `notify`) on the rules' paths and the
//! stack's files, turned into a plain list of changed paths.
//!
//! What inotify does not do by itself, done here:
//! - a directory created (or moved) into a tree is walked: files written
//!   into it before its watch was added announce nothing;
//! - a watched tree that is deleted and created again is watched again
//!   (the watch belonged to the old inode): each tree's parent is watched
//!   too, so its re-creation is seen;
//! - single files (the stack file, `.env`) are watched through their
//!   directory, since editors save by renaming a new file over the old.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    #[error("starting the file watcher (inotify): {0}")]
    Start(#[source] notify::Error),
    #[error("watching {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("the file watcher stopped")]
    Stopped,
}

/// What one wait brought.
#[derive(Debug, Default)]
pub struct Changes {
    /// Changed paths, directories expanded to their contents.
    pub paths: Vec<PathBuf>,
    /// Events the watcher could not deliver (reported, not fatal).
    pub warnings: Vec<String>,
}

pub struct Watcher {
    inner: RecommendedWatcher,
    events: Receiver<notify::Result<Event>>,
    /// Directories watched recursively (none inside another).
    trees: Vec<PathBuf>,
    /// Trees with a live watch.
    live: BTreeSet<PathBuf>,
}

impl Watcher {
    /// Watches `paths` (the rules' paths: directories recursively, files
    /// through their directory) and `files` (the stack's own files).
    pub fn new(paths: &[PathBuf], files: &[PathBuf]) -> Result<Watcher, WatcherError> {
        let (tx, events) = channel();
        let inner = notify::recommended_watcher(tx).map_err(WatcherError::Start)?;
        // A path that does not exist yet is taken for a directory to come.
        let mut trees: Vec<PathBuf> = paths.iter().filter(|p| !p.is_file()).cloned().collect();
        trees.sort();
        trees.dedup();
        let nested: Vec<PathBuf> = trees
            .iter()
            .filter(|t| trees.iter().any(|o| o != *t && t.starts_with(o)))
            .cloned()
            .collect();
        trees.retain(|t| !nested.contains(t));
        let mut watcher = Watcher {
            inner,
            events,
            trees,
            live: BTreeSet::new(),
        };
        // Directories watched one level deep: the parents of the trees and
        // of the single files, unless a tree covers them already (a second
        // watch on one directory would replace the recursive one).
        let singles = paths.iter().filter(|p| p.is_file()).chain(files);
        let parents: BTreeSet<PathBuf> = watcher
            .trees
            .iter()
            .chain(singles)
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .filter(|dir| !watcher.trees.iter().any(|t| dir.starts_with(t)))
            .collect();
        for dir in parents.iter().filter(|d| d.is_dir()) {
            watcher
                .inner
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatcherError::Watch {
                    path: dir.clone(),
                    source,
                })?;
        }
        for tree in watcher.trees.clone() {
            watcher.rewatch(&tree)?;
        }
        Ok(watcher)
    }

    /// Every file and directory under the watched trees and the given
    /// single paths (the start-up sync, and what a lost event costs).
    pub fn everything(&self, singles: &[PathBuf]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for tree in &self.trees {
            walk(tree, &mut out);
        }
        out.extend(singles.iter().filter(|p| p.is_file()).cloned());
        out
    }

    /// Waits up to `timeout` for events, then takes every event queued.
    pub fn wait(&mut self, timeout: Duration) -> Result<Changes, WatcherError> {
        let mut changes = Changes::default();
        let first = match self.events.recv_timeout(timeout) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => return Ok(changes),
            Err(RecvTimeoutError::Disconnected) => return Err(WatcherError::Stopped),
        };
        let mut rescan = false;
        let mut revisit = BTreeSet::new();
        for event in std::iter::once(first).chain(self.events.try_iter()) {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    changes.warnings.push(e.to_string());
                    continue;
                }
            };
            // The queue overflowed: what changed is unknown.
            rescan |= event.need_rescan();
            if is_read(&event.kind) {
                continue;
            }
            for path in event.paths {
                if self.trees.contains(&path) {
                    revisit.insert(path.clone());
                } else if appeared(&event.kind) && path.is_dir() {
                    walk(&path, &mut changes.paths);
                }
                changes.paths.push(path);
            }
        }
        for tree in revisit {
            if let Err(e) = self.rewatch(&tree) {
                changes.warnings.push(e.to_string());
            }
            walk(&tree, &mut changes.paths);
        }
        // A tree whose parent was not watchable at start may exist now.
        for tree in self.trees.clone() {
            if !self.live.contains(&tree) && tree.is_dir() {
                if let Err(e) = self.rewatch(&tree) {
                    changes.warnings.push(e.to_string());
                }
                walk(&tree, &mut changes.paths);
            }
        }
        if rescan {
            changes.paths.extend(self.everything(&[]));
        }
        Ok(changes)
    }

    /// (Re)watches a tree: its old watch died with its inode, if it was
    /// deleted; a tree that does not exist now waits for its parent's event.
    fn rewatch(&mut self, tree: &Path) -> Result<(), WatcherError> {
        if self.live.remove(tree) {
            let _ = self.inner.unwatch(tree);
        }
        if !tree.is_dir() {
            return Ok(());
        }
        match self.inner.watch(tree, RecursiveMode::Recursive) {
            Ok(()) => {
                self.live.insert(tree.to_path_buf());
                Ok(())
            }
            // Deleted again between the check and the watch.
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Ok(()),
            Err(source) => Err(WatcherError::Watch {
                path: tree.to_path_buf(),
                source,
            }),
        }
    }
}

/// Events that change nothing: opens and reads, ours included (copying a
/// file into a container opens it, which must not announce a change).
fn is_read(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        EventKind::Access(_) => true,
        _ => false,
    }
}

/// Events after which a path may be a new directory with contents.
fn appeared(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)))
}

/// Every entry below `dir`, symlinks not followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.push(path.clone());
        if is_dir {
            walk(&path, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Collects changes until `want` is among them (or 5 s pass).
    fn until(watcher: &mut Watcher, want: &Path) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut all = Vec::new();
        while Instant::now() < deadline {
            all.extend(watcher.wait(Duration::from_millis(100)).unwrap().paths);
            if all.iter().any(|p| p == want) {
                return all;
            }
        }
        panic!("no event for {} in {all:?}", want.display());
    }

    #[test]
    fn new_directories_are_walked_and_deleted_trees_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("src");
        std::fs::create_dir(&tree).unwrap();
        let mut watcher = Watcher::new(std::slice::from_ref(&tree), &[]).unwrap();

        // A directory moved in whole: only a rename event for the directory.
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(staging.join("deep")).unwrap();
        std::fs::write(staging.join("deep/file"), "x").unwrap();
        std::fs::rename(&staging, tree.join("moved")).unwrap();
        until(&mut watcher, &tree.join("moved/deep/file"));

        // Files in a subdirectory created after the start.
        std::fs::write(tree.join("moved/deep/later"), "y").unwrap();
        until(&mut watcher, &tree.join("moved/deep/later"));

        // The tree deleted and created again keeps working.
        std::fs::remove_dir_all(&tree).unwrap();
        until(&mut watcher, &tree);
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("again"), "z").unwrap();
        until(&mut watcher, &tree.join("again"));
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(tree.join("after"), "z").unwrap();
        until(&mut watcher, &tree.join("after"));
    }

    #[test]
    fn single_files_survive_an_atomic_save_and_reads_are_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, "a").unwrap();
        let mut watcher = Watcher::new(&[], std::slice::from_ref(&file)).unwrap();
        for round in 0..2 {
            let temp = dir.path().join(".compose.yaml.tmp");
            std::fs::write(&temp, format!("b{round}")).unwrap();
            std::fs::rename(&temp, &file).unwrap();
            until(&mut watcher, &file);
        }
        let _ = std::fs::read(&file).unwrap();
        let quiet = watcher.wait(Duration::from_millis(200)).unwrap();
        assert!(quiet.paths.is_empty(), "a read announced {:?}", quiet.paths);
    }
}
