//! Waiting, for `up`: on a service's `depends_on` conditions before it
//! starts (healthy, or exited 0), and on the whole project's healthchecks
//! for `up --wait`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::apply::{error_chain, Applier, ApplyError};
use super::{health, labels};
use crate::runtime::config::Status;
use crate::runtime::container::Container;
use crate::runtime::lifecycle;
use crate::spec::model::Condition;
use crate::store::Root;

impl Applier<'_> {
    /// `depends_on` conditions (compose `waitDependencies`): healthy, or
    /// exited 0; `service_started` needs nothing more, the wave order saw
    /// to it.
    pub fn wait_for_dependencies(&self, service: &str) -> Result<(), ApplyError> {
        let Some(desired) = self.desired.services.get(service) else {
            return Ok(());
        };
        for (dependency, edge) in &desired.depends_on {
            if edge.condition == Condition::ServiceStarted || !self.desired.services.contains_key(dependency) {
                continue;
            }
            let containers: Vec<Container> = super::observe::project_containers(self.root, &self.desired.project)
                .map_err(|e| ApplyError::Dependency(error_chain(&e)))?
                .into_iter()
                .filter(|c| {
                    c.config.labels.get(labels::SERVICE) == Some(dependency)
                        && c.config.labels.get(labels::ONEOFF).map(String::as_str) != Some("True")
                })
                .collect();
            for c in containers {
                match edge.condition {
                    Condition::ServiceHealthy => self.wait_healthy(&c, edge.required)?,
                    Condition::ServiceCompletedSuccessfully => self.wait_completed(dependency, &c)?,
                    Condition::ServiceStarted => {}
                }
            }
        }
        Ok(())
    }

    fn wait_healthy(&self, c: &Container, required: bool) -> Result<(), ApplyError> {
        let name = &c.config.name;
        if c.config.healthcheck.is_none() {
            if !required {
                return Ok(());
            }
            return Err(ApplyError::Dependency(format!(
                "container {name} has no healthcheck configured"
            )));
        }
        self.event("Container", name, "Waiting");
        loop {
            let state = c.state().map_err(|e| ApplyError::Dependency(e.to_string()))?;
            if !matches!(state.status, Status::Running) {
                return Err(ApplyError::Dependency(format!(
                    "container {name} exited ({})",
                    state.exit_code.unwrap_or(-1)
                )));
            }
            match health::read(c).map(|h| h.status) {
                Some(health::HealthStatus::Healthy) => {
                    self.event("Container", name, "Healthy");
                    return Ok(());
                }
                Some(health::HealthStatus::Unhealthy) => {
                    return Err(ApplyError::Dependency(format!("container {name} is unhealthy")));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn wait_completed(&self, service: &str, c: &Container) -> Result<(), ApplyError> {
        let name = &c.config.name;
        self.event("Container", name, "Waiting");
        let code = lifecycle::wait_exit(c, None)
            .map_err(|e| ApplyError::Dependency(e.to_string()))?
            .unwrap_or(-1);
        if code != 0 {
            return Err(ApplyError::Dependency(format!(
                "service {service:?} didn't complete successfully: exit {code}"
            )));
        }
        self.event("Container", name, "Exited");
        Ok(())
    }
}

/// Waits until every container of the project that has a healthcheck is
/// healthy (`up --wait`), failing with the names of unhealthy or exited
/// ones, or of those still starting at the deadline.
pub fn wait_until_healthy(root: &Root, project: &str, timeout: Option<Duration>) -> Result<(), String> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let containers = super::observe::project_containers(root, project).map_err(|e| error_chain(&e))?;
        let mut pending = BTreeMap::new();
        let mut failed = Vec::new();
        for c in &containers {
            if c.config.labels.get(labels::ONEOFF).map(String::as_str) == Some("True") {
                continue;
            }
            let Ok(state) = c.state() else { continue };
            if state.status != Status::Running {
                if state.stopped_by_user || state.exit_code == Some(0) {
                    continue;
                }
                failed.push(format!("{} exited ({})", c.config.name, state.exit_code.unwrap_or(-1)));
                continue;
            }
            if c.config.healthcheck.is_none() {
                continue;
            }
            match health::read(c).map(|h| h.status) {
                Some(health::HealthStatus::Healthy) => {}
                Some(health::HealthStatus::Unhealthy) => failed.push(format!("{} is unhealthy", c.config.name)),
                _ => {
                    pending.insert(c.config.name.clone(), ());
                }
            }
        }
        if !failed.is_empty() {
            return Err(failed.join(", "));
        }
        if pending.is_empty() {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let names: Vec<String> = pending.into_keys().collect();
            return Err(format!("timed out waiting for {} to be healthy", names.join(", ")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
