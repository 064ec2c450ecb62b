//! The content-addressed blob store: `images/blobs/sha256/<hex>`.
//!
//! A blob is written to a staging file in the root's tmp dir, hashed while
//! written, checked against the expected digest, fsynced and only then
//! renamed into place: a crash or a corrupt download never leaves a file
//! under `blobs/` whose content does not match its name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::digest::{is_sha256_hex, Digest, HashingWriter};
use super::{staging_name, ImageError};
use crate::store::{create_private_dir, Root};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    pub fn new(root: &Root) -> Self {
        BlobStore {
            dir: root.blobs_dir().join("sha256"),
            tmp: root.tmp_dir(),
        }
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ImageError> {
        File::open(self.path(digest)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing { digest: digest.clone() },
            _ => ImageError::Io {
                context: "cannot open blob",
                path: self.path(digest),
                source,
            },
        })
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(ImageError::io("cannot read blob", self.path(digest)))?;
        Ok(bytes)
    }

    pub fn blob_size(&self, digest: &Digest) -> Result<u64, ImageError> {
        Ok(self
            .open_blob(digest)?
            .metadata()
            .map_err(ImageError::io("cannot stat blob", self.path(digest)))?
            .len())
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), ImageError> {
        self.write_blob_from_reader(bytes, None)
    }

    /// Streams `reader` into the store. With `expected`, content that does
    /// not hash to it is refused and nothing is stored.
    pub fn write_blob_from_reader(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), ImageError> {
        if let Some(expected) = expected {
            if self.has_blob(expected) {
                // Already stored (and verified then); still drain the
                // reader so stream positions stay consistent for callers.
                io::copy(&mut reader, &mut io::sink()).map_err(ImageError::io("cannot read blob source", &self.tmp))?;
                return Ok((expected.clone(), self.blob_size(expected)?));
            }
        }
        let mut draft = self.draft()?;
        let path = draft.path.clone();
        io::copy(&mut reader, &mut draft).map_err(ImageError::io("cannot write blob", path))?;
        draft.commit(expected)
    }

    /// A blob to be written piece by piece: a staging file, hashed as it
    /// grows, stored by [`BlobDraft::commit`] and removed if dropped.
    pub fn draft(&self) -> Result<BlobDraft, ImageError> {
        for dir in [&self.dir, &self.tmp] {
            create_private_dir(dir).map_err(ImageError::io("cannot create", dir.as_path()))?;
        }
        let path = self.tmp.join(staging_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(ImageError::io("cannot create", &path))?;
        Ok(BlobDraft {
            store: self.clone(),
            path,
            writer: Some(HashingWriter::new(file)),
            committed: false,
        })
    }

    /// Every digest stored (ignoring stray names).
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io("cannot list", self.dir.as_path())(e)),
        };
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ImageError::io("cannot list", self.dir.as_path()))?;
            let name = entry.file_name();
            if let Some(hex) = name.to_str().filter(|n| is_sha256_hex(n)) {
                digests.push(Digest::from_hex(hex)?);
            }
        }
        digests.sort();
        Ok(digests)
    }

    pub fn remove(&self, digest: &Digest) -> Result<(), ImageError> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("cannot remove blob", self.path(digest))(e))
            }
            _ => Ok(()),
        }
    }
}

/// A blob being written into the store's staging area. Nothing under
/// `blobs/` changes until [`BlobDraft::commit`]; dropped uncommitted, the
/// staging file is removed.
pub struct BlobDraft {
    store: BlobStore,
    path: PathBuf,
    writer: Option<HashingWriter<File>>,
    committed: bool,
}

impl BlobDraft {
    /// The staging file (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the content against `expected`, syncs it and renames it to
    /// its digest. A mismatch stores nothing.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), ImageError> {
        let Some(writer) = self.writer.take() else {
            return Err(ImageError::io("cannot write blob", &self.path)(io::Error::other(
                "the draft was already committed",
            )));
        };
        let (file, digest, size) = writer.finish();
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("blob {expected}"),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        file.sync_all().map_err(ImageError::io("cannot sync", &self.path))?;
        let target = self.store.path(&digest);
        fs::rename(&self.path, &target).map_err(ImageError::io("cannot store blob", &target))?;
        self.committed = true;
        Ok((digest, size))
    }
}

impl Write for BlobDraft {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.writer {
            Some(writer) => writer.write(buf),
            None => Err(io::Error::other("the blob draft was committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobDraft {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blobs_are_stored_and_corrupt_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        root.ensure().unwrap();
        let blobs = BlobStore::new(&root);
        let good = Digest::of(b"layer");
        let (d, n) = blobs.write_blob_from_reader(&b"layer"[..], Some(&good)).unwrap();
        assert_eq!((d.clone(), n), (good.clone(), 5));
        assert!(blobs.has_blob(&good));
        assert_eq!(blobs.read_blob(&good).unwrap(), b"layer");

        let claimed = Digest::of(b"something else");
        let err = blobs
            .write_blob_from_reader(&b"corrupt"[..], Some(&claimed))
            .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!blobs.has_blob(&claimed));
        assert!(!blobs.has_blob(&Digest::of(b"corrupt")));
        assert_eq!(fs::read_dir(root.tmp_dir()).unwrap().count(), 0, "no staging left");
        assert_eq!(blobs.list().unwrap(), vec![good.clone()]);
        blobs.remove(&good).unwrap();
        assert!(matches!(blobs.open_blob(&good), Err(ImageError::BlobMissing { .. })));
    }

    #[test]
    fn drafts_are_stored_on_commit_and_vanish_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        root.ensure().unwrap();
        let blobs = BlobStore::new(&root);
        let mut draft = blobs.draft().unwrap();
        draft.write_all(b"part one, ").unwrap();
        draft.write_all(b"part two").unwrap();
        let (digest, size) = draft.commit(Some(&Digest::of(b"part one, part two"))).unwrap();
        assert_eq!(size, 18);
        assert_eq!(blobs.read_blob(&digest).unwrap(), b"part one, part two");

        let mut dropped = blobs.draft().unwrap();
        dropped.write_all(b"abandoned").unwrap();
        assert!(dropped.path().is_file());
        drop(dropped);
        let mut wrong = blobs.draft().unwrap();
        wrong.write_all(b"not what was promised").unwrap();
        assert!(wrong.commit(Some(&Digest::of(b"promised"))).is_err());
        assert_eq!(fs::read_dir(root.tmp_dir()).unwrap().count(), 0, "no staging left");
        assert_eq!(blobs.list().unwrap(), vec![digest]);
    }
}
