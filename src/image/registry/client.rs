//! One registry endpoint over HTTP: the `/v2/` ping that finds out how it
//! authenticates, requests with credentials or tokens, retries with
//! backoff on transient failures, and blob bodies that resume with a
//! `Range` request when the connection breaks.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use super::auth::{parse_challenge, parse_token, pull_scope, Challenge};
use super::config::Endpoint;
use super::credentials::Credentials;
use super::manifest::accept_header;
use super::RegistryError;
use crate::image::digest::Digest;
use crate::image::ImageError;

/// Manifests bigger than this are not manifests (docker's limit too).
const MAX_MANIFEST: u64 = 4 << 20;
/// Error bodies and token answers are read up to this much.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    pub(super) fn delay(&self, failures: u32) -> Duration {
        let factor = 1_u32 << failures.saturating_sub(1).min(5);
        (self.first_delay * factor).min(Duration::from_secs(8))
    }
}

/// The HTTP client all sessions of a pull share (one connection pool).
pub fn http_client() -> Result<Client, RegistryError> {
    Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        // In the blocking client this bounds each read, not the whole
        // transfer: a large layer may take as long as it needs.
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| RegistryError::Http {
            url: "(client setup)".into(),
            source,
        })
}

/// A manifest as the registry served it, verified against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

/// A connection to one endpoint of one registry.
#[derive(Debug)]
pub struct Session {
    pub(super) http: Client,
    /// The registry as references name it (for messages).
    pub registry: String,
    /// `https://host[:port]` or a mirror's base URL.
    pub base: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
    pub(super) retry: RetryPolicy,
}

impl Session {
    /// Pings the endpoint's URLs in order (the next only when the
    /// connection itself fails: `https` before `http` for an insecure
    /// registry) and learns how it authenticates.
    pub fn connect(
        http: &Client,
        registry: &str,
        endpoint: &Endpoint,
        credentials: Option<Credentials>,
        retry: &RetryPolicy,
    ) -> Result<Session, RegistryError> {
        let mut last_error = None;
        for (i, base) in endpoint.urls.iter().enumerate() {
            let last = i + 1 == endpoint.urls.len();
            let mut session = Session {
                http: http.clone(),
                registry: registry.to_string(),
                base: base.clone(),
                credentials: credentials.clone(),
                challenge: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
                // A plain-HTTP server answering a TLS hello is not worth
                // retrying: fall through to http:// at once.
                retry: if last {
                    retry.clone()
                } else {
                    RetryPolicy {
                        attempts: 1,
                        ..retry.clone()
                    }
                },
            };
            match session.ping() {
                Ok(()) => {
                    session.retry = retry.clone();
                    return Ok(session);
                }
                Err(error @ (RegistryError::Unreachable { .. } | RegistryError::Http { .. })) if !last => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| RegistryError::InvalidAddress {
            address: registry.to_string(),
            reason: "no endpoint to reach it at".into(),
        }))
    }

    fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let response = self.execute(&url, &|| self.http.get(&url))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                *lock(&self.challenge) = challenge_of(&response);
                Ok(())
            }
            _ => Err(self.status_error(response, "", None)),
        }
    }

    /// Checks the credentials the way a pull would use them (for login).
    pub fn verify_login(&self) -> Result<(), RegistryError> {
        let challenge = lock(&self.challenge).clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(&realm, service.as_deref(), "").map(drop)
            }
            Some(Challenge::Basic) => {
                let response = self.send(Method::GET, "/v2/", "", None, None)?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(self.status_error(response, "", None))
                }
            }
        }
    }

    /// Sends with transport-level retries; the response may be an error.
    pub(super) fn execute(&self, url: &str, request: &dyn Fn() -> RequestBuilder) -> Result<Response, RegistryError> {
        let mut failures = 0;
        loop {
            let error = match request().send() {
                Ok(response) if transient_status(response.status()) && failures + 1 < self.retry.attempts => {
                    RegistryError::Status {
                        url: url.to_string(),
                        status: response.status().as_u16(),
                        detail: String::new(),
                    }
                }
                Ok(response) => return Ok(response),
                Err(source) if source.is_connect() => RegistryError::Unreachable {
                    registry: self.registry.clone(),
                    source,
                },
                Err(source) => RegistryError::Http {
                    url: url.to_string(),
                    source,
                },
            };
            failures += 1;
            if !error.is_transient() || failures >= self.retry.attempts {
                return Err(error);
            }
            debug_retry(&error);
            std::thread::sleep(self.retry.delay(failures));
        }
    }

    /// A request with whatever authorization the registry asked for; one
    /// more try when a 401 brings a new challenge.
    pub(super) fn send(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        accept: Option<&str>,
        range: Option<String>,
    ) -> Result<Response, RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut renewed = false;
        loop {
            let authorization = self.authorization(scope)?;
            let request = || {
                let mut request = self.http.request(method.clone(), &url);
                if let Some(accept) = accept {
                    request = request.header(ACCEPT, accept);
                }
                if let Some(range) = &range {
                    request = request.header(RANGE, range);
                }
                if let Some(authorization) = &authorization {
                    request = request.header(AUTHORIZATION, authorization);
                }
                request
            };
            let response = self.execute(&url, &request)?;
            if response.status() != StatusCode::UNAUTHORIZED || renewed {
                return Ok(response);
            }
            renewed = true;
            if let Some(challenge) = challenge_of(&response) {
                *lock(&self.challenge) = Some(challenge);
            }
            lock(&self.tokens).remove(scope);
        }
    }

    pub(super) fn authorization(&self, scope: &str) -> Result<Option<String>, RegistryError> {
        let challenge = lock(&self.challenge).clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials
                .as_ref()
                .map(|c| format!("Basic {}", BASE64.encode(format!("{}:{}", c.username, c.password))))),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(token) = lock(&self.tokens).get(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                lock(&self.tokens).insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// The token flow: anonymous, or with the credentials as basic auth.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String, RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        query.extend(service.map(|s| ("service", s)));
        if !scope.is_empty() {
            query.push(("scope", scope));
        }
        let request = || {
            let request = self.http.get(realm).query(&query);
            match &self.credentials {
                Some(c) => request.basic_auth(&c.username, Some(&c.password)),
                None => request,
            }
        };
        let response = self.execute(realm, &request)?;
        if !response.status().is_success() {
            return Err(self.status_error(response, "", None));
        }
        let body = read_small(response, realm)?;
        parse_token(&body).map_err(|reason| RegistryError::Token {
            realm: realm.to_string(),
            reason,
        })
    }

    /// Maps an unsuccessful response to what it means for `repository`
    /// (and the manifest `reference`, when one was asked for).
    pub fn status_error(&self, response: Response, repository: &str, reference: Option<&str>) -> RegistryError {
        let status = response.status();
        let url = response.url().to_string();
        let body = read_small(response, &url).unwrap_or_default();
        let (code, detail) = error_code(&body);
        let registry = self.registry.clone();
        match (status, code.as_str(), reference) {
            (_, "NAME_UNKNOWN", _) => RegistryError::RepositoryNotFound {
                registry,
                repository: repository.to_string(),
            },
            (_, "MANIFEST_UNKNOWN", Some(reference)) | (StatusCode::NOT_FOUND, _, Some(reference)) => {
                RegistryError::ManifestNotFound {
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                }
            }
            (StatusCode::UNAUTHORIZED, _, _) if self.credentials.is_some() => {
                RegistryError::Unauthorized { registry, detail }
            }
            (StatusCode::UNAUTHORIZED, _, _) => RegistryError::AuthenticationRequired { registry, detail },
            (StatusCode::FORBIDDEN, _, _) | (_, "DENIED", _) => RegistryError::Denied {
                registry,
                repository: repository.to_string(),
                detail,
            },
            _ => RegistryError::Status {
                url,
                status: status.as_u16(),
                detail,
            },
        }
    }

    /// The digest a tag points at, by a HEAD request; `None` when the
    /// registry does not say.
    pub fn head_manifest(&self, repository: &str, reference: &str) -> Result<Option<Digest>, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let accept = accept_header();
        let response = self.send(Method::HEAD, &path, &pull_scope(repository), Some(&accept), None)?;
        if !response.status().is_success() {
            return Err(self.status_error(response, repository, Some(reference)));
        }
        Ok(header(&response, "docker-content-digest").and_then(|d| Digest::parse(&d).ok()))
    }

    /// Whether the repository exists, by its tag list: distribution answers
    /// an unknown repository's manifest with MANIFEST_UNKNOWN, and only the
    /// tag list tells NAME_UNKNOWN.
    pub fn check_repository(&self, repository: &str) -> Result<(), RegistryError> {
        let path = format!("/v2/{repository}/tags/list?n=1");
        let response = self.send(Method::GET, &path, &pull_scope(repository), None, None)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(response, repository, None))
        }
    }

    /// GETs a manifest by tag or digest and checks it against `expected`
    /// (or the digest the registry claims for it).
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let accept = accept_header();
        let response = self.send(Method::GET, &path, &pull_scope(repository), Some(&accept), None)?;
        if !response.status().is_success() {
            return Err(self.status_error(response, repository, Some(reference)));
        }
        let content_type = header(&response, CONTENT_TYPE.as_str());
        let claimed = header(&response, "docker-content-digest").and_then(|d| Digest::parse(&d).ok());
        let url = response.url().to_string();
        let mut bytes = Vec::new();
        response
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Body { url, source })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::InvalidManifest {
                reason: format!("larger than {MAX_MANIFEST} bytes"),
            });
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = expected.or(claimed.as_ref()) {
            if *expected != digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("manifest {repository}:{reference}"),
                    expected: expected.clone(),
                    actual: digest,
                }
                .into());
            }
        }
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }
}

fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn challenge_of(response: &Response) -> Option<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_challenge)
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn read_small(response: Response, url: &str) -> Result<Vec<u8>, RegistryError> {
    read_at_most(response, url, MAX_SMALL_BODY)
}

/// A response body of at most `limit` bytes (the rest is not read).
pub(super) fn read_at_most(response: Response, url: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    response
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|source| RegistryError::Body {
            url: url.to_string(),
            source,
        })?;
    Ok(body)
}

/// The first `code` of a Distribution error body, and its messages.
fn error_code(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(errors) = serde_json::from_slice::<Errors>(body) else {
        return (String::new(), String::new());
    };
    let code = errors.errors.first().map(|e| e.code.clone()).unwrap_or_default();
    let messages: Vec<&str> = errors
        .errors
        .iter()
        .map(|e| e.message.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    (code, messages.join("; "))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Retries are shown with `BERTH_DEBUG` set; the pull reports the outcome.
pub(super) fn debug_retry(error: &RegistryError) {
    if std::env::var_os("BERTH_DEBUG").is_some() {
        eprintln!("retrying after: {}", error.chain());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1), Duration::from_millis(250));
        assert_eq!(policy.delay(2), Duration::from_millis(500));
        assert_eq!(policy.delay(3), Duration::from_secs(1));
        assert_eq!(policy.delay(30), Duration::from_secs(8));
    }

    #[test]
    fn distribution_error_bodies() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            error_code(body),
            ("MANIFEST_UNKNOWN".to_string(), "manifest unknown".to_string())
        );
        assert_eq!(error_code(b"<html>"), (String::new(), String::new()));
        assert!(transient_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!transient_status(StatusCode::NOT_FOUND));
    }
}
