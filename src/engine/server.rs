//! The engine's routes: what the daemon serves, over the state it shares
//! between requests.
//!
//! Every route registered here has its operation in `schemas/openapi.json`;
//! a unit test below keeps the two in step.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use crate::engine::api::{Request, Response, Router, API_VERSION};
use crate::store::Root;

/// What the engine's handlers share.
pub struct EngineState {
    pub root: Root,
    /// Becomes `true` once the engine is stopping: the listener stops
    /// accepting, and long-running loops should finish (subscribe, or
    /// await [`EngineState::shutdown_requested`]).
    pub shutdown: watch::Sender<bool>,
    /// When this engine started (RFC 3339).
    pub started: String,
}

impl EngineState {
    pub fn new(root: Root) -> EngineState {
        EngineState {
            root,
            shutdown: watch::Sender::new(false),
            started: crate::rfc3339::now(),
        }
    }

    /// Starts a graceful shutdown (idempotent).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once a shutdown was requested (at once if it already was).
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which only happens as the
        // state itself is dropped: stopping is right then too.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

/// A handler that gets the shared state along with the request:
/// `router.route("GET", "/v1/x", with_state(&state, x))` for
/// `async fn x(state: Arc<EngineState>, req: Request) -> Response`.
pub fn with_state<F, Fut>(state: &Arc<EngineState>, f: F) -> impl Fn(Request) -> Fut + Send + Sync + 'static
where
    F: Fn(Arc<EngineState>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let state = Arc::clone(state);
    move |request| f(Arc::clone(&state), request)
}

/// The engine's routing table.
pub fn router(state: Arc<EngineState>) -> Router {
    Router::new()
        .route("GET", "/v1/version", with_state(&state, version))
        .route("POST", "/v1/engine/stop", with_state(&state, stop))
        .route("GET", "/v1/projects", with_state(&state, super::routes::projects))
        .route("POST", "/v1/projects/{name}/up", with_state(&state, super::routes::up))
        .route(
            "POST",
            "/v1/projects/{name}/down",
            with_state(&state, super::routes::down),
        )
        .route(
            "POST",
            "/v1/projects/{name}/build",
            with_state(&state, super::routes::build),
        )
        .route(
            "POST",
            "/v1/projects/{name}/pull",
            with_state(&state, super::routes::pull),
        )
        .route(
            "GET",
            "/v1/projects/{name}/containers",
            with_state(&state, super::routes::containers),
        )
}

/// `GET /v1/version`: what the CLI checks before anything else (and what
/// auto-start polls for readiness).
async fn version(state: Arc<EngineState>, _request: Request) -> Response {
    Response::ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api": API_VERSION,
        "root": state.root.path(),
        "pid": std::process::id(),
        "started": state.started,
    }))
}

/// `POST /v1/engine/stop`: answers, then the listener stops. Containers
/// keep running: their monitors own them, not the engine.
async fn stop(state: Arc<EngineState>, _request: Request) -> Response {
    state.request_shutdown();
    Response::ok(json!({ "stopping": true, "pid": std::process::id() }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::engine::api::ResponseBody;

    const OPENAPI: &str = include_str!("../../schemas/openapi.json");
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

    fn state() -> Arc<EngineState> {
        Arc::new(EngineState::new(Root::new("/nonexistent/berth-test-root")))
    }

    fn openapi_operations() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.0"),
            "schemas/openapi.json must be OpenAPI 3.0"
        );
        let mut operations = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if METHODS.contains(&method.as_str()) {
                    operations.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn routes_match_openapi() {
        let registered: BTreeSet<(String, String)> = router(state())
            .routes()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let documented = openapi_operations();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes and schemas/openapi.json disagree:\n  registered in engine::server::router but \
             missing from schemas/openapi.json: {undocumented:?}\n  in schemas/openapi.json but not \
             registered in engine::server::router: {unrouted:?}"
        );
    }

    fn call(router: &Router, method: &str, path: &str) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        };
        let response = rt.block_on(router.dispatch(request));
        match response.body {
            ResponseBody::Json(value) => (response.status, value),
            ResponseBody::Stream(_) => panic!("{method} {path} streamed"),
        }
    }

    #[test]
    fn version_reports_api_and_root() {
        let (status, body) = call(&router(state()), "GET", "/v1/version");
        assert_eq!(status, 200);
        assert_eq!(body["api"], API_VERSION);
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["root"], "/nonexistent/berth-test-root");
        assert_eq!(body["pid"], std::process::id());
    }

    #[test]
    fn stop_requests_shutdown() {
        let state = state();
        let router = router(Arc::clone(&state));
        assert!(!*state.shutdown.borrow());
        let (status, _) = call(&router, "POST", "/v1/engine/stop");
        assert_eq!(status, 200);
        assert!(*state.shutdown.borrow());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // Already requested: resolves at once.
        rt.block_on(state.shutdown_requested());
    }
}
