//! The engine's watch over running containers: healthchecks on their
//! schedule and restart policies with backoff. One thread polls the
//! container list (a cheap directory scan) a few times a second; each probe
//! runs on a thread of its own so that a slow check delays no other.
//!
//! Everything it knows survives an engine restart in files beside each
//! container (`health.json`, `restart.json`), so a new engine picks up
//! where the old one stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::health::{self, HealthState};
use super::restart::{self, Decision, Ending, History};
use crate::runtime::config::{RestartPolicy, Status};
use crate::runtime::container::{self, Container};
use crate::runtime::lifecycle;
use crate::store::{write_atomic_volatile, Root};

pub const RESTART_FILE: &str = "restart.json";
const TICK: Duration = Duration::from_millis(100);

/// What is remembered of a container's restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    pub history: History,
    /// The `finished_at` the last decision was made for.
    pub decided_for: Option<String>,
    /// That decision was to restart, and it has not happened yet.
    pub pending: bool,
}

pub fn read_restarts(c: &Container) -> RestartRecord {
    std::fs::read(c.dir.join(RESTART_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_restarts(c: &Container, record: &RestartRecord) {
    if let Ok(bytes) = serde_json::to_vec(record) {
        let _ = write_atomic_volatile(&c.dir.join(RESTART_FILE), &bytes);
    }
}

/// A running supervisor; dropping the handle does not stop it, [`stop`]
/// does.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    pub fn spawn(root: Root) -> Supervisor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || Loop::new(root).run(&flag));
        Supervisor {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    root: Root,
    /// Next probe per container id and run (`started_at`).
    next_probe: BTreeMap<(String, String), Instant>,
    probing: Arc<Mutex<BTreeSet<String>>>,
    /// Restarts due per container id.
    restart_at: BTreeMap<String, Instant>,
}

impl Loop {
    fn new(root: Root) -> Self {
        Loop {
            root,
            next_probe: BTreeMap::new(),
            probing: Arc::new(Mutex::new(BTreeSet::new())),
            restart_at: BTreeMap::new(),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            self.tick();
            std::thread::sleep(TICK);
        }
    }

    fn tick(&mut self) {
        let Ok(containers) = container::list(&self.root) else {
            return;
        };
        let mut live = BTreeSet::new();
        for c in containers {
            let Ok(state) = c.state() else { continue };
            live.insert(c.config.id.clone());
            match state.status {
                Status::Running => self.health(&c, state.started_at.as_deref().unwrap_or_default()),
                Status::Exited | Status::Dead => self.restart(&c, &state),
                // A restart whose start failed leaves it created: retry.
                Status::Created if self.restart_at.contains_key(&c.config.id) => self.restart(&c, &state),
                _ => {}
            }
        }
        self.next_probe.retain(|(id, _), _| live.contains(id));
        self.restart_at.retain(|id, _| live.contains(id));
    }

    fn health(&mut self, c: &Container, started_at: &str) {
        let Some(config) = c.config.healthcheck.clone() else {
            return;
        };
        let key = (c.config.id.clone(), started_at.to_string());
        let now = Instant::now();
        let since_start = since(started_at);
        let due = *self.next_probe.entry(key.clone()).or_insert_with(|| {
            let state = HealthState::starting(started_at);
            now + state.next_probe_in(&config, since_start)
        });
        if now < due {
            return;
        }
        {
            let Ok(mut probing) = self.probing.lock() else { return };
            if !probing.insert(c.config.id.clone()) {
                return;
            }
        }
        let root = self.root.clone();
        let c = c.clone();
        let probing = self.probing.clone();
        let started_at = started_at.to_string();
        let wait = {
            let current = health::read(&c).filter(|h| h.started_at == started_at);
            current
                .unwrap_or_else(|| HealthState::starting(&started_at))
                .next_probe_in(&config, since_start)
        };
        self.next_probe.insert(key, now + wait);
        std::thread::spawn(move || {
            let probe = health::probe(&root, &c, &config);
            let mut state = health::read(&c)
                .filter(|h| h.started_at == started_at)
                .unwrap_or_else(|| HealthState::starting(&started_at));
            state.record(&config, probe, since(&started_at));
            // Only while the same run goes on: a stopped container keeps
            // its last state, a removed one has no directory to write to.
            if c.state()
                .is_ok_and(|s| s.started_at.as_deref() == Some(started_at.as_str()))
            {
                let _ = health::write(&c, &state);
            }
            if let Ok(mut probing) = probing.lock() {
                probing.remove(&c.config.id);
            }
        });
    }

    fn restart(&mut self, c: &Container, state: &crate::runtime::config::ContainerState) {
        if c.config.restart == RestartPolicy::No {
            return;
        }
        let id = c.config.id.clone();
        if let Some(at) = self.restart_at.get(&id) {
            if Instant::now() >= *at {
                self.restart_at.remove(&id);
                match lifecycle::start(&self.root, c) {
                    Ok(_) => {
                        let mut record = read_restarts(c);
                        record.pending = false;
                        write_restarts(c, &record);
                    }
                    Err(e) => {
                        // Tried again on a later tick, after the backoff.
                        super::daemon::log(format_args!("restarting {}: {e}", c.config.name));
                        let backoff = Duration::from_millis(read_restarts(c).history.backoff_ms.max(100));
                        self.restart_at.insert(id, Instant::now() + backoff);
                    }
                }
            }
            return;
        }
        let mut record = read_restarts(c);
        let finished = state.finished_at.clone();
        if record.decided_for.is_some() && record.decided_for == finished {
            // Decided by an engine that is gone: honour a pending restart.
            if record.pending {
                self.restart_at.insert(id, Instant::now());
            }
            return;
        }
        let ran_for = match (&state.started_at, &finished) {
            (Some(s), Some(f)) => match (crate::rfc3339::parse(s), crate::rfc3339::parse(f)) {
                (Some(s), Some(f)) => f.duration_since(s).unwrap_or_default(),
                _ => Duration::ZERO,
            },
            _ => Duration::ZERO,
        };
        let ending = Ending {
            exit_code: state.exit_code.unwrap_or(-1),
            stopped_by_user: state.stopped_by_user,
            ran_for,
        };
        let decision = restart::decide(c.config.restart, ending, &mut record.history);
        record.decided_for = finished;
        record.pending = matches!(decision, Decision::RestartAfter(_));
        write_restarts(c, &record);
        if let Decision::RestartAfter(wait) = decision {
            self.restart_at.insert(id, Instant::now() + wait);
        }
    }
}

/// Time since an RFC 3339 instant (zero when unreadable or ahead).
fn since(at: &str) -> Duration {
    crate::rfc3339::parse(at)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}
