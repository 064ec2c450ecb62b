//! Routes `(method, pattern)` pairs to async handlers.
//!
//! Patterns are OpenAPI-style paths with `{param}` segments, so the same
//! strings appear in `schemas/openapi.json` and the check between the two
//! is a plain set comparison. Matching is a pure function of the path.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::API_VERSION;

/// A boxed, sendable future (what handlers return once erased).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A type-erased route handler.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;

/// Erases a plain async closure into a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

/// One request, as a handler sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Values of the pattern's `{param}` segments (percent-decoded).
    pub params: BTreeMap<String, String>,
    /// The query string, percent-decoded (`+` is a space); a repeated key
    /// keeps its last value.
    pub query: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// The body as JSON. An empty body reads as `null`, so handlers taking
    /// `Option<T>` accept a request with no body. Bad JSON is a 400 the
    /// handler can return as is.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Response> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|e| Response::error(400, format!("{} {}: invalid request body: {e}", self.method, self.path)))
    }

    /// A path parameter; empty when the route has no such `{param}`.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// A handler's answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: ResponseBody,
}

#[derive(Debug)]
pub enum ResponseBody {
    /// One JSON document (`application/json`).
    Json(Value),
    /// Chunked `application/x-ndjson`: one value per line, sent as it
    /// arrives; the response ends when every sender is dropped.
    Stream(mpsc::Receiver<Value>),
}

impl Response {
    pub fn json(status: u16, value: Value) -> Response {
        Response {
            status,
            body: ResponseBody::Json(value),
        }
    }

    pub fn ok(value: Value) -> Response {
        Response::json(200, value)
    }

    /// `{"message": ...}`, the shape the client reads errors from.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, json!({ "message": message.into() }))
    }

    pub fn stream(rx: mpsc::Receiver<Value>) -> Response {
        Response {
            status: 200,
            body: ResponseBody::Stream(rx),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

struct Route {
    method: &'static str,
    pattern: &'static str,
    segments: Vec<Segment>,
    handler: Handler,
}

/// The engine's routing table.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// What a path resolved to.
pub enum Resolved {
    Found {
        handler: Handler,
        params: BTreeMap<String, String>,
    },
    /// The path exists with other methods (a 405).
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route with a plain async closure or fn:
    /// `.route("GET", "/v1/projects/{name}", |req| async move { ... })`.
    pub fn route<F, Fut>(self, method: &'static str, pattern: &'static str, f: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.route_handler(method, pattern, handler(f))
    }

    /// Adds a route with an already erased [`Handler`]. Registering the
    /// same `(method, pattern)` twice is a programming error: the second
    /// would never be reached.
    pub fn route_handler(mut self, method: &'static str, pattern: &'static str, handler: Handler) -> Router {
        debug_assert!(
            !self.routes.iter().any(|r| r.method == method && r.pattern == pattern),
            "route {method} {pattern} registered twice"
        );
        self.routes.push(Route {
            method,
            pattern,
            segments: parse_pattern(pattern),
            handler,
        });
        self
    }

    /// Every `(method, pattern)`, in registration order.
    pub fn routes(&self) -> Vec<(&'static str, &'static str)> {
        self.routes.iter().map(|r| (r.method, r.pattern)).collect()
    }

    /// Finds the handler for `method path`. When several patterns match,
    /// the one with a literal segment earliest wins, so
    /// `/v1/projects/prune` beats `/v1/projects/{name}`.
    pub fn resolve(&self, method: &str, path: &str) -> Resolved {
        let segments = split_path(path);
        let mut best: Option<(Vec<bool>, &Route, BTreeMap<String, String>)> = None;
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &segments) else {
                continue;
            };
            if route.method != method {
                allowed.push(route.method);
                continue;
            }
            let rank: Vec<bool> = route
                .segments
                .iter()
                .map(|s| matches!(s, Segment::Literal(_)))
                .collect();
            if best.as_ref().is_none_or(|(best_rank, _, _)| rank > *best_rank) {
                best = Some((rank, route, params));
            }
        }
        match best {
            Some((_, route, params)) => Resolved::Found {
                handler: Arc::clone(&route.handler),
                params,
            },
            None if !allowed.is_empty() => {
                allowed.sort_unstable();
                allowed.dedup();
                Resolved::MethodNotAllowed { allowed }
            }
            None => Resolved::NotFound,
        }
    }

    /// Runs the request through the table: the handler's response, or a
    /// 404/405 JSON error. `request.params` is filled from the pattern.
    pub async fn dispatch(&self, mut request: Request) -> Response {
        match self.resolve(&request.method, &request.path) {
            Resolved::Found { handler, params } => {
                request.params = params;
                handler(request).await
            }
            Resolved::MethodNotAllowed { allowed } => Response::error(
                405,
                format!(
                    "method {} is not allowed on {} (allowed: {})",
                    request.method,
                    request.path,
                    allowed.join(", ")
                ),
            ),
            Resolved::NotFound => Response::error(404, not_found_message(&request.path)),
        }
    }
}

/// A 404 that explains a version mismatch, the likely cause after an
/// upgrade of only one side.
fn not_found_message(path: &str) -> String {
    let first = split_path(path).into_iter().next().unwrap_or_default();
    let is_version = first.len() > 1 && first.starts_with('v') && first[1..].bytes().all(|b| b.is_ascii_digit());
    if is_version && first != API_VERSION {
        format!(
            "no route for {path}: this engine speaks API {API_VERSION}, not {first} (restart the \
             engine with the same berth as the CLI: `berth engine --stop`)"
        )
    } else {
        format!("no route for {path}")
    }
}

fn parse_pattern(pattern: &'static str) -> Vec<Segment> {
    pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name),
            None => Segment::Literal(s),
        })
        .collect()
}

/// The decoded, non-empty segments of a path (a trailing `/` is ignored).
fn split_path(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
}

fn match_segments(pattern: &[Segment], path: &[String]) -> Option<BTreeMap<String, String>> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (segment, value) in pattern.iter().zip(path) {
        match segment {
            Segment::Literal(literal) if literal == value => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.insert((*name).to_string(), value.clone());
            }
        }
    }
    Some(params)
}

/// `a=1&b=x%20y` into a map; keys without `=` get an empty value.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes; malformed escapes stay as they are, and invalid
/// UTF-8 is replaced rather than rejected (names are validated later).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a path segment or query value for [`percent_decode`]'s reverse:
/// everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &'static str) -> Handler {
        handler(move |req: Request| async move {
            Response::ok(json!({ "route": name, "params": req.params, "query": req.query }))
        })
    }

    fn router() -> Router {
        Router::new()
            .route_handler("GET", "/v1/version", named("version"))
            .route_handler("GET", "/v1/projects/{name}/containers", named("containers"))
            .route_handler("GET", "/v1/projects/{name}", named("project"))
            .route_handler("POST", "/v1/projects/prune", named("prune"))
            .route("DELETE", "/v1/projects/{name}", |req| async move {
                Response::ok(json!({ "deleted": req.param("name") }))
            })
    }

    fn run(router: &Router, method: &str, path: &str) -> (u16, Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let request = Request {
            method: method.into(),
            path: path.into(),
            query: parse_query(query),
            ..Request::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let response = rt.block_on(router.dispatch(request));
        match response.body {
            ResponseBody::Json(v) => (response.status, v),
            ResponseBody::Stream(_) => panic!("unexpected stream"),
        }
    }

    #[test]
    fn params_and_query_are_decoded() {
        let (status, body) = run(
            &router(),
            "GET",
            "/v1/projects/my%2Dapp/containers?all=true&filter=a%3Db+c",
        );
        assert_eq!(status, 200);
        assert_eq!(body["route"], "containers");
        assert_eq!(body["params"]["name"], "my-app");
        assert_eq!(body["query"]["all"], "true");
        assert_eq!(body["query"]["filter"], "a=b c");
    }

    #[test]
    fn literal_segments_win_over_params() {
        let (_, body) = run(&router(), "POST", "/v1/projects/prune");
        assert_eq!(body["route"], "prune");
        let (_, body) = run(&router(), "DELETE", "/v1/projects/web");
        assert_eq!(body["deleted"], "web");
    }

    #[test]
    fn unknown_path_is_404_and_wrong_method_405() {
        let (status, body) = run(&router(), "GET", "/v1/nothing");
        assert_eq!(status, 404);
        assert!(body["message"].as_str().unwrap().contains("/v1/nothing"));
        let (status, body) = run(&router(), "PUT", "/v1/projects/web");
        assert_eq!(status, 405);
        assert!(body["message"].as_str().unwrap().contains("DELETE, GET"), "{body}");
        let (status, body) = run(&router(), "GET", "/v2/version");
        assert_eq!(status, 404);
        assert!(body["message"].as_str().unwrap().contains("speaks API v1"));
    }

    #[test]
    fn trailing_slash_is_ignored() {
        let (status, body) = run(&router(), "GET", "/v1/version/");
        assert_eq!(status, 200);
        assert_eq!(body["route"], "version");
    }

    #[test]
    fn routes_lists_registrations() {
        let routes = router().routes();
        assert_eq!(routes.len(), 5);
        assert_eq!(routes[0], ("GET", "/v1/version"));
    }

    #[test]
    fn json_body_errors_are_400() {
        let mut request = Request {
            method: "POST".into(),
            path: "/v1/x".into(),
            body: b"{not json".to_vec(),
            ..Request::default()
        };
        let error = request.json::<Value>().unwrap_err();
        assert_eq!(error.status, 400);
        request.body.clear();
        assert_eq!(request.json::<Option<Value>>().unwrap(), None);
    }

    #[test]
    fn percent_coding_round_trips() {
        for text in ["plain", "a b/c?d=e&f", "ünï%", "%zz", "%4"] {
            assert_eq!(percent_decode(&percent_encode(text)), text);
        }
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41%62"), "Ab");
    }
}
