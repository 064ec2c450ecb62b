//! One layer of a pull, downloaded and unpacked at the same time.
//!
//! The download thread reads the blob in chunks, hashes each into the
//! blob's staging file ([`BlobDraft`]) and hands it to an unpack thread
//! over a bounded channel: a few MiB are in flight, never the whole blob.
//! The unpack thread decompresses and places the tar entries into a
//! staging snapshot ([`Snapshots::stage`], with its refusal of hostile
//! entries), hashing the uncompressed stream for the diff id.
//!
//! Nothing is published until the download is complete: then the blob is
//! checked against its digest and renamed into the blob store, the
//! snapshot's diff id is checked, and only then is the snapshot renamed to
//! its chain id. Any failure drops both staging copies, so the store never
//! holds part of a layer.
//!
//! A broken connection is resumed inside [`super::blob::BlobReader`] (a
//! `Range` request for the rest), so both consumers see one uninterrupted
//! stream and the unpacker never needs the prefix again.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};

use super::manifest::Descriptor;
use crate::image::blobs::BlobDraft;
use crate::image::digest::Digest;
use crate::image::snapshots::Snapshots;
use crate::image::{ImageError, ImageStore};

/// Bytes per chunk handed to the unpacker: large enough that a 30 MB layer
/// is ~120 channel messages and the tar writer does large writes.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the download and the unpacker (4 MiB): the
/// download runs ahead of a slow disk by this much, no further.
const IN_FLIGHT: usize = 16;

/// What the download sends the unpacker.
enum Chunk {
    Data(Vec<u8>),
    /// The download is complete (a verified end comes later, but nothing
    /// more will arrive). Without it a closed channel is an error.
    End,
}

/// Streams `source` (a layer blob's bytes) into the blob store and the
/// snapshot `chain_id` at once. `on_downloaded` runs when the last byte
/// has arrived, before the checks.
///
/// Errors reading `source` come back as an I/O error on the staging file;
/// a caller whose reader records its own failure should prefer that.
pub(super) fn download_and_unpack(
    store: &ImageStore,
    source: &mut dyn Read,
    layer: &Descriptor,
    diff_id: &Digest,
    chain_id: &Digest,
    on_downloaded: &dyn Fn(),
) -> Result<(), ImageError> {
    let in_layer = |source: ImageError| ImageError::Layer {
        layer: layer.digest.clone(),
        source: Box::new(source),
    };
    let media_type = Some(layer.media_type.as_str()).filter(|t| !t.is_empty());
    let snapshots: &Snapshots = &store.snapshots;
    let mut draft = store.blobs.draft()?;
    let (chunks, received) = sync_channel::<Chunk>(IN_FLIGHT);
    let (recycle, recycled) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    std::thread::scope(|scope| {
        let unpacker = scope.spawn(move || snapshots.stage(ChunkReader::new(received, recycle), media_type));
        let downloaded = pump(source, &mut draft, &chunks, &recycled);
        if downloaded.is_ok() {
            // A receiver that already stopped (it failed) is not an error
            // of the download.
            let _ = chunks.send(Chunk::End);
        }
        drop(chunks);
        let staged = unpacker.join().unwrap_or_else(|_| {
            Err(ImageError::Unpack {
                entry: String::new(),
                source: io::Error::other("the unpack thread panicked"),
            })
        });
        downloaded?;
        on_downloaded();
        // The blob first: a corrupt download is reported as such, even
        // when it also broke the unpacking.
        draft.commit(Some(&layer.digest))?;
        let staged = staged.map_err(in_layer)?;
        if staged.layer.diff_id != *diff_id {
            return Err(in_layer(ImageError::DigestMismatch {
                what: "uncompressed layer (diff id)".to_string(),
                expected: diff_id.clone(),
                actual: staged.layer.diff_id.clone(),
            }));
        }
        snapshots.publish(staged, chain_id).map_err(in_layer)?;
        Ok(())
    })
}

/// Copies `source` into `draft` chunk by chunk, passing each chunk on to
/// the unpacker while it still listens (one that stopped early has failed;
/// the download goes on so the blob can still be verified and kept).
fn pump(
    source: &mut dyn Read,
    draft: &mut BlobDraft,
    chunks: &SyncSender<Chunk>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(), ImageError> {
    let mut unpacking = true;
    let mut spare = Vec::new();
    loop {
        let mut buf = match recycled.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => std::mem::take(&mut spare),
        };
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        let mut filled = 0;
        while filled < CHUNK {
            match source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ImageError::io("cannot download into", draft.path())(error)),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        buf.truncate(filled);
        draft
            .write_all(&buf)
            .map_err(|error| ImageError::io("cannot write blob", draft.path())(error))?;
        if unpacking {
            if let Err(returned) = chunks.send(Chunk::Data(buf)) {
                unpacking = false;
                if let Chunk::Data(buf) = returned.0 {
                    spare = buf;
                }
            }
        } else {
            spare = buf;
        }
        if filled < CHUNK {
            return Ok(());
        }
    }
}

/// The unpacker's end of the channel: the chunks, in order, as one stream.
struct ChunkReader {
    chunks: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    ended: bool,
}

impl ChunkReader {
    fn new(chunks: Receiver<Chunk>, recycle: SyncSender<Vec<u8>>) -> Self {
        ChunkReader {
            chunks,
            recycle,
            current: Vec::new(),
            position: 0,
            ended: false,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.position == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            let used = std::mem::take(&mut self.current);
            if used.capacity() > 0 {
                // Never blocks: a full return lane just frees the buffer.
                let _ = self.recycle.try_send(used);
            }
            self.position = 0;
            match self.chunks.recv() {
                Ok(Chunk::Data(data)) => self.current = data,
                Ok(Chunk::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the download stopped before the end of the layer",
                    ))
                }
            }
        }
        let n = out.len().min(self.current.len() - self.position);
        out[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::chain_ids;
    use crate::store::Root;

    fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            builder.append_data(&mut header, name, &data[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A reader that fails after `limit` bytes, as a dead connection does.
    struct Cut<'a>(&'a [u8], usize);
    impl Read for Cut<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            self.1 -= n;
            Ok(n)
        }
    }

    struct Case {
        _dir: tempfile::TempDir,
        root: Root,
        store: ImageStore,
        descriptor: Descriptor,
        diff_id: Digest,
        chain_id: Digest,
        blob: Vec<u8>,
    }

    fn case(files: &[(&str, Vec<u8>)]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let store = ImageStore::open(&root).unwrap();
        let tar = tar_of(files);
        let blob = gzip(&tar);
        let diff_id = Digest::of(&tar);
        Case {
            descriptor: Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: Digest::of(&blob),
                size: blob.len() as u64,
                platform: None,
            },
            chain_id: chain_ids(std::slice::from_ref(&diff_id))[0].clone(),
            diff_id,
            blob,
            root,
            store,
            _dir: dir,
        }
    }

    impl Case {
        fn run(&self, source: &mut dyn Read, diff_id: &Digest) -> Result<(), ImageError> {
            download_and_unpack(&self.store, source, &self.descriptor, diff_id, &self.chain_id, &|| {})
        }

        fn staging_left(&self) -> usize {
            std::fs::read_dir(self.root.tmp_dir()).map_or(0, |d| d.count())
        }
    }

    #[test]
    fn a_streamed_layer_is_stored_and_unpacked() {
        // Several chunks' worth, so the pipe really carries a stream.
        let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i * 7 % 256) as u8).collect();
        let c = case(&[("etc/small", b"hi".to_vec()), ("big", big.clone())]);
        c.run(&mut &c.blob[..], &c.diff_id).unwrap();
        assert_eq!(c.store.blobs.read_blob(&c.descriptor.digest).unwrap(), c.blob);
        let fs = c.store.snapshots.fs_path(&c.chain_id);
        assert_eq!(std::fs::read(fs.join("big")).unwrap(), big);
        assert_eq!(std::fs::read(fs.join("etc/small")).unwrap(), b"hi");
        assert_eq!(c.staging_left(), 0);
    }

    #[test]
    fn a_cut_download_leaves_nothing() {
        let big: Vec<u8> = (0..2 * CHUNK).map(|i| (i % 13) as u8).collect();
        let c = case(&[("big", big)]);
        let mut cut = Cut(&c.blob, c.blob.len() / 2);
        assert!(c.run(&mut cut, &c.diff_id).is_err());
        assert!(!c.store.blobs.has_blob(&c.descriptor.digest));
        assert!(!c.store.snapshots.exists(&c.chain_id));
        assert_eq!(c.staging_left(), 0);
    }

    #[test]
    fn corrupt_bytes_and_a_wrong_diff_id_publish_nothing() {
        let c = case(&[("file", b"content".to_vec())]);
        let mut corrupt = c.blob.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1; // the gzip trailer's size: decoding fails too
        let error = c.run(&mut &corrupt[..], &c.diff_id).unwrap_err();
        assert!(matches!(error, ImageError::DigestMismatch { .. }), "{error}");
        assert!(!c.store.blobs.has_blob(&c.descriptor.digest));

        let wrong = Digest::of(b"another layer");
        let error = c.run(&mut &c.blob[..], &wrong).unwrap_err();
        assert!(
            matches!(&error, ImageError::Layer { source, .. } if matches!(**source, ImageError::DigestMismatch { .. })),
            "{error}"
        );
        assert!(!c.store.snapshots.exists(&c.chain_id));
        assert_eq!(c.staging_left(), 0);
    }

    fn reader_of(parts: Vec<Vec<u8>>, end: bool) -> ChunkReader {
        let (tx, rx) = sync_channel(parts.len() + 1);
        let (recycle, _) = sync_channel(1);
        for part in parts {
            tx.send(Chunk::Data(part)).unwrap();
        }
        if end {
            tx.send(Chunk::End).unwrap();
        }
        ChunkReader::new(rx, recycle)
    }

    #[test]
    fn chunks_read_as_one_stream_and_a_cut_is_an_error() {
        let mut whole = Vec::new();
        reader_of(vec![b"ab".to_vec(), Vec::new(), b"cde".to_vec()], true)
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, b"abcde");

        let mut partial = Vec::new();
        let error = reader_of(vec![b"ab".to_vec()], false)
            .read_to_end(&mut partial)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(partial, b"ab");
    }
}
