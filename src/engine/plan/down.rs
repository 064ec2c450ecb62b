//! `down`: stop and remove the project's containers in reverse dependency
//! order, then its networks, and its volumes with `-v` (§3.6).

use std::time::Duration;

use super::{Action, Desired, Observed, ObservedContainer, ObservedResource, Plan, PlanError, DEFAULT_STOP_TIMEOUT};

/// `berth down` flags that shape the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownOptions {
    /// `-v`: remove the project's named (non-external) volumes.
    pub remove_volumes: bool,
    /// Remove orphan containers too.
    pub remove_orphans: bool,
    /// `-t`: stop timeout overriding `stop_grace_period`.
    pub timeout: Option<Duration>,
    /// `down svc…`: those services and their dependents; networks and
    /// volumes are then kept. Empty means the whole project.
    pub services: Vec<String>,
}

/// Plans `berth down`. `desired` is the project model, loaded from the
/// compose file or rebuilt from container labels when there is none.
///
/// # Errors
///
/// Unknown selected services and invalid dependencies.
pub fn plan_down(desired: &Desired, observed: &Observed, options: &DownOptions) -> Result<Plan, PlanError> {
    let graph = desired.graph()?;
    if let Some(service) = options.services.iter().find(|s| !desired.services.contains_key(*s)) {
        return Err(PlanError::UnknownService {
            service: service.clone(),
        });
    }
    let selected = if options.services.is_empty() {
        desired.services.keys().cloned().collect()
    } else {
        graph.with_dependents(&options.services)
    };

    let mut plan = Plan::default();
    // Orphans may depend on project services, never the reverse: first.
    super::up::plan_orphans(&mut plan, desired, observed, options.remove_orphans, options.timeout);

    // Dependents stop before their dependencies (compose `down.go`); once
    // all are stopped, every container is removed in one parallel wave
    // (removing depends on nothing), which keeps a deep stack's `down` to
    // one step per dependency level.
    let mut remove = Vec::new();
    for wave in graph.stop_waves() {
        let mut stop = Vec::new();
        for service in wave.iter().filter(|s| selected.contains(*s)) {
            let timeout = options
                .timeout
                .or_else(|| desired.services.get(service).map(|s| s.stop_timeout))
                .unwrap_or(DEFAULT_STOP_TIMEOUT);
            let mut containers: Vec<&ObservedContainer> = observed.replicas(service).collect();
            // compose's `down --remove-orphans` lists one-offs too and removes
            // them with their service, running ones included (`down.go`);
            // exited one-offs are orphans, already removed above.
            if options.remove_orphans {
                containers.extend(
                    observed
                        .containers
                        .iter()
                        .filter(|c| c.oneoff && c.service == *service && !c.is_orphan(desired)),
                );
            }
            containers.sort_by_key(|c| c.number);
            for container in containers {
                if container.state.is_active() {
                    stop.push(Action::Stop {
                        container: container.name.clone(),
                        timeout,
                    });
                }
                remove.push(Action::Remove {
                    container: container.name.clone(),
                });
            }
        }
        plan.push_wave(stop);
    }
    plan.push_wave(remove);

    if options.services.is_empty() {
        plan.push_wave(project_resources(desired, observed, options));
    }
    Ok(plan)
}

/// The project's networks, and volumes with `-v`: never external ones, and
/// only those carrying this project's label (invariant 3: berth removes only
/// what it owns). A network still in use fails at apply time with a
/// warning, as in compose.
fn project_resources(desired: &Desired, observed: &Observed, options: &DownOptions) -> Vec<Action> {
    let owned = |existing: Option<&ObservedResource>| {
        existing.is_some_and(|r| r.project.as_deref() == Some(desired.project.as_str()))
    };
    let mut actions: Vec<Action> = desired
        .networks
        .iter()
        .filter(|n| !n.external && owned(observed.networks.get(&n.name)))
        .map(|n| Action::RemoveNetwork { name: n.name.clone() })
        .collect();
    if options.remove_volumes {
        actions.extend(
            desired
                .volumes
                .iter()
                .filter(|v| !v.external && owned(observed.volumes.get(&v.name)))
                .map(|v| Action::RemoveVolume { name: v.name.clone() }),
        );
    }
    actions
}
