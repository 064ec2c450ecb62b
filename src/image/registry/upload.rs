//! What one push sends over the wire, blob by blob: a HEAD (skip what the
//! repository has), else a cross-repository mount, else a monolithic
//! upload (POST for a session, then one PUT of the whole blob with its
//! digest); and the manifest PUT. See [`super::push`] for the whole push.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use reqwest::blocking::{Body, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::client::{debug_retry, Session};
use super::manifest::Descriptor;
use super::progress::Progress;
use super::push::PushStep;
use super::RegistryError;
use crate::image::digest::Digest;
use crate::image::{ImageError, ImageStore};

/// docker's default `max-concurrent-uploads`.
const CONCURRENT_UPLOADS: usize = 3;

/// What a blob's push came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sent {
    Existing,
    Mounted(String),
    Uploaded,
}

#[derive(Default)]
pub(super) struct Counts {
    pub(super) uploaded: AtomicU64,
    pub(super) mounted: AtomicU64,
    pub(super) existing: AtomicU64,
}

/// What the upload threads of one push share.
pub(super) struct Upload<'a> {
    pub(super) session: &'a Session,
    pub(super) store: &'a ImageStore,
    pub(super) repository: &'a str,
    pub(super) mount_from: Option<&'a str>,
    pub(super) progress: &'a Progress,
    pub(super) counts: &'a Counts,
}

pub(super) type StepFailure = (PushStep, RegistryError);

impl Upload<'_> {
    /// The layers, a bounded number at a time; the first failure stops
    /// the others from starting another blob.
    pub(super) fn send_all(&self, layers: &[Descriptor]) -> Result<(), StepFailure> {
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let failure: Mutex<Option<StepFailure>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..CONCURRENT_UPLOADS.min(layers.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= layers.len() || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(error) = self.send(&layers[i], true) {
                        cancel.store(true, Ordering::Relaxed);
                        let mut slot = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        slot.get_or_insert(error);
                        break;
                    }
                });
            }
        });
        match failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One blob: HEAD, else mount, else upload. `show`: report it (docker
    /// reports layers, not the config).
    pub(super) fn send(&self, blob: &Descriptor, show: bool) -> Result<Sent, StepFailure> {
        let digest = &blob.digest;
        let short = digest.short();
        let at = |step: fn(Digest) -> PushStep| move |error: RegistryError| (step(digest.clone()), error);
        if !self.store.blobs.has_blob(digest) {
            let missing = ImageError::BlobMissing { digest: digest.clone() };
            return Err((PushStep::ReadBlob(digest.clone()), missing.into()));
        }
        let sent = if self.exists(digest).map_err(at(PushStep::CheckBlob))? {
            Sent::Existing
        } else {
            let mut failures = 0;
            loop {
                match self.upload(blob) {
                    Ok(sent) => break sent,
                    // The upload session may hold part of the blob: a new
                    // try starts over with a new session.
                    Err((_, error)) if error.is_transient() && failures + 1 < self.session.retry.attempts => {
                        failures += 1;
                        debug_retry(&error);
                        std::thread::sleep(self.session.retry.delay(failures));
                    }
                    Err(failure) => return Err(failure),
                }
            }
        };
        let (counter, line) = match &sent {
            Sent::Existing => (&self.counts.existing, format!("{short}: Layer already exists")),
            Sent::Mounted(from) => (&self.counts.mounted, format!("{short}: Mounted from {from}")),
            Sent::Uploaded => (&self.counts.uploaded, format!("{short}: Pushed")),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if show {
            self.progress.line(&line);
        }
        Ok(sent)
    }

    fn exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let response = self
            .session
            .send(Method::HEAD, &path, &push_scope(self.repository), None, None)?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.session.status_error(response, self.repository, None)),
        }
    }

    /// A mount when there is a repository to mount from (the registry
    /// answers 201), else — or when it declines with a session (202) — a
    /// monolithic upload.
    fn upload(&self, blob: &Descriptor) -> Result<Sent, StepFailure> {
        let digest = &blob.digest;
        let scope = push_scope(self.repository);
        let mut path = format!("/v2/{}/blobs/uploads/", self.repository);
        if let Some(from) = self.mount_from {
            path.push_str(&format!("?mount={digest}&from={from}"));
        }
        let step = match self.mount_from {
            Some(_) => PushStep::MountBlob(digest.clone()),
            None => PushStep::UploadBlob(digest.clone()),
        };
        let response = self
            .request(Method::POST, &path, &scope, None)
            .map_err(|e| (step.clone(), e))?;
        match (response.status(), self.mount_from) {
            (StatusCode::CREATED, Some(from)) => return Ok(Sent::Mounted(from.to_string())),
            (StatusCode::ACCEPTED, _) => {}
            _ => return Err((step, self.session.status_error(response, self.repository, None))),
        }
        let failed = |e| (PushStep::UploadBlob(digest.clone()), e);
        let location = location(&response).ok_or_else(|| {
            failed(RegistryError::Status {
                url: response.url().to_string(),
                status: response.status().as_u16(),
                detail: "an upload session without a Location".into(),
            })
        })?;
        let url = upload_url(&self.session.base, &location, digest);
        let file = self
            .store
            .blobs
            .open_blob(digest)
            .map_err(|e| (PushStep::ReadBlob(digest.clone()), e.into()))?;
        // One try: a broken PUT leaves the session in an unknown state, so
        // the caller retries from a new session instead.
        let authorization = self.session.authorization(&scope).map_err(failed)?;
        let mut request = self
            .session
            .http
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Body::sized(file, blob.size));
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let response = request.send().map_err(|source| {
            failed(match source.is_connect() {
                true => RegistryError::Unreachable {
                    registry: self.session.registry.clone(),
                    source,
                },
                false => RegistryError::Http {
                    url: url.clone(),
                    source,
                },
            })
        })?;
        if response.status() != StatusCode::CREATED {
            return Err(failed(self.session.status_error(response, self.repository, None)));
        }
        Ok(Sent::Uploaded)
    }

    /// PUTs the manifest `bytes` (of type `media_type`, digest `digest`)
    /// as `tag`.
    pub(super) fn put_manifest(
        &self,
        tag: &str,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let path = format!("/v2/{}/manifests/{tag}", self.repository);
        let content = Some((media_type, bytes));
        let response = self.request(Method::PUT, &path, &push_scope(self.repository), content)?;
        if response.status() != StatusCode::CREATED {
            return Err(self.session.status_error(response, self.repository, Some(tag)));
        }
        // The registry hashes what it got: a different digest means it
        // stored other bytes than ours (a proxy rewrote them).
        let claimed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| Digest::parse(d).ok());
        match claimed {
            Some(actual) if actual != *digest => Err(ImageError::DigestMismatch {
                what: format!("manifest {}:{tag} as the registry stored it", self.repository),
                expected: digest.clone(),
                actual,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// A request with the session's authorization and an optional small
    /// body; transport failures are retried (the body is in memory). A
    /// token that expired is renewed by the HEAD (`Session::send`) that
    /// comes before each blob's POST and before the manifest.
    fn request(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        content: Option<(&str, &[u8])>,
    ) -> Result<Response, RegistryError> {
        let url = format!("{}{path}", self.session.base);
        let authorization = self.session.authorization(scope)?;
        let request = || {
            let mut request = self.session.http.request(method.clone(), &url);
            if let Some(authorization) = &authorization {
                request = request.header(AUTHORIZATION, authorization);
            }
            match content {
                Some((media_type, bytes)) => request.header(CONTENT_TYPE, media_type).body(bytes.to_vec()),
                // reqwest sends a bodiless POST without a length, which
                // registries behind some proxies refuse (411); docker's
                // client sends `Content-Length: 0`.
                None => request.header(CONTENT_LENGTH, 0),
            }
        };
        self.session.execute(&url, &request)
    }
}

/// The push scope of a repository, as the token flow names it.
pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn location(response: &Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The PUT URL of an upload session: its `Location` (absolute, or
/// relative to the registry) with the digest added to the query.
fn upload_url(base: &str, location: &str, digest: &Digest) -> String {
    let url = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_keep_the_session_state_and_add_the_digest() {
        let d = Digest::of(b"blob");
        assert_eq!(
            upload_url("http://r:5000", "/v2/a/blobs/uploads/u1?_state=x", &d),
            format!("http://r:5000/v2/a/blobs/uploads/u1?_state=x&digest={d}")
        );
        assert_eq!(
            upload_url("http://r:5000", "https://cdn.example/up/u2", &d),
            format!("https://cdn.example/up/u2?digest={d}")
        );
        assert_eq!(
            upload_url("http://r:5000", "v2/a/blobs/uploads/u3", &d),
            format!("http://r:5000/v2/a/blobs/uploads/u3?digest={d}")
        );
    }

    #[test]
    fn pushes_ask_for_pull_and_push() {
        assert_eq!(push_scope("team/app"), "repository:team/app:pull,push");
    }
}
