//! `up`: converge the project's containers on the desired state.
//!
//! The plan is laid out as
//! 1. orphan removal (only with `--remove-orphans`),
//! 2. resources: missing networks and volumes, image pulls and builds,
//! 3. one converge wave (scale down, recreate, create) for every service —
//!    more only when `volumes_from` needs a source made first,
//! 4. per start wave of the dependency graph, a start wave.
//!
//! Image ids are compared with what is in the store *now*: when a pull is
//! planned, the engine re-observes after it and plans again, which is
//! cheap because a converged project plans to nothing (invariant 5).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Action, Desired, DesiredService, Observed, ObservedContainer, Plan, PlanError, PullPolicy};
use super::{ContainerState, DEFAULT_STOP_TIMEOUT};

/// `berth up` flags that shape the plan. `--scale` is applied when building
/// [`Desired`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// Recreate targeted services even when unchanged.
    pub force_recreate: bool,
    /// Never recreate; only create what is missing and start what is stopped.
    pub no_recreate: bool,
    /// Do not bring the selected services' dependencies along.
    pub no_deps: bool,
    /// Recreate the (non-targeted) dependencies even when unchanged.
    pub always_recreate_deps: bool,
    /// Remove containers of services that left the project.
    pub remove_orphans: bool,
    /// Create containers but do not start them.
    pub no_start: bool,
    /// `up svc…`; empty means every service.
    pub services: Vec<String>,
    /// `-t`: stop timeout overriding `stop_grace_period`.
    pub timeout: Option<Duration>,
}

/// How a service's up-to-date containers are treated (§3.5.3–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecreatePolicy {
    /// Recreate when the container diverged from the desired state.
    Diverged,
    /// Recreate every container.
    Force,
    /// Never recreate.
    Never,
}

/// Why a service is converged in this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Targeted or a dependency of a target: scale, recreate, create, start.
    InScope,
    /// Outside the selection, but a `restart: true` dependency is recreated:
    /// its existing containers are recreated, nothing is scaled.
    RestartOnly,
}

/// Plans `berth up`.
///
/// # Errors
///
/// Contradicting options, unknown selected services, invalid dependencies,
/// `container_name` with several replicas, missing external networks or
/// volumes, and images that are missing under `pull_policy: never`.
pub fn plan_up(desired: &Desired, observed: &Observed, options: &UpOptions) -> Result<Plan, PlanError> {
    check_options(options)?;
    let graph = desired.graph()?;
    let targeted = targeted_services(desired, options)?;
    let in_scope: BTreeSet<String> = if options.no_deps {
        targeted.clone()
    } else {
        let targeted: Vec<String> = targeted.iter().cloned().collect();
        graph.with_dependencies(&targeted).into_iter().collect()
    };
    for name in &in_scope {
        if let Some(service) = desired.services.get(name) {
            service.check_container_name()?;
        }
    }

    let mut plan = Plan::default();
    plan_orphans(&mut plan, desired, observed, options.remove_orphans, options.timeout);
    plan.push_wave(resources(desired, observed, &in_scope)?);

    let mut recreated = BTreeSet::new();
    // Every container is made (or replaced) in one parallel wave ahead of
    // the starts: creating needs only networks, volumes and images, so the
    // dependency order matters for starting alone, and one wave instead of
    // one per dependency level is what keeps a deep stack's `up` short.
    // The exception is `volumes_from`: a container mounts its source's
    // volumes by name, so the source is made in an earlier converge wave
    // (`converge_level`).
    let mut converge: Vec<Vec<Action>> = Vec::new();
    let mut levels = BTreeMap::new();
    let mut starts = Vec::new();
    for wave in graph.start_waves() {
        let mut start = Vec::new();
        for name in wave {
            let Some(service) = desired.services.get(&name) else {
                continue;
            };
            let dependency_recreated = service
                .depends_on
                .iter()
                .any(|(dependency, edge)| edge.restart && recreated.contains(dependency))
                || service.volumes_from.iter().any(|source| recreated.contains(source));
            let reach = if in_scope.contains(&name) {
                Reach::InScope
            } else if dependency_recreated {
                Reach::RestartOnly
            } else {
                continue;
            };
            let policy = recreate_policy(&name, &targeted, options);
            let service_plan = ServiceConvergence {
                project: &desired.project,
                service,
                observed,
                policy,
                reach,
                dependency_recreated,
                options,
            };
            let level = converge_level(desired, &name, &mut levels);
            if converge.len() <= level {
                converge.resize_with(level + 1, Vec::new);
            }
            if service_plan.plan(&mut converge[level], &mut start) {
                recreated.insert(name);
            }
        }
        starts.push(start);
    }
    for wave in converge {
        plan.push_wave(wave);
    }
    for start in starts {
        plan.push_wave(start);
    }
    Ok(plan)
}

/// The converge wave of a service: 0, or one past the deepest of its
/// `volumes_from` sources. The dependency graph has no cycles (volumes_from
/// implies depends_on); the provisional 0 ends the recursion regardless.
fn converge_level(desired: &Desired, service: &str, levels: &mut BTreeMap<String, usize>) -> usize {
    if let Some(level) = levels.get(service) {
        return *level;
    }
    levels.insert(service.to_string(), 0);
    let sources = desired
        .services
        .get(service)
        .map_or(&[][..], |s| s.volumes_from.as_slice());
    let level = sources
        .iter()
        .filter(|source| desired.services.contains_key(*source) && *source != service)
        .map(|source| converge_level(desired, source, levels) + 1)
        .max()
        .unwrap_or(0);
    levels.insert(service.to_string(), level);
    level
}

/// The contradictions compose rejects up front.
fn check_options(options: &UpOptions) -> Result<(), PlanError> {
    if options.force_recreate && options.no_recreate {
        return Err(PlanError::IncompatibleOptions {
            first: "force-recreate",
            second: "no-recreate",
        });
    }
    if options.always_recreate_deps && options.no_recreate {
        return Err(PlanError::IncompatibleOptions {
            first: "always-recreate-deps",
            second: "no-recreate",
        });
    }
    Ok(())
}

/// The services named on the command line, or all of them.
fn targeted_services(desired: &Desired, options: &UpOptions) -> Result<BTreeSet<String>, PlanError> {
    if options.services.is_empty() {
        return Ok(desired.services.keys().cloned().collect());
    }
    for service in &options.services {
        if !desired.services.contains_key(service) {
            return Err(PlanError::UnknownService {
                service: service.clone(),
            });
        }
    }
    Ok(options.services.iter().cloned().collect())
}

/// §3.5.4: targeted services follow `--force-recreate`/`--no-recreate`;
/// dependencies brought along follow `--always-recreate-deps`
/// (`--no-recreate` still wins, as in compose's
/// `dependenciesRecreateStrategy`).
fn recreate_policy(service: &str, targeted: &BTreeSet<String>, options: &UpOptions) -> RecreatePolicy {
    let force = if targeted.contains(service) {
        options.force_recreate
    } else {
        options.always_recreate_deps
    };
    if options.no_recreate {
        RecreatePolicy::Never
    } else if force {
        RecreatePolicy::Force
    } else {
        RecreatePolicy::Diverged
    }
}

/// Orphans (§3.6 `isOrphaned`) are removed first, before anything could
/// collide with them; without `--remove-orphans` they are only reported.
/// Shared by `plan_down`, where orphans also go first.
pub(super) fn plan_orphans(
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    remove: bool,
    timeout: Option<Duration>,
) {
    let mut orphans: Vec<&ObservedContainer> = observed.containers.iter().filter(|c| c.is_orphan(desired)).collect();
    orphans.sort_by(|a, b| a.name.cmp(&b.name));
    if remove {
        let timeout = timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
        plan.push_wave(
            orphans
                .into_iter()
                .map(|c| Action::RemoveOrphan {
                    container: c.name.clone(),
                    timeout,
                })
                .collect(),
        );
    } else {
        plan.orphans_kept = orphans.into_iter().map(|c| c.name.clone()).collect();
    }
}

/// Networks, volumes and images the services in scope need and that are
/// missing; external resources must already exist (§3.2).
fn resources(desired: &Desired, observed: &Observed, in_scope: &BTreeSet<String>) -> Result<Vec<Action>, PlanError> {
    let services: Vec<&DesiredService> = in_scope.iter().filter_map(|name| desired.services.get(name)).collect();
    let networks: BTreeSet<&String> = services.iter().flat_map(|s| &s.networks).collect();
    let volumes: BTreeSet<&String> = services.iter().flat_map(|s| &s.volumes).collect();
    let mut actions = Vec::new();
    for name in networks.into_iter().filter(|n| !observed.networks.contains_key(*n)) {
        if desired.network_is_external(name) {
            return Err(PlanError::ExternalNetworkMissing { name: name.clone() });
        }
        actions.push(Action::EnsureNetwork { name: name.clone() });
    }
    for name in volumes.into_iter().filter(|v| !observed.volumes.contains_key(*v)) {
        if desired.volume_is_external(name) {
            return Err(PlanError::ExternalVolumeMissing { name: name.clone() });
        }
        actions.push(Action::EnsureVolume { name: name.clone() });
    }
    let mut images_seen = BTreeSet::new();
    for service in services.into_iter().filter(|s| s.replicas > 0) {
        if images_seen.insert(&service.image) {
            actions.extend(image_action(service, observed)?);
        }
    }
    Ok(actions)
}

/// What the pull policy asks for the service's image.
fn image_action(service: &DesiredService, observed: &Observed) -> Result<Option<Action>, PlanError> {
    let present = observed.images.contains_key(&service.image);
    let pull = || Action::PullImage {
        service: service.name.clone(),
        image: service.image.clone(),
    };
    let build = || Action::BuildImage {
        service: service.name.clone(),
        image: service.image.clone(),
    };
    Ok(match service.pull_policy {
        PullPolicy::Always => Some(pull()),
        _ if present => None,
        PullPolicy::Never => {
            return Err(PlanError::ImageNotPresent {
                service: service.name.clone(),
                image: service.image.clone(),
            })
        }
        PullPolicy::Build => Some(build()),
        PullPolicy::Missing if service.buildable => Some(build()),
        PullPolicy::Missing => Some(pull()),
    })
}

/// The decisions for one service (§3.5, compose `reconcileService`).
struct ServiceConvergence<'a> {
    project: &'a str,
    service: &'a DesiredService,
    observed: &'a Observed,
    policy: RecreatePolicy,
    reach: Reach,
    /// A `restart: true` dependency is recreated in this plan.
    dependency_recreated: bool,
    options: &'a UpOptions,
}

impl ServiceConvergence<'_> {
    /// Appends the service's converge and start actions; returns whether
    /// any of its containers is recreated (for `restart: true` dependents).
    fn plan(&self, converge: &mut Vec<Action>, start: &mut Vec<Action>) -> bool {
        let service = self.service;
        let timeout = self.options.timeout.unwrap_or(service.stop_timeout);
        let mut containers: Vec<&ObservedContainer> = self.observed.replicas(&service.name).collect();
        let taken: BTreeSet<u32> = containers.iter().map(|c| c.number).collect();
        let expected = match self.reach {
            Reach::InScope => usize::try_from(service.replicas).unwrap_or(usize::MAX),
            Reach::RestartOnly => containers.len(),
        };

        // §3.5.2: obsolete containers first, then the highest numbers, so
        // scaling down keeps the low numbers and the up-to-date containers.
        containers.sort_by_key(|c| (!self.is_obsolete(c), std::cmp::Reverse(c.number)));
        let surplus = containers.len().saturating_sub(expected);
        let (removed, kept) = containers.split_at(surplus);
        for container in removed {
            converge.push(Action::ScaleDown {
                service: service.name.clone(),
                container: container.name.clone(),
                number: container.number,
                timeout,
            });
        }

        let mut kept = kept.to_vec();
        kept.sort_by_key(|c| c.number);
        let mut any_recreated = false;
        for container in kept.iter().copied() {
            if self.must_recreate(container) {
                any_recreated = true;
                let name = service.container_name_for(self.project, container.number);
                converge.push(Action::Recreate {
                    service: service.name.clone(),
                    container: container.name.clone(),
                    number: container.number,
                    name: name.clone(),
                    timeout,
                });
                self.start(start, name);
            } else if container.state.is_startable() {
                // §3.5.6: up to date but stopped → started, not recreated.
                self.start(start, container.name.clone());
            }
        }

        for number in free_numbers(&taken).take(expected.saturating_sub(kept.len())) {
            let name = service.container_name_for(self.project, number);
            converge.push(Action::Create {
                service: service.name.clone(),
                number,
                name: name.clone(),
            });
            self.start(start, name);
        }
        any_recreated
    }

    fn start(&self, start: &mut Vec<Action>, container: String) {
        if !self.options.no_start {
            start.push(Action::Start {
                service: self.service.name.clone(),
                container,
            });
        }
    }

    /// Out of date with the desired state: another config hash, another
    /// image id than the reference now names (§3.4, §3.5.3), or dead (it
    /// cannot be started again).
    fn is_diverged(&self, container: &ObservedContainer) -> bool {
        let hash_changed = container.config_hash.as_deref() != Some(self.service.config_hash.as_str());
        let image_changed = match (self.observed.images.get(&self.service.image), &container.image_id) {
            (Some(current), Some(used)) => current != used,
            // An unknown id on either side cannot prove a change.
            _ => false,
        };
        hash_changed || image_changed || container.state == ContainerState::Dead
    }

    /// Preferred for removal when scaling down (compose `sortContainers`).
    fn is_obsolete(&self, container: &ObservedContainer) -> bool {
        self.policy != RecreatePolicy::Never && self.is_diverged(container)
    }

    /// §3.5.3 (compose `mustRecreate`), plus `depends_on.restart: true`.
    fn must_recreate(&self, container: &ObservedContainer) -> bool {
        match self.policy {
            RecreatePolicy::Never => false,
            RecreatePolicy::Force => true,
            RecreatePolicy::Diverged => {
                self.dependency_recreated || (self.reach == Reach::InScope && self.is_diverged(container))
            }
        }
    }
}

/// Replica numbers for new containers: the gaps from 1 upwards, then past
/// the highest. With contiguous numbers this is compose's
/// `nextContainerNumber` (max + 1, §3.2); after a replica was removed by
/// hand its number is reused instead of drifting upwards.
fn free_numbers(taken: &BTreeSet<u32>) -> impl Iterator<Item = u32> + '_ {
    (1..=u32::MAX).filter(move |n| !taken.contains(n))
}
