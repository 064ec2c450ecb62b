//! The blocking client the CLI talks to the engine with.
//!
//! The CLI is synchronous, so each call builds a private current-thread
//! runtime and drives hyper's client over a tokio `UnixStream` on it. One
//! connection per call: the socket is local, so connecting is cheap, and
//! nothing is shared between calls that a failure could poison.
//!
//! There is no timeout after connecting: an `up` can take minutes, and a
//! `logs --follow` stream never ends on its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

use super::{check_socket_path, ApiError};

/// A local socket accepts at once or not at all; this only bounds a wedged
/// engine whose accept backlog is full.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for the engine socket at one path.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    pub fn new(path: PathBuf) -> Client {
        Client { path }
    }

    /// The socket this client connects to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns its JSON body (`null` when empty; an
    /// NDJSON answer comes back as an array of its lines). A non-2xx status
    /// is [`ApiError::Status`] with the engine's `message`.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let call = Call::new(&self.path, method, path);
        let runtime = runtime()?;
        runtime.block_on(async {
            let response = call.send(body).await?;
            let ndjson = is_ndjson(&response);
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| call.http(e))?
                .to_bytes();
            if ndjson {
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|line| !is_blank(line))
                    .map(|line| call.decode(line))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            } else if is_blank(&bytes) {
                Ok(Value::Null)
            } else {
                call.decode(&bytes)
            }
        })
    }

    /// Sends one request and returns its NDJSON body line by line, each
    /// value as soon as the engine sends it. A non-2xx status fails here,
    /// before any item.
    pub fn stream(&self, method: &str, path: &str, body: Option<&Value>) -> Result<NdjsonStream, ApiError> {
        let call = Call::new(&self.path, method, path);
        let runtime = runtime()?;
        let response = runtime.block_on(call.send(body))?;
        Ok(NdjsonStream {
            runtime,
            body: Some(response.into_body()),
            buffer: Vec::new(),
            call,
        })
    }
}

/// The values of an NDJSON response, read as they arrive. Dropping it
/// closes the connection, which tells a streaming handler to stop (its
/// next send fails).
pub struct NdjsonStream {
    // Drives the connection; must outlive `body`.
    runtime: Runtime,
    body: Option<Incoming>,
    buffer: Vec<u8>,
    call: Call,
}

impl std::fmt::Debug for NdjsonStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonStream")
            .field("method", &self.call.method)
            .field("target", &self.call.target)
            .field("open", &self.body.is_some())
            .finish()
    }
}

impl Iterator for NdjsonStream {
    type Item = Result<Value, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if is_blank(&line) {
                    continue;
                }
                return Some(self.call.decode(&line));
            }
            let Some(body) = self.body.as_mut() else {
                // The body ended: a last line without its newline counts.
                if is_blank(&self.buffer) {
                    return None;
                }
                let rest = std::mem::take(&mut self.buffer);
                return Some(self.call.decode(&rest));
            };
            match self.runtime.block_on(body.frame()) {
                None => self.body = None,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(error)) => {
                    // The engine went away mid-stream: report it once, then end.
                    self.body = None;
                    self.buffer.clear();
                    return Some(Err(self.call.http(error)));
                }
            }
        }
    }
}

fn runtime() -> Result<Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ApiError::Runtime)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

fn is_ndjson(response: &hyper::Response<Incoming>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"))
}

/// One request's identity, for error context.
#[derive(Debug, Clone)]
struct Call {
    socket: PathBuf,
    method: String,
    target: String,
}

impl Call {
    fn new(socket: &Path, method: &str, target: &str) -> Call {
        Call {
            socket: socket.to_path_buf(),
            method: method.to_string(),
            target: target.to_string(),
        }
    }

    fn http(&self, source: hyper::Error) -> ApiError {
        ApiError::Http {
            socket: self.socket.clone(),
            method: self.method.clone(),
            target: self.target.clone(),
            source,
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, ApiError> {
        serde_json::from_slice(bytes).map_err(|source| ApiError::Decode {
            method: self.method.clone(),
            target: self.target.clone(),
            source,
        })
    }

    /// Connects, sends, and returns the response once its head arrived;
    /// a non-2xx status is turned into [`ApiError::Status`] here.
    async fn send(&self, body: Option<&Value>) -> Result<hyper::Response<Incoming>, ApiError> {
        check_socket_path(&self.socket)?;
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.socket)).await {
            Err(_) => {
                return Err(ApiError::ConnectTimeout {
                    path: self.socket.clone(),
                })
            }
            Ok(Err(source))
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(ApiError::NotRunning {
                    path: self.socket.clone(),
                    source,
                })
            }
            Ok(Err(source)) => {
                return Err(ApiError::Connect {
                    path: self.socket.clone(),
                    source,
                })
            }
            Ok(Ok(stream)) => stream,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http(e))?;
        // The connection task runs whenever the runtime is driven (by
        // block_on in `request`, or by each `NdjsonStream::next`).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut builder = hyper::Request::builder()
            .method(self.method.as_str())
            .uri(self.target.as_str())
            // HTTP/1.1 requires a Host; there is no host on a UNIX socket.
            .header(HOST, "berth");
        let bytes = match body {
            Some(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(value.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(bytes))
            .map_err(|source| ApiError::InvalidRequest {
                method: self.method.clone(),
                target: self.target.clone(),
                source,
            })?;
        let response = sender.send_request(request).await.map_err(|e| self.http(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if text.is_empty() {
                    format!(
                        "{} {}: {}",
                        self.method,
                        self.target,
                        status.canonical_reason().unwrap_or("error")
                    )
                } else {
                    text
                }
            });
        Err(ApiError::Status {
            status: status.as_u16(),
            message,
        })
    }
}
