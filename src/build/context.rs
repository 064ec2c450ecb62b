//! Where COPY/ADD sources come from: the build context (less what
//! `.dockerignore` excludes) or another stage's or image's files; which
//! files a source pattern names; and their content hash for the cache.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ignore::{glob_segment, IgnoreRules};
use super::BuildError;
use crate::runtime::rootfs::scoped_join;

/// A tree sources are taken from.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub dir: PathBuf,
    /// The context's `.dockerignore` (none for a stage or image).
    pub ignore: IgnoreRules,
    /// Symlinks resolve inside `dir` as if it were `/` (a rootfs), rather
    /// than having to stay inside it (the context).
    pub rootfs: bool,
}

/// One matched source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// On the host (symlinks of the source path itself followed).
    pub path: PathBuf,
    /// Relative to the tree, `/`-separated (`.` for the tree itself).
    pub rel: String,
    pub is_dir: bool,
}

fn has_glob(segment: &str) -> bool {
    segment.contains(['*', '?', '['])
}

impl SourceTree {
    pub fn context(dir: &Path) -> Result<SourceTree, BuildError> {
        let dir = fs::canonicalize(dir).map_err(BuildError::io("cannot open the build context", dir))?;
        let ignore_file = dir.join(".dockerignore");
        let ignore = match fs::read_to_string(&ignore_file) {
            Ok(text) => IgnoreRules::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => IgnoreRules::default(),
            Err(e) => return Err(BuildError::io("cannot read", ignore_file)(e)),
        };
        Ok(SourceTree {
            dir,
            ignore,
            rootfs: false,
        })
    }

    pub fn rootfs(dir: &Path) -> SourceTree {
        SourceTree {
            dir: dir.to_path_buf(),
            ignore: IgnoreRules::default(),
            rootfs: true,
        }
    }

    pub fn excluded(&self, rel: &str) -> bool {
        rel != "." && self.ignore.is_excluded(rel)
    }

    /// The sources `pattern` names (globs per segment, as
    /// `filepath.Match`); an error if it names nothing.
    pub fn resolve(&self, pattern: &str) -> Result<Vec<Source>, String> {
        let mut segments: Vec<&str> = Vec::new();
        for part in pattern.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    // Like docker, `..` cannot leave the tree's top.
                    segments.pop();
                }
                other => segments.push(other),
            }
        }
        let mut matches: Vec<String> = vec![String::new()];
        for segment in &segments {
            let mut next = Vec::new();
            for prefix in &matches {
                if has_glob(segment) {
                    let dir = self.host_path(prefix);
                    let Ok(entries) = fs::read_dir(&dir) else { continue };
                    let mut names: Vec<String> = entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|name| glob_segment(segment, name))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|name| join_rel(prefix, &name)));
                } else {
                    next.push(join_rel(prefix, segment));
                }
            }
            matches = next;
        }
        let mut sources = Vec::new();
        for rel in matches {
            let rel = if rel.is_empty() { ".".to_string() } else { rel };
            if self.excluded(&rel) {
                continue;
            }
            let path = self.host_path(&rel);
            let Ok(meta) = fs::metadata(&path) else { continue };
            if !self.rootfs {
                // A context symlink must not lead out of the context.
                let real = fs::canonicalize(&path).map_err(|e| format!("{rel}: {e}"))?;
                if !real.starts_with(&self.dir) {
                    return Err(format!("{rel}: forbidden path outside the build context"));
                }
            }
            sources.push(Source {
                path,
                rel,
                is_dir: meta.is_dir(),
            });
        }
        if sources.is_empty() {
            return Err(format!("{pattern:?}: not found"));
        }
        Ok(sources)
    }

    fn host_path(&self, rel: &str) -> PathBuf {
        if self.rootfs {
            scoped_join(&self.dir, rel)
        } else if rel.is_empty() || rel == "." {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// Visits `source` and (for a directory) everything below it that is
    /// not excluded, parents before children, names sorted: `visit` gets
    /// the path relative to the source (empty for the source itself).
    pub fn walk(
        &self,
        source: &Source,
        visit: &mut dyn FnMut(&str, &Path, &Metadata) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let meta = fs::metadata(&source.path).map_err(BuildError::io("cannot stat", &source.path))?;
        visit("", &source.path, &meta)?;
        if meta.is_dir() {
            self.walk_dir(&source.path, &source.rel, "", visit)?;
        }
        Ok(())
    }

    fn walk_dir(
        &self,
        dir: &Path,
        tree_rel: &str,
        rel: &str,
        visit: &mut dyn FnMut(&str, &Path, &Metadata) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(BuildError::io("cannot list", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(BuildError::io("cannot list", dir))?;
        names.sort();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let child_rel = join_rel(rel, &name);
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(BuildError::io("cannot stat", &path))?;
            if self.excluded(&join_rel(if tree_rel == "." { "" } else { tree_rel }, &child_rel)) {
                // An exception (`!dir/keep`) may re-include something below.
                if meta.is_dir() && self.ignore.has_exceptions() {
                    self.walk_dir(&path, tree_rel, &child_rel, visit)?;
                }
                continue;
            }
            visit(&child_rel, &path, &meta)?;
            if meta.is_dir() {
                self.walk_dir(&path, tree_rel, &child_rel, visit)?;
            }
        }
        Ok(())
    }

    /// A hash of what the sources hold: names, types, modes and contents
    /// (not times or owners: those would defeat the cache after a checkout).
    pub fn content_hash(&self, sources: &[Source]) -> Result<String, BuildError> {
        let mut hasher = Sha256::new();
        for source in sources {
            hasher.update(format!("source {}\0", source.rel));
            self.walk(source, &mut |rel, path, meta| {
                let kind = if meta.is_dir() {
                    "d"
                } else if meta.file_type().is_symlink() {
                    "l"
                } else if meta.is_file() {
                    "f"
                } else {
                    "o"
                };
                hasher.update(format!(
                    "{kind} {rel} {:o} {}\0",
                    meta.permissions().mode() & 0o7777,
                    meta.size()
                ));
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(path).map_err(BuildError::io("cannot read link", path))?;
                    hasher.update(target.to_string_lossy().as_bytes());
                } else if meta.is_file() {
                    let mut file = File::open(path).map_err(BuildError::io("cannot open", path))?;
                    io::copy(&mut file, &mut hasher).map_err(BuildError::io("cannot read", path))?;
                }
                Ok(())
            })?;
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

fn join_rel(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("src/sub")).unwrap();
        fs::write(d.join("src/a.txt"), "a").unwrap();
        fs::write(d.join("src/b.txt"), "b").unwrap();
        fs::write(d.join("src/sub/c.txt"), "c").unwrap();
        fs::write(d.join("secret.key"), "k").unwrap();
        fs::write(d.join(".dockerignore"), "*.key\nsrc/sub\n").unwrap();
        let tree = SourceTree::context(d).unwrap();
        (dir, tree)
    }

    fn rels(sources: &[Source]) -> Vec<&str> {
        sources.iter().map(|s| s.rel.as_str()).collect()
    }

    #[test]
    fn globs_and_ignores() {
        let (_dir, tree) = tree();
        assert_eq!(rels(&tree.resolve("src/*.txt").unwrap()), ["src/a.txt", "src/b.txt"]);
        assert_eq!(rels(&tree.resolve("/src/a.txt").unwrap()), ["src/a.txt"]);
        assert_eq!(rels(&tree.resolve("../../src/a.txt").unwrap()), ["src/a.txt"]);
        assert_eq!(rels(&tree.resolve(".").unwrap()), ["."]);
        assert!(tree.resolve("secret.key").unwrap_err().contains("not found"));
        assert!(tree.resolve("src/sub/c.txt").is_err());
        assert!(tree.resolve("nope*").is_err());
    }

    #[test]
    fn walks_skip_ignored_and_hash_tracks_content() {
        let (dir, tree) = tree();
        let all = tree.resolve(".").unwrap();
        let mut seen = Vec::new();
        tree.walk(&all[0], &mut |rel, _, _| {
            seen.push(rel.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["", ".dockerignore", "src", "src/a.txt", "src/b.txt"]);
        let before = tree.content_hash(&all).unwrap();
        fs::write(dir.path().join("secret.key"), "changed").unwrap();
        assert_eq!(tree.content_hash(&all).unwrap(), before, "ignored files do not count");
        fs::write(dir.path().join("src/a.txt"), "changed").unwrap();
        assert_ne!(tree.content_hash(&all).unwrap(), before);
    }

    #[test]
    fn exceptions_reach_inside_excluded_dirs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("build")).unwrap();
        fs::write(dir.path().join("build/out.o"), "o").unwrap();
        fs::write(dir.path().join("build/keep.txt"), "k").unwrap();
        fs::write(dir.path().join(".dockerignore"), "build\n!build/keep.txt\n").unwrap();
        let tree = SourceTree::context(dir.path()).unwrap();
        let all = tree.resolve(".").unwrap();
        let mut seen = Vec::new();
        tree.walk(&all[0], &mut |rel, _, _| {
            seen.push(rel.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["", ".dockerignore", "build/keep.txt"]);
    }

    #[test]
    fn context_symlinks_cannot_escape() {
        let (dir, tree) = tree();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("out")).unwrap();
        assert!(tree.resolve("out").unwrap_err().contains("outside the build context"));
    }
}
