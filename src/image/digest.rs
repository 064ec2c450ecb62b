//! Content digests (`sha256:<hex>`), hashing readers/writers and OCI chain ids.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::ImageError;

/// A sha256 content digest. Other algorithms are refused: every blob berth
/// stores is addressed by sha256, so one algorithm keeps the store simple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(text: &str) -> Result<Self, ImageError> {
        let invalid = |reason: &str| ImageError::InvalidDigest {
            digest: text.to_string(),
            reason: reason.to_string(),
        };
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| invalid("only sha256 digests are supported"))?;
        Self::from_hex(hex).map_err(|_| invalid("expected 64 lowercase hex digits"))
    }

    /// Wraps 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, ImageError> {
        if is_sha256_hex(hex) {
            Ok(Digest { hex: hex.to_string() })
        } else {
            Err(ImageError::InvalidDigest {
                digest: hex.to_string(),
                reason: "expected 64 lowercase hex digits".to_string(),
            })
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Digest {
            hex: hex(&hasher.finalize()),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OCI chain id of a layer stack, given its diff ids lowest first:
/// `chainid(L0) = diffid(L0)`, `chainid(Ln) = sha256(chainid(Ln-1) + " " + diffid(Ln))`.
/// Returns the chain id of every prefix, so layer `i` is `result[i]`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads whatever is left (tar streams end with padding the tar reader
    /// may not consume), then returns the digest and byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d = Digest::parse(&format!("sha256:{EMPTY}")).unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!(Digest::parse(EMPTY).is_err());
        assert!(Digest::parse("sha512:abcd").is_err());
        assert!(Digest::parse(&format!("sha256:{}", EMPTY.to_uppercase())).is_err());
        assert!(Digest::parse("sha256:../../etc").is_err());
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = Digest::of(b"c");
        let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(chain[0], a);
        let ab = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(chain[1], ab);
        assert_eq!(chain[2], Digest::of(format!("{ab} {c}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn hashing_reader_and_writer_agree() {
        let data = b"hello layers".repeat(1000);
        let (d, n) = HashingReader::new(&data[..]).finish().unwrap();
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, d2, n2) = w.finish();
        assert_eq!((d.clone(), n), (d2, n2));
        assert_eq!(out, data);
        assert_eq!(d, Digest::of(&data));
    }
}
