//! The compose routes of the engine API: `up` and `down` stream their
//! progress as NDJSON (`{"event": …}` lines, then one `{"result": …}` or
//! `{"error": "…"}`), `ps` and the project list answer in one JSON body.
//!
//! The operations are blocking (they wait on processes and the kernel):
//! each runs on tokio's blocking pool, and keeps running when the client
//! goes away, as docker's engine does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::apply::Event;
use super::project::{self, DownRequest, EngineError, FetchRequest, UpRequest};
use super::server::EngineState;
use crate::engine::api::{Request, Response};
use crate::spec::model::Project;
use crate::store::Root;

/// Body of `POST /v1/projects/{name}/up`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpBody {
    pub project: Project,
    #[serde(default)]
    pub request: UpRequest,
}

/// Body of `POST /v1/projects/{name}/down`; without a project (no stack
/// file), the project is rebuilt from its resources' labels.
#[derive(Debug, Serialize, Deserialize)]
pub struct DownBody {
    #[serde(default)]
    pub project: Option<Project>,
    #[serde(default)]
    pub request: DownRequest,
}

/// Items of a progress stream; the CLI reads them back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamItem {
    Event(Event),
    Result(serde_json::Value),
    Error(String),
}

fn check_name(request: &Request, project: &Project) -> Result<(), Response> {
    let name = request.param("name");
    if name != project.name {
        return Err(Response::error(
            400,
            format!(
                "project {:?} in the body does not match {name:?} in the path",
                project.name
            ),
        ));
    }
    Ok(())
}

/// Runs `operation` on the blocking pool, streaming its events and its
/// outcome.
fn streamed<T: Serialize + Send + 'static>(
    root: Root,
    operation: impl FnOnce(&Root, &(dyn Fn(Event) + Sync)) -> Result<T, EngineError> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        let send = |event: Event| {
            // A client that went away stops reading; the work goes on.
            let _ = tx.blocking_send(json!(StreamItem::Event(event)));
        };
        let last = match operation(&root, &send) {
            Ok(value) => StreamItem::Result(serde_json::to_value(value).unwrap_or_default()),
            Err(e) => StreamItem::Error(project::describe(&e)),
        };
        let _ = tx.blocking_send(json!(last));
    });
    Response::stream(rx)
}

/// The body of a project route, checked against the name in the path.
fn project_body<T: serde::de::DeserializeOwned>(
    request: &Request,
    project_of: impl Fn(&T) -> Option<&Project>,
) -> Result<T, Response> {
    let body: T = request.json()?;
    if let Some(project) = project_of(&body) {
        check_name(request, project)?;
    }
    Ok(body)
}

pub async fn up(state: Arc<EngineState>, request: Request) -> Response {
    match project_body(&request, |b: &UpBody| Some(&b.project)) {
        Ok(body) => streamed(state.root.clone(), move |root, events| {
            project::up(root, &body.project, &body.request, events)
        }),
        Err(response) => response,
    }
}

pub async fn down(state: Arc<EngineState>, request: Request) -> Response {
    let body = match project_body(&request, |b: &DownBody| b.project.as_ref()) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let name = request.param("name").to_string();
    streamed(state.root.clone(), move |root, events| {
        let project = match body.project {
            Some(project) => project,
            None => project::project_from_labels(root, &name)?,
        };
        project::down(root, &project, &body.request, events)
    })
}

/// Body of `POST /v1/projects/{name}/build` and `…/pull`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FetchBody {
    pub project: Project,
    #[serde(default)]
    pub request: FetchRequest,
}

type FetchOperation = fn(&Root, &Project, &FetchRequest, &(dyn Fn(Event) + Sync)) -> Result<usize, EngineError>;

fn fetch(state: &EngineState, request: &Request, operation: FetchOperation) -> Response {
    match project_body(request, |b: &FetchBody| Some(&b.project)) {
        Ok(body) => streamed(state.root.clone(), move |root, events| {
            operation(root, &body.project, &body.request, events)
        }),
        Err(response) => response,
    }
}

pub async fn build(state: Arc<EngineState>, request: Request) -> Response {
    fetch(&state, &request, project::build)
}

pub async fn pull(state: Arc<EngineState>, request: Request) -> Response {
    fetch(&state, &request, project::pull)
}

/// `GET /v1/projects/{name}/containers[?all=true]`.
pub async fn containers(state: Arc<EngineState>, request: Request) -> Response {
    let name = request.param("name").to_string();
    let all = request.query.get("all").is_some_and(|v| v == "true" || v == "1");
    let root = state.root.clone();
    match tokio::task::spawn_blocking(move || project::ps(&root, &name, all)).await {
        Ok(Ok(list)) => Response::ok(json!(list)),
        Ok(Err(e)) => Response::error(500, project::describe(&e)),
        Err(e) => Response::error(500, e.to_string()),
    }
}

/// `GET /v1/projects`: name → running and total containers.
pub async fn projects(state: Arc<EngineState>, _request: Request) -> Response {
    let root = state.root.clone();
    match tokio::task::spawn_blocking(move || project::list_projects(&root)).await {
        Ok(Ok(map)) => {
            let list: Vec<serde_json::Value> = map
                .into_iter()
                .map(|(name, (running, total))| json!({ "name": name, "running": running, "total": total }))
                .collect();
            Response::ok(json!(list))
        }
        Ok(Err(e)) => Response::error(500, project::describe(&e)),
        Err(e) => Response::error(500, e.to_string()),
    }
}
