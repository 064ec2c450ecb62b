//! Serves a [`Router`] over HTTP/1.1 on a UNIX socket.
//!
//! The socket is the engine's only access control: it is created under a
//! temporary name, given its mode (0600, or 0660 and the group's ownership)
//! and only then renamed into place, so no client ever sees it with the
//! umask's permissions.

use std::convert::Infallible;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use nix::unistd::Gid;
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::router::{parse_query, Request, Response, ResponseBody, Router};
use super::{check_socket_path, ApiError};
use crate::engine::daemon::log;

/// Request bodies are compose projects and options, never bulk data.
const MAX_BODY: usize = 64 << 20;

/// How long in-flight requests get to finish once shutdown begins; a
/// follow-mode stream would otherwise hold the engine forever.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `path` until `shutdown` completes, then stops
/// accepting, removes the socket and gives open requests [`DRAIN`] to end.
///
/// The socket gets mode 0600 (root only), or 0660 owned by `group` when
/// given. A socket file nobody answers on (an engine that died) is
/// replaced; one that answers is an error: two engines must not share a
/// root.
pub async fn serve(
    path: &Path,
    group: Option<Gid>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiError> {
    check_socket_path(path)?;
    refuse_live_socket(path).await?;
    let listener = bind(path, group)?;
    let identity = socket_identity(path);
    let router = Arc::new(router);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&router), stop_rx.clone()));
                }
                Err(error) if is_transient(&error) => {
                    // Out of descriptors or a client that gave up: keep
                    // serving the others, without spinning.
                    log(format_args!("accepting on {}: {error}", path.display()));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(source) => break Err(ApiError::Accept { path: path.to_path_buf(), source }),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    remove_socket(path, identity);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        log(format_args!(
            "closing {} connection(s) still open after {} s",
            connections.len(),
            DRAIN.as_secs()
        ));
        connections.abort_all();
    }
    result
}

/// Errors the socket's owner cannot fix by restarting the loop.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED | libc::EINTR)
    )
}

/// Fails if an engine answers on `path`, or if `path` is something other
/// than a socket (which the rename in [`bind`] would destroy).
async fn refuse_live_socket(path: &Path) -> Result<(), ApiError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ApiError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ApiError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(ApiError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        // ECONNREFUSED: a socket file without a listener, left by an
        // engine that was killed; bind's rename replaces it.
        Err(_) => Ok(()),
    }
}

/// Binds under a temporary name in the same directory, sets the mode and
/// group, then renames onto `path` (atomically replacing a stale socket).
fn bind(path: &Path, group: Option<Gid>) -> Result<UnixListener, ApiError> {
    let bind_error = |source| ApiError::Bind {
        path: path.to_path_buf(),
        source,
    };
    // No longer than "engine.sock" (at most 8 bytes: a pid is < 2^22), so
    // a path that fits the 108-byte limit fits with this name too.
    let tmp = path.with_file_name(format!(".{:x}~", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(bind_error)?;
    let setup = (|| {
        let permissions = |source| ApiError::Permissions {
            path: path.to_path_buf(),
            source,
        };
        let mode = match group {
            Some(gid) => {
                std::os::unix::fs::chown(&tmp, None, Some(gid.as_raw())).map_err(permissions)?;
                0o660
            }
            None => 0o600,
        };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(permissions)?;
        fs::rename(&tmp, path).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        UnixListener::from_std(listener).map_err(bind_error)
    })();
    if setup.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    setup
}

fn socket_identity(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Removes the socket if it is still the one this server bound (never
/// another engine's, should one have replaced it).
fn remove_socket(path: &Path, identity: Option<(u64, u64)>) {
    if identity.is_some() && socket_identity(path) == identity {
        if let Err(error) = fs::remove_file(path) {
            log(format_args!("removing {}: {error}", path.display()));
        }
    }
}

async fn serve_connection(stream: UnixStream, router: Arc<Router>, mut stop: watch::Receiver<bool>) {
    let service = service_fn(move |request| {
        let router = Arc::clone(&router);
        async move { Ok::<_, Infallible>(handle(router, request).await) }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                // A client that hangs up mid-request is not the engine's
                // problem; anything else is worth a line in the log.
                if !error.is_incomplete_message() && !error.is_canceled() {
                    log(format_args!("connection error: {error}"));
                }
            }
        }
        () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
            // Let the request in flight finish (the reply to
            // /v1/engine/stop among them), then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn handle(router: Arc<Router>, request: hyper::Request<Incoming>) -> hyper::Response<OutBody> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(parse_query).unwrap_or_default();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(error) if error.is::<LengthLimitError>() => {
            return to_hyper(Response::error(
                413,
                format!("{method} {path}: request body larger than {MAX_BODY} bytes"),
            ))
        }
        Err(error) => {
            return to_hyper(Response::error(
                400,
                format!("{method} {path}: reading the request body: {error}"),
            ))
        }
    };
    let request = Request {
        method: method.clone(),
        path: path.clone(),
        query,
        body,
        ..Request::default()
    };
    // The handler runs in its own task: a panic becomes a 500 instead of a
    // dropped connection, and a client that hangs up does not cancel an
    // operation half-way (actions are idempotent, but finishing is better).
    let task = tokio::spawn(async move { router.dispatch(request).await });
    let response = match task.await {
        Ok(response) => response,
        Err(error) => {
            log(format_args!("{method} {path}: handler failed: {error}"));
            Response::error(
                500,
                format!("{method} {path}: internal engine error (see the engine log)"),
            )
        }
    };
    if response.status >= 500 {
        log(format_args!("{method} {path}: {}", response.status));
    }
    to_hyper(response)
}

fn to_hyper(response: Response) -> hyper::Response<OutBody> {
    let (content_type, body) = match response.body {
        ResponseBody::Json(value) => {
            let mut text = value.to_string();
            text.push('\n');
            ("application/json", OutBody::Full(Some(Bytes::from(text))))
        }
        ResponseBody::Stream(rx) => ("application/x-ndjson", OutBody::Stream(rx)),
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    out
}

/// A whole JSON document (sent with a Content-Length), or NDJSON lines
/// from a channel (chunked: hyper writes each line out as it comes).
enum OutBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Value>),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            OutBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Stream(rx) => rx.poll_recv(cx).map(|item| {
                item.map(|value| {
                    let mut line = value.to_string();
                    line.push('\n');
                    Ok(Frame::data(Bytes::from(line)))
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            OutBody::Full(None) => SizeHint::with_exact(0),
            OutBody::Stream(_) => SizeHint::default(),
        }
    }
}
