//! `berth events`: the lifecycle events of a project's containers
//! (`create`, `start`, `die`, `pause`, `unpause`, `health_status`,
//! `destroy`).
//!
//! Design: events are derived by polling container state, not recorded.
//! Containers are created, started, stopped and removed by several
//! processes (the engine, the CLI for `start`/`stop`, each container's
//! monitor for exits and `--rm`), so a recorded log would need a write in
//! every one of them, and would miss what a killed engine never wrote.
//! Polling reads the one source of truth, the state files. It does not
//! miss a short run between two polls either: every start and exit leaves
//! its timestamp (`started_at`, `finished_at`) in the state, and
//! [`diff`] compares those, not just the status. What polling can miss is
//! a container created and removed between two polls, and all but the
//! last of several restarts within one poll.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{health, labels, observe};
use crate::runtime::config::Status;
use crate::runtime::container::Container;
use crate::store::Root;

/// What [`diff`] compares of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub service: String,
    pub image: String,
    pub status: Status,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    /// `healthy`/`unhealthy` of the current run; `None` while starting or
    /// without a healthcheck.
    pub health: Option<String>,
}

/// One event, in compose's `events --json` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvent {
    /// RFC 3339, when berth saw it.
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `create`, `start`, `die`, `pause`, `unpause`, `health_status`,
    /// `destroy`.
    pub action: String,
    pub id: String,
    pub service: String,
    pub attributes: BTreeMap<String, String>,
}

impl ContainerEvent {
    fn new(snapshot: &Snapshot, action: &str, time: &str) -> Self {
        let mut attributes = BTreeMap::from([
            ("name".to_string(), snapshot.name.clone()),
            ("image".to_string(), snapshot.image.clone()),
        ]);
        if action == "die" {
            attributes.insert(
                "exitCode".to_string(),
                snapshot.exit_code.unwrap_or_default().to_string(),
            );
        }
        if action == "health_status" {
            attributes.insert("healthStatus".to_string(), snapshot.health.clone().unwrap_or_default());
        }
        ContainerEvent {
            time: time.to_string(),
            kind: "container".to_string(),
            action: action.to_string(),
            id: snapshot.id.clone(),
            service: snapshot.service.clone(),
            attributes,
        }
    }

    /// compose's text line:
    /// `TIME container ACTION ID (image=…, name=…)`.
    pub fn line(&self) -> String {
        let attributes: Vec<String> = self.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{} {} {} {} ({})",
            self.time,
            self.kind,
            self.action,
            self.id,
            attributes.join(", ")
        )
    }
}

/// The project's containers now, by id (`services` empty: all of them).
///
/// # Errors
///
/// The container store cannot be listed.
pub fn snapshot(
    root: &Root,
    project: &str,
    services: &[String],
) -> Result<BTreeMap<String, Snapshot>, observe::ObserveError> {
    Ok(observe::project_containers(root, project)?
        .iter()
        .filter_map(snapshot_of)
        .filter(|s| services.is_empty() || services.contains(&s.service))
        .map(|s| (s.id.clone(), s))
        .collect())
}

/// A container whose state cannot be read is skipped for this poll: it is
/// being created or removed, and the next poll sees which.
fn snapshot_of(c: &Container) -> Option<Snapshot> {
    let state = c.state().ok()?;
    let health = health::read(c)
        .filter(|h| state.started_at.as_deref() == Some(h.started_at.as_str()))
        .map(|h| h.status)
        .filter(|s| *s != health::HealthStatus::Starting)
        .map(|s| s.to_string());
    Some(Snapshot {
        id: c.config.id.clone(),
        name: c.config.name.clone(),
        service: c.config.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
        image: c.config.image.clone(),
        status: state.status,
        started_at: state.started_at,
        finished_at: state.finished_at,
        exit_code: state.exit_code,
        health,
    })
}

fn time_of(text: Option<&String>) -> Option<SystemTime> {
    text.and_then(|t| crate::rfc3339::parse(t))
}

/// The events between two snapshots, in the order they happened. `now` is
/// the time given to events whose own time is unknown.
pub fn diff(before: &BTreeMap<String, Snapshot>, after: &BTreeMap<String, Snapshot>, now: &str) -> Vec<ContainerEvent> {
    let mut events = Vec::new();
    for (id, new) in after {
        let old = before.get(id);
        if old.is_none() {
            events.push(ContainerEvent::new(new, "create", now));
        }
        let started = new.started_at.is_some() && old.map(|o| &o.started_at) != Some(&new.started_at);
        let finished = new.finished_at.is_some() && old.map(|o| &o.finished_at) != Some(&new.finished_at);
        let start = ContainerEvent::new(new, "start", new.started_at.as_deref().unwrap_or(now));
        let die = ContainerEvent::new(new, "die", new.finished_at.as_deref().unwrap_or(now));
        match (started, finished) {
            (true, true) => {
                // A restart within one poll ends the old run before the new
                // one starts; a short run starts before it ends.
                let restarted = time_of(new.finished_at.as_ref()) < time_of(new.started_at.as_ref());
                if restarted {
                    events.extend([die, start]);
                } else {
                    events.extend([start, die]);
                }
            }
            (true, false) => events.push(start),
            (false, true) => events.push(die),
            (false, false) => {}
        }
        if let Some(old) = old {
            match (old.status, new.status) {
                (Status::Running, Status::Paused) => events.push(ContainerEvent::new(new, "pause", now)),
                (Status::Paused, Status::Running) => events.push(ContainerEvent::new(new, "unpause", now)),
                _ => {}
            }
        }
        if new.health.is_some() && old.map(|o| &o.health) != Some(&new.health) {
            events.push(ContainerEvent::new(new, "health_status", now));
        }
    }
    for (id, old) in before {
        if !after.contains_key(id) {
            events.push(ContainerEvent::new(old, "destroy", now));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(status: Status, started: Option<&str>, finished: Option<&str>) -> Snapshot {
        Snapshot {
            id: "c1".into(),
            name: "demo-web-1".into(),
            service: "web".into(),
            image: "busybox".into(),
            status,
            started_at: started.map(str::to_string),
            finished_at: finished.map(str::to_string),
            exit_code: finished.map(|_| 3),
            health: None,
        }
    }

    fn one(s: Snapshot) -> BTreeMap<String, Snapshot> {
        BTreeMap::from([(s.id.clone(), s)])
    }

    fn actions(events: &[ContainerEvent]) -> Vec<&str> {
        events.iter().map(|e| e.action.as_str()).collect()
    }

    const T1: &str = "2024-01-01T00:00:01Z";
    const T2: &str = "2024-01-01T00:00:02Z";
    const T3: &str = "2024-01-01T00:00:03Z";

    #[test]
    fn create_start_die_destroy() {
        let empty = BTreeMap::new();
        let created = one(snap(Status::Created, None, None));
        assert_eq!(actions(&diff(&empty, &created, T1)), ["create"]);
        let running = one(snap(Status::Running, Some(T1), None));
        let events = diff(&created, &running, T2);
        assert_eq!(actions(&events), ["start"]);
        assert_eq!(events[0].time, T1);
        let exited = one(snap(Status::Exited, Some(T1), Some(T2)));
        let events = diff(&running, &exited, T3);
        assert_eq!(actions(&events), ["die"]);
        assert_eq!(events[0].attributes["exitCode"], "3");
        assert_eq!(actions(&diff(&exited, &empty, T3)), ["destroy"]);
        assert!(diff(&exited, &exited, T3).is_empty());
    }

    #[test]
    fn a_run_between_two_polls_is_not_missed() {
        let created = one(snap(Status::Created, None, None));
        let exited = one(snap(Status::Exited, Some(T1), Some(T2)));
        assert_eq!(actions(&diff(&created, &exited, T3)), ["start", "die"]);
        assert_eq!(
            actions(&diff(&BTreeMap::new(), &exited, T3)),
            ["create", "start", "die"]
        );
    }

    #[test]
    fn a_restart_between_two_polls_dies_then_starts() {
        let running = one(snap(Status::Running, Some(T1), None));
        let restarted = one(snap(Status::Running, Some(T3), Some(T2)));
        assert_eq!(actions(&diff(&running, &restarted, T3)), ["die", "start"]);
    }

    #[test]
    fn pause_unpause_and_health() {
        let running = one(snap(Status::Running, Some(T1), None));
        let paused = one(snap(Status::Paused, Some(T1), None));
        assert_eq!(actions(&diff(&running, &paused, T2)), ["pause"]);
        assert_eq!(actions(&diff(&paused, &running, T2)), ["unpause"]);
        let mut healthy = snap(Status::Running, Some(T1), None);
        healthy.health = Some("healthy".into());
        let events = diff(&running, &one(healthy.clone()), T2);
        assert_eq!(actions(&events), ["health_status"]);
        assert_eq!(events[0].attributes["healthStatus"], "healthy");
        assert!(events[0]
            .line()
            .contains("container health_status c1 (healthStatus=healthy"));
        assert!(diff(&one(healthy.clone()), &one(healthy), T3).is_empty());
    }
}
