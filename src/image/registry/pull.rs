//! A pull: reference → endpoint (mirrors first) → manifest (the platform's
//! image of an index) → config → layers, downloaded in parallel into the
//! blob store and unpacked while they download (`super::layer`) →
//! registered in the index like a loaded archive (`ImageStore::register`).
//!
//! Until that last step nothing names the image, so a failed pull leaves no
//! image behind; blobs that were completely downloaded and verified stay
//! (the next pull skips them; `image prune` collects them).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::ImageConfiguration;
use reqwest::blocking::Client;

use super::client::{http_client, FetchedManifest, RetryPolicy, Session};
use super::config::{Endpoint, EngineConfig};
use super::credentials::CredentialStore;
use super::manifest::{self, Descriptor, Manifest, Platform};
use super::progress::Progress;
use super::RegistryError;
use crate::image::digest::{chain_ids, Digest};
use crate::image::reference::{Reference, DEFAULT_TAG};
use crate::image::{ImageError, ImageStore};
use crate::store::{create_private_dir, Root};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to pull from an index; default: the host's.
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub reference: Reference,
    /// The image manifest that was registered.
    pub manifest: Digest,
    /// The image id (config digest).
    pub id: Digest,
    /// Blobs this pull downloaded (0: everything was stored already).
    pub downloaded: u64,
}

/// Pulls images into one engine root.
pub struct Puller {
    store: ImageStore,
    root: Root,
    config: EngineConfig,
    credentials: CredentialStore,
    http: Client,
    retry: RetryPolicy,
}

impl Puller {
    /// With the engine config of `root` and the user's credential files.
    pub fn new(root: &Root) -> Result<Self, RegistryError> {
        Self::with_credentials(root, CredentialStore::from_env())
    }

    pub fn with_credentials(root: &Root, credentials: CredentialStore) -> Result<Self, RegistryError> {
        Ok(Puller {
            store: ImageStore::open(root)?,
            root: root.clone(),
            config: EngineConfig::load(root)?,
            credentials,
            http: http_client()?,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Pulls `image` (docker's reference syntax) and registers it under
    /// its name. Every error names the image.
    pub fn pull(&self, image: &str, options: &PullOptions, progress: &Progress) -> Result<PullOutcome, RegistryError> {
        let wrap = |name: String| {
            move |error: RegistryError| RegistryError::Pull {
                image: name,
                source: Box::new(error),
            }
        };
        let reference = Reference::parse(image).map_err(|e| wrap(image.to_string())(e.into()))?;
        self.pull_reference(&reference, options, progress)
            .map_err(wrap(reference.to_string()))
    }

    fn pull_reference(
        &self,
        reference: &Reference,
        options: &PullOptions,
        progress: &Progress,
    ) -> Result<PullOutcome, RegistryError> {
        let mut last_error = None;
        for endpoint in self.config.endpoints(&reference.registry) {
            let credentials = match endpoint.mirror {
                true => self.credentials.get(&mirror_host(&endpoint))?,
                false => self.credentials.get(&reference.registry)?,
            };
            let result = Session::connect(&self.http, &reference.registry, &endpoint, credentials, &self.retry)
                .and_then(|session| self.pull_from(&session, reference, options, progress));
            match result {
                Ok(outcome) => return Ok(outcome),
                // A mirror is a cache: whatever went wrong there, the next
                // source (in the end the registry itself) may do better.
                Err(error) if endpoint.mirror => {
                    progress.line(&format!(
                        "mirror {} failed ({}); trying the next source",
                        endpoint.urls.join(" "),
                        error.chain()
                    ));
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| RegistryError::InvalidAddress {
            address: reference.registry.clone(),
            reason: "no endpoint to pull from".into(),
        }))
    }

    fn pull_from(
        &self,
        session: &Session,
        reference: &Reference,
        options: &PullOptions,
        progress: &Progress,
    ) -> Result<PullOutcome, RegistryError> {
        let repository = reference.repository.as_str();
        let shown = match (&reference.tag, &reference.digest) {
            (_, Some(digest)) => digest.to_string(),
            (Some(tag), None) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        };
        progress.line(&format!("{shown}: Pulling from {repository}"));
        let wanted = options.platform.clone().unwrap_or_else(Platform::host);
        let top = self.resolve_manifest(session, reference)?;
        let image = match manifest::parse(&top.bytes, top.content_type.as_deref())? {
            Manifest::Index(entries) => {
                let chosen = manifest::select(&entries, &wanted)?;
                self.manifest_by_digest(session, repository, &chosen.digest)?
            }
            Manifest::Image { .. } => top,
        };
        let Manifest::Image { config, layers } = manifest::parse(&image.bytes, image.content_type.as_deref())? else {
            return Err(RegistryError::InvalidManifest {
                reason: "an index where an image manifest was expected".into(),
            });
        };
        self.store
            .blobs
            .write_blob_from_reader(&image.bytes[..], Some(&image.digest))?;

        let cancel = AtomicBool::new(false);
        let downloaded = AtomicU64::new(0);
        let fetch = Fetch {
            session,
            repository,
            progress,
            cancel: &cancel,
            downloaded: &downloaded,
        };
        self.ensure_blob(&fetch, &config, false)?;
        let diff_ids = self.check_config(
            &config.digest,
            options.platform.as_ref(),
            &wanted,
            layers.len(),
            progress,
        )?;
        self.fetch_layers(&fetch, &layers, &diff_ids)?;

        // Registration holds the content lock so a concurrent prune cannot
        // collect blobs between their download and this point; anything it
        // took before is fetched again.
        let names: Vec<String> = reference.tagged().into_iter().collect();
        let id = {
            let _content = self.store.content_lock()?;
            for blob in std::iter::once(&config).chain(&layers) {
                self.ensure_blob(&fetch, blob, false)?;
            }
            if !self.store.blobs.has_blob(&image.digest) {
                self.store
                    .blobs
                    .write_blob_from_reader(&image.bytes[..], Some(&image.digest))?;
            }
            self.store.register(&image.digest, &names)?
        };
        let downloaded = downloaded.load(Ordering::Relaxed);
        progress.line(&format!("Digest: {}", image.digest));
        let status = if downloaded > 0 {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        progress.line(&format!("Status: {status} {reference}"));
        progress.result(&reference.to_string());
        Ok(PullOutcome {
            reference: reference.clone(),
            manifest: image.digest,
            id,
            downloaded,
        })
    }

    /// By digest; or by tag, with a HEAD first so a tag whose manifest is
    /// stored costs no download.
    fn resolve_manifest(&self, session: &Session, reference: &Reference) -> Result<FetchedManifest, RegistryError> {
        let repository = &reference.repository;
        if let Some(digest) = &reference.digest {
            return self.manifest_by_digest(session, repository, digest);
        }
        let tag = reference.tag.as_deref().unwrap_or(DEFAULT_TAG);
        // HEAD answers carry no error body: on failure the GET below
        // tells the precise cause (unknown repository or tag).
        if let Ok(Some(digest)) = session.head_manifest(repository, tag) {
            if self.store.blobs.has_blob(&digest) {
                return self.manifest_by_digest(session, repository, &digest);
            }
        }
        session
            .get_manifest(repository, tag, None)
            .map_err(|error| match error {
                RegistryError::ManifestNotFound { .. } => match session.check_repository(repository) {
                    Err(unknown @ RegistryError::RepositoryNotFound { .. }) => unknown,
                    _ => error,
                },
                error => error,
            })
    }

    fn manifest_by_digest(
        &self,
        session: &Session,
        repository: &str,
        digest: &Digest,
    ) -> Result<FetchedManifest, RegistryError> {
        if self.store.blobs.has_blob(digest) {
            return Ok(FetchedManifest {
                bytes: self.store.blobs.read_blob(digest)?,
                content_type: None,
                digest: digest.clone(),
            });
        }
        session.get_manifest(repository, &digest.to_string(), Some(digest))
    }

    /// Reads the stored config: its platform against the wanted one, and
    /// one diff id per layer. Returns the diff ids.
    fn check_config(
        &self,
        config: &Digest,
        explicit: Option<&Platform>,
        wanted: &Platform,
        layers: usize,
        progress: &Progress,
    ) -> Result<Vec<Digest>, RegistryError> {
        let parsed: ImageConfiguration = serde_json::from_slice(&self.store.blobs.read_blob(config)?)
            .map_err(ImageError::json(format!("image config {config}")))?;
        let actual = Platform {
            os: parsed.os().to_string(),
            architecture: parsed.architecture().to_string(),
            variant: parsed.variant().clone(),
        };
        if !actual.satisfies(wanted) {
            if explicit.is_some() {
                return Err(RegistryError::PlatformMismatch {
                    wanted: wanted.to_string(),
                    actual: actual.to_string(),
                });
            }
            progress.line(&format!(
                "WARNING: the image's platform ({actual}) does not match the host's ({wanted})"
            ));
        }
        let diff_ids = parsed
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != layers {
            return Err(ImageError::InvalidImage {
                image: config.to_string(),
                reason: format!(
                    "the manifest lists {layers} layers but the config {} diff ids",
                    diff_ids.len()
                ),
            }
            .into());
        }
        Ok(diff_ids)
    }

    /// Downloads and unpacks the layers, a bounded number at a time; the
    /// first failure stops the others.
    fn fetch_layers(&self, fetch: &Fetch<'_>, layers: &[Descriptor], diff_ids: &[Digest]) -> Result<(), RegistryError> {
        let chain = chain_ids(diff_ids);
        let next = AtomicUsize::new(0);
        let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
        let workers = self.config.concurrent_downloads().min(layers.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= layers.len() || fetch.cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(error) = self.fetch_layer(fetch, &layers[i], &diff_ids[i], &chain[i]) {
                        fetch.cancel.store(true, Ordering::Relaxed);
                        let mut slot = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if slot.as_ref().is_none_or(|e| matches!(e, RegistryError::Cancelled)) {
                            *slot = Some(error);
                        }
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

    fn fetch_layer(
        &self,
        fetch: &Fetch<'_>,
        layer: &Descriptor,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<(), RegistryError> {
        let fetched = match self.store.snapshots.exists(chain_id) {
            // Unpacked already (shared by chain id): the blob only.
            true => self.ensure_blob(fetch, layer, true)?,
            false => self.ensure_layer(fetch, layer, diff_id, chain_id)?,
        };
        // When the blob was stored but not unpacked (an earlier pull or
        // load stopped in between), unpack it from the store now.
        let media_type = Some(layer.media_type.as_str()).filter(|t| !t.is_empty());
        self.store
            .snapshots
            .ensure(chain_id, diff_id, media_type, || {
                self.store.blobs.open_blob(&layer.digest)
            })
            .map_err(|source| ImageError::Layer {
                layer: layer.digest.clone(),
                source: Box::new(source),
            })?;
        match fetched {
            true => fetch.progress.layer_done(&layer.digest),
            false => fetch.progress.layer_exists(&layer.digest),
        }
        Ok(())
    }

    /// Downloads a layer blob and unpacks it while it arrives, unless the
    /// blob is stored (then [`Self::fetch_layer`] unpacks it from there).
    /// The same lock per digest as [`Self::ensure_blob`]. Returns whether
    /// this call downloaded it.
    fn ensure_layer(
        &self,
        fetch: &Fetch<'_>,
        layer: &Descriptor,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<bool, RegistryError> {
        let digest = &layer.digest;
        if self.store.blobs.has_blob(digest) {
            return Ok(false);
        }
        let _lock = DigestLock::acquire(&self.root.images_dir().join("downloads"), digest)?;
        if self.store.blobs.has_blob(digest) {
            return Ok(false);
        }
        fetch.progress.layer_start(digest, layer.size);
        let on_bytes = |n: u64| fetch.progress.layer_bytes(digest, n);
        let mut reader = fetch
            .session
            .blob(fetch.repository, digest, layer.size, fetch.cancel, &on_bytes);
        let on_downloaded = || fetch.progress.layer_downloaded(digest);
        let streamed =
            super::layer::download_and_unpack(&self.store, &mut reader, layer, diff_id, chain_id, &on_downloaded);
        if let Err(error) = streamed {
            fetch.progress.layer_failed(digest);
            return Err(reader.failure.take().unwrap_or(RegistryError::Store(error)));
        }
        fetch.downloaded.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Makes sure a blob is stored, downloading it unless it is; one
    /// download per blob across concurrent pulls (a lock per digest).
    /// Returns whether this call downloaded it.
    fn ensure_blob(&self, fetch: &Fetch<'_>, blob: &Descriptor, show: bool) -> Result<bool, RegistryError> {
        let digest = &blob.digest;
        if self.store.blobs.has_blob(digest) {
            return Ok(false);
        }
        let _lock = DigestLock::acquire(&self.root.images_dir().join("downloads"), digest)?;
        if self.store.blobs.has_blob(digest) {
            return Ok(false);
        }
        if show {
            fetch.progress.layer_start(digest, blob.size);
        }
        let on_bytes = |n: u64| {
            if show {
                fetch.progress.layer_bytes(digest, n);
            }
        };
        let mut reader = fetch
            .session
            .blob(fetch.repository, digest, blob.size, fetch.cancel, &on_bytes);
        if let Err(error) = self.store.blobs.write_blob_from_reader(&mut reader, Some(digest)) {
            fetch.progress.layer_failed(digest);
            return Err(reader.failure.take().unwrap_or(RegistryError::Store(error)));
        }
        fetch.downloaded.fetch_add(1, Ordering::Relaxed);
        if show {
            fetch.progress.layer_downloaded(digest);
        }
        Ok(true)
    }
}

/// What the download threads of one pull share.
struct Fetch<'a> {
    session: &'a Session,
    repository: &'a str,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
    downloaded: &'a AtomicU64,
}

fn mirror_host(endpoint: &Endpoint) -> String {
    let url = endpoint.urls.first().map_or("", String::as_str);
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// An exclusive lock on `<dir>/<hex>.lock`, removed when released. After
/// locking it checks the file is still the one at the path: a holder that
/// removed it just before would otherwise let two pulls in at once.
struct DigestLock {
    path: PathBuf,
    _lock: Flock<File>,
}

impl DigestLock {
    fn acquire(dir: &Path, digest: &Digest) -> Result<DigestLock, RegistryError> {
        create_private_dir(dir).map_err(RegistryError::file("cannot create", dir))?;
        let path = dir.join(format!("{}.lock", digest.hex()));
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path)
                .map_err(RegistryError::file("cannot open", &path))?;
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| RegistryError::file("cannot lock", &path)(errno.into()))?;
            let held = lock.metadata().map_err(RegistryError::file("cannot stat", &path))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(DigestLock { path, _lock: lock });
                }
                _ => continue,
            }
        }
    }
}

impl Drop for DigestLock {
    fn drop(&mut self) {
        // Unlinked while still locked; the lock goes with the field drop.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_locks_exclude_each_other_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let digest = Digest::of(b"blob");
        let counter = std::sync::Arc::new(Mutex::new((0, 0)));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let counter = counter.clone();
                let dir = dir.path();
                let digest = &digest;
                scope.spawn(move || {
                    for _ in 0..20 {
                        let _lock = DigestLock::acquire(dir, digest).unwrap();
                        let mut c = counter.lock().unwrap();
                        c.0 += 1;
                        c.1 = c.1.max(c.0);
                        drop(c);
                        std::thread::yield_now();
                        counter.lock().unwrap().0 -= 1;
                    }
                });
            }
        });
        assert_eq!(counter.lock().unwrap().1, 1, "never two holders at once");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "lock files removed");
    }

    #[test]
    fn mirror_credentials_are_filed_by_host() {
        let endpoint = Endpoint {
            urls: vec!["https://mirror.example:5000/path".into()],
            mirror: true,
        };
        assert_eq!(mirror_host(&endpoint), "mirror.example:5000");
    }
}
