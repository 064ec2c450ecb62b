//! The engine transport with real processes: `berth engine` on a private
//! root (socket permissions, one engine per root, `--stop`), auto-start
//! (including two racing clients), and a streaming route end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::api::{self, ApiError, Client, Response, Router};
use berth::store::Root;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid};
use serde_json::{json, Value};
use support::Engine;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// Engine processes of `root`: `berth --root <root> engine` (zombies have
/// no command line and do not count).
fn engine_pids(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.contains(&root) && args.iter().any(|a| a == "engine") {
            pids.push(pid);
        }
    }
    pids
}

/// Kills whatever engine a failing test left, so one failure does not
/// leave processes behind or poison the next run.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in engine_pids(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        let _ = std::fs::remove_file(self.0.join("engine.sock"));
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn version(client: &Client) -> Value {
    client.request("GET", "/v1/version", None).unwrap()
}

/// `berth --root <root> engine` in the background, ready to answer.
fn start_engine(engine: &Engine) -> (Child, Client) {
    let child = Command::new(BERTH)
        .arg("--root")
        .arg(engine.root.path())
        .arg("engine")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::new(api::socket_path(&engine.root));
    wait_until("the engine to answer", Duration::from_secs(10), || {
        client.request("GET", "/v1/version", None).is_ok()
    });
    (child, client)
}

fn assert_engine_gone(engine: &Engine) {
    wait_until("engine processes to exit", Duration::from_secs(10), || {
        engine_pids(engine.root.path()).is_empty()
    });
    assert!(
        api::socket_path(&engine.root).symlink_metadata().is_err(),
        "the socket is left behind"
    );
}

#[test]
fn engine_serves_a_private_socket_once_per_root_and_stops() {
    let engine = Engine::new();
    let _cleanup = Cleanup(engine.root.path().to_path_buf());
    let (mut child, client) = start_engine(&engine);

    let body = version(&client);
    assert_eq!(body["api"], "v1");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["pid"], child.id());
    assert_eq!(body["root"], engine.root.path().to_str().unwrap());
    assert!(body["started"].as_str().unwrap().ends_with('Z'));

    let meta = api::socket_path(&engine.root).symlink_metadata().unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "socket owner");

    // Unknown routes and methods are JSON errors.
    match client.request("GET", "/v1/nothing", None) {
        Err(ApiError::Status { status: 404, message }) => assert!(message.contains("/v1/nothing")),
        other => panic!("expected a 404, got {other:?}"),
    }
    match client.request("GET", "/v1/engine/stop", None) {
        Err(ApiError::Status { status: 405, .. }) => {}
        other => panic!("expected a 405, got {other:?}"),
    }

    let second = engine.berth(&["engine"]);
    assert!(!second.status.success(), "a second engine started");
    let stderr = support::stderr(&second);
    assert!(
        stderr.contains("an engine is already running for root")
            && stderr.contains(engine.root.path().to_str().unwrap()),
        "unclear message: {stderr}"
    );
    assert_eq!(version(&client)["pid"], child.id(), "the first engine still serves");

    let out = engine.ok(&["engine", "--stop"]);
    assert!(out.contains("engine stopped"), "{out}");
    assert!(
        api::socket_path(&engine.root).symlink_metadata().is_err(),
        "socket left after --stop"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "engine exit status {status:?}");
    assert_engine_gone(&engine);

    let out = engine.ok(&["engine", "--stop"]);
    assert!(out.contains("no engine is running"), "{out}");
    engine.assert_no_residue();
}

#[test]
fn sigterm_stops_the_engine_gracefully_and_a_stale_socket_is_replaced() {
    let engine = Engine::new();
    let _cleanup = Cleanup(engine.root.path().to_path_buf());
    let (mut child, _) = start_engine(&engine);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert_engine_gone(&engine);

    // An engine killed outright leaves its socket; the next one replaces it.
    let (mut child, client) = start_engine(&engine);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(api::socket_path(&engine.root).symlink_metadata().is_ok());
    assert!(client.request("GET", "/v1/version", None).unwrap_err().is_not_running());
    let (mut child, client) = start_engine(&engine);
    assert_eq!(version(&client)["pid"], child.id());
    engine.ok(&["engine", "--stop"]);
    child.wait().unwrap();
    assert_engine_gone(&engine);
}

#[test]
fn connect_or_start_starts_exactly_one_engine_for_racing_clients() {
    let engine = Engine::new();
    let _cleanup = Cleanup(engine.root.path().to_path_buf());
    let root = Arc::new(engine.root.clone());
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let root = Arc::clone(&root);
            std::thread::spawn(move || api::connect_or_start_with(&root, Path::new(BERTH)).unwrap())
        })
        .collect();
    let clients: Vec<Client> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let pids: Vec<Value> = clients.iter().map(|c| version(c)["pid"].clone()).collect();
    assert_eq!(pids[0], pids[1], "the racing clients talk to different engines");
    // The loser of the lock race exits on its own.
    wait_until("a single engine process", Duration::from_secs(10), || {
        engine_pids(engine.root.path()).len() == 1
    });
    assert_eq!(i64::from(engine_pids(engine.root.path())[0]), pids[0].as_i64().unwrap());

    // A running engine is reused, not restarted.
    let again = api::connect_or_start_with(&engine.root, Path::new(BERTH)).unwrap();
    assert_eq!(version(&again)["pid"], pids[0]);
    let log = std::fs::read_to_string(api::autostart::log_path(&engine.root)).unwrap();
    assert!(log.contains("serving"), "engine log: {log}");

    again.request("POST", "/v1/engine/stop", None).unwrap();
    let pid = Pid::from_raw(i32::try_from(pids[0].as_i64().unwrap()).unwrap());
    wait_until("the engine to stop", Duration::from_secs(10), || {
        engine_pids(engine.root.path()).is_empty()
    });
    // Started from this process: reap it rather than leave a zombie.
    let _ = waitpid(pid, None);
    assert_engine_gone(&engine);
    engine.assert_no_residue();
}

#[test]
fn connect_or_start_reports_the_engine_log_when_the_engine_never_answers() {
    support::require_root();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-berth");
    std::fs::write(&fake, "#!/bin/sh\necho \"boom: cannot serve $*\" >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = Root::new(dir.path().join("root"));
    let error = api::connect_or_start_with(&root, &fake).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ApiError::StartTimeout { .. }), "{message}");
    assert!(message.contains("boom: cannot serve --root"), "{message}");
    assert!(message.contains("engine.log"), "{message}");
}

/// A router of test routes, served on a temporary socket in this process.
struct TestServer {
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Result<(), ApiError>>>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestServer {
    fn start(router: Router, group: Option<Gid>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let path = socket.clone();
        let served = runtime.spawn(async move {
            api::serve(&path, group, router, async {
                let _ = stopped.await;
            })
            .await
        });
        let client = Client::new(socket.clone());
        wait_until("the test server", Duration::from_secs(5), || {
            client.request("GET", "/v1/ping", None).is_ok()
        });
        TestServer {
            runtime,
            stop: Some(stop),
            served: Some(served),
            socket,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.socket.clone())
    }

    fn stop(mut self) -> Result<(), ApiError> {
        let _ = self.stop.take().unwrap().send(());
        let served = self.served.take().unwrap();
        self.runtime.block_on(served).unwrap()
    }
}

fn ping() -> Router {
    Router::new().route("GET", "/v1/ping", |_req| async { Response::ok(json!("pong")) })
}

#[test]
fn streaming_routes_deliver_each_line_as_it_is_sent() {
    let release = Arc::new(tokio::sync::Notify::new());
    let (hung_up_tx, hung_up_rx) = std::sync::mpsc::channel::<usize>();
    let hung_up_tx = std::sync::Mutex::new(hung_up_tx);
    let gate = Arc::clone(&release);
    let router = ping()
        .route("GET", "/v1/steps", move |_req| {
            let gate = Arc::clone(&gate);
            async move {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                tokio::spawn(async move {
                    tx.send(json!({ "step": 1 })).await.unwrap();
                    // Item 2 waits for the client to have seen item 1: a
                    // server that buffered the stream would hang the test.
                    gate.notified().await;
                    tx.send(json!({ "step": 2, "text": "line\nbreak" })).await.unwrap();
                });
                Response::stream(rx)
            }
        })
        .route("GET", "/v1/forever", move |_req| {
            let hung_up = hung_up_tx.lock().unwrap().clone();
            async move {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(async move {
                    let mut sent = 0;
                    while tx.send(json!({ "n": sent })).await.is_ok() {
                        sent += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let _ = hung_up.send(sent);
                });
                Response::stream(rx)
            }
        })
        .route("POST", "/v1/echo/{name}", |req| async move {
            match req.json::<Value>() {
                Ok(body) => Response::ok(json!({ "name": req.param("name"), "query": req.query, "body": body })),
                Err(response) => response,
            }
        });
    let server = TestServer::start(router, None);
    let client = server.client();

    let mut steps = client.stream("GET", "/v1/steps", None).unwrap();
    assert_eq!(steps.next().unwrap().unwrap(), json!({ "step": 1 }));
    release.notify_one();
    let second = steps.next().unwrap().unwrap();
    assert_eq!(second["text"], "line\nbreak");
    assert!(steps.next().is_none(), "the stream ends when the sender drops");

    // The blocking request() gathers a stream's lines into an array.
    release.notify_one();
    let all = client.request("GET", "/v1/steps", None).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);

    // A client that goes away stops the producer (its send fails).
    let mut forever = client.stream("GET", "/v1/forever", None).unwrap();
    assert_eq!(forever.next().unwrap().unwrap()["n"], 0);
    drop(forever);
    hung_up_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the producer never noticed the hang-up");

    let echoed = client
        .request(
            "POST",
            "/v1/echo/web%201?follow=true&tail=10",
            Some(&json!({ "a": [1, 2] })),
        )
        .unwrap();
    assert_eq!(
        echoed,
        json!({ "name": "web 1", "query": { "follow": "true", "tail": "10" }, "body": { "a": [1, 2] } })
    );
    match client.request("POST", "/v1/echo/x", Some(&json!("ok"))) {
        Ok(v) => assert_eq!(v["body"], "ok"),
        Err(e) => panic!("{e}"),
    }
    match client.stream("GET", "/v1/missing", None) {
        Err(ApiError::Status { status: 404, message }) => assert!(message.contains("/v1/missing")),
        other => panic!("expected a 404, got {other:?}"),
    }

    let socket = server.socket.clone();
    server.stop().unwrap();
    assert!(socket.symlink_metadata().is_err(), "serve left its socket");
}

#[test]
fn serve_refuses_a_live_socket_and_honours_the_group() {
    support::require_root();
    let server = TestServer::start(ping(), Some(Gid::from_raw(4242)));
    let meta = server.socket.symlink_metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, 4242));

    // A second server on the same path must not steal the socket.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime
        .block_on(api::serve(&server.socket, None, ping(), async {}))
        .unwrap_err();
    assert!(matches!(error, ApiError::AlreadyRunning { .. }), "{error}");
    assert!(error.to_string().contains("already running"), "{error}");
    assert_eq!(server.client().request("GET", "/v1/ping", None).unwrap(), "pong");

    // A path too long for a UNIX socket fails before touching anything.
    let long = PathBuf::from(format!("/tmp/{}/engine.sock", "d".repeat(110)));
    let error = runtime.block_on(api::serve(&long, None, ping(), async {})).unwrap_err();
    assert!(error.to_string().contains(&long.display().to_string()), "{error}");

    let socket = server.socket.clone();
    server.stop().unwrap();
    assert!(socket.symlink_metadata().is_err());
}
