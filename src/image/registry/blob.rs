//! Blob bodies that survive a broken connection: the rest is asked for
//! again with `Range: bytes=N-` (skipping what we have when the server
//! ignores the range), with backoff, while the consumer (the blob store,
//! hashing as it writes) sees one uninterrupted stream.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};

use super::auth::pull_scope;
use super::client::{debug_retry, Session};
use super::RegistryError;
use crate::image::digest::Digest;

impl Session {
    /// A reader of a blob's bytes that resumes where it broke off.
    pub fn blob<'a>(
        &'a self,
        repository: &'a str,
        digest: &'a Digest,
        size: u64,
        cancel: &'a AtomicBool,
        on_bytes: &'a (dyn Fn(u64) + Sync),
    ) -> BlobReader<'a> {
        BlobReader {
            session: self,
            repository,
            digest,
            size,
            received: 0,
            response: None,
            failures: 0,
            cancel,
            on_bytes,
            failure: None,
        }
    }
}

/// Streams a blob; on a broken connection it asks again for the rest
/// (`Range: bytes=N-`), skipping what it has when the server ignores the
/// range. What it finally failed with is left in [`BlobReader::failure`].
pub struct BlobReader<'a> {
    session: &'a Session,
    repository: &'a str,
    digest: &'a Digest,
    size: u64,
    received: u64,
    response: Option<Response>,
    failures: u32,
    cancel: &'a AtomicBool,
    on_bytes: &'a (dyn Fn(u64) + Sync),
    pub failure: Option<RegistryError>,
}

impl BlobReader<'_> {
    fn open(&mut self) -> Result<Response, RegistryError> {
        let path = format!("/v2/{}/blobs/{}", self.repository, self.digest);
        let range = (self.received > 0).then(|| format!("bytes={}-", self.received));
        let mut response = self
            .session
            .send(Method::GET, &path, &pull_scope(self.repository), None, range)?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT if self.received > 0 => Ok(response),
            StatusCode::OK => {
                if self.received > 0 {
                    let url = response.url().to_string();
                    let skipped = io::copy(&mut (&mut response).take(self.received), &mut io::sink())
                        .map_err(|source| RegistryError::Body { url, source })?;
                    if skipped < self.received {
                        return Err(RegistryError::Truncated {
                            received: skipped,
                            expected: self.size,
                            source: None,
                        });
                    }
                }
                Ok(response)
            }
            _ => Err(self.session.status_error(response, self.repository, None)),
        }
    }

    fn fail(&mut self, error: RegistryError) -> io::Error {
        let message = error.to_string();
        self.failure = Some(match error {
            RegistryError::Cancelled | RegistryError::Oversized { .. } => error,
            error => RegistryError::Download {
                digest: self.digest.clone(),
                attempts: self.failures.max(1),
                source: Box::new(error),
            },
        });
        io::Error::other(message)
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(self.fail(RegistryError::Cancelled));
            }
            let Some(response) = self.response.as_mut() else {
                // `send` has retried the connection already.
                match self.open() {
                    Ok(response) => self.response = Some(response),
                    Err(error) => return Err(self.fail(error)),
                }
                continue;
            };
            let error = match response.read(buf) {
                Ok(0) if self.received >= self.size => return Ok(0),
                Ok(0) => RegistryError::Truncated {
                    received: self.received,
                    expected: self.size,
                    source: None,
                },
                Ok(n) if self.received + n as u64 > self.size => {
                    let error = RegistryError::Oversized {
                        digest: self.digest.clone(),
                        expected: self.size,
                    };
                    return Err(self.fail(error));
                }
                Ok(n) => {
                    self.received += n as u64;
                    self.failures = 0;
                    (self.on_bytes)(n as u64);
                    return Ok(n);
                }
                Err(source) => RegistryError::Truncated {
                    received: self.received,
                    expected: self.size,
                    source: Some(source),
                },
            };
            self.response = None;
            self.failures += 1;
            if self.failures >= self.session.retry.attempts {
                return Err(self.fail(error));
            }
            debug_retry(&error);
            std::thread::sleep(self.session.retry.delay(self.failures));
        }
    }
}
