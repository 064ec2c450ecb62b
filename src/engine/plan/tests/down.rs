//! `plan_down`: reverse dependency order, orphans, networks, volumes.

use super::*;

fn stop(service: &str, number: u32) -> Action {
    Action::Stop {
        container: name(service, number),
        timeout: DEFAULT_STOP_TIMEOUT,
    }
}

fn remove(service: &str, number: u32) -> Action {
    Action::Remove {
        container: name(service, number),
    }
}

fn down(desired: &Desired, observed: &Observed, options: &DownOptions) -> Vec<Vec<Action>> {
    match plan_down(desired, observed, options) {
        Ok(plan) => plan.waves.into_iter().map(|w| w.actions).collect(),
        Err(e) => panic!("plan_down failed: {e}"),
    }
}

/// `web` → `api` → `db`, with a named volume on `db`.
fn three_tiers() -> Desired {
    let mut db = service("db");
    db.volumes = vec!["p_data".into()];
    let mut desired = project([
        db,
        depends(service("api"), "db", false),
        depends(service("web"), "api", false),
    ]);
    desired.volumes.push(ProjectResource {
        name: "p_data".into(),
        external: false,
    });
    desired
}

#[test]
fn down_stops_dependents_before_dependencies_then_removes_all_then_networks() {
    let desired = three_tiers();
    let observed = converged(&desired);
    let waves = down(&desired, &observed, &DownOptions::default());
    assert_eq!(
        waves,
        vec![
            vec![stop("web", 1)],
            vec![stop("api", 1)],
            vec![stop("db", 1)],
            vec![remove("web", 1), remove("api", 1), remove("db", 1)],
            vec![Action::RemoveNetwork { name: NETWORK.into() }],
        ]
    );
}

#[test]
fn down_removes_stopped_containers_without_stopping_them() {
    let desired = project([replicas(service("web"), 2)]);
    let mut observed = converged(&desired);
    observed.containers[1].state = ContainerState::Exited;
    let options = DownOptions {
        timeout: Some(secs(3)),
        ..DownOptions::default()
    };
    let waves = down(&desired, &observed, &options);
    assert_eq!(
        waves[0],
        vec![Action::Stop {
            container: name("web", 1),
            timeout: secs(3)
        }]
    );
    assert_eq!(waves[1], vec![remove("web", 1), remove("web", 2)]);
}

#[test]
fn down_keeps_volumes_unless_asked() {
    let desired = three_tiers();
    let observed = converged(&desired);
    let plan = plan_down(&desired, &observed, &DownOptions::default()).unwrap();
    assert!(!plan.actions().any(|a| matches!(a, Action::RemoveVolume { .. })));
}

#[test]
fn down_v_removes_owned_project_volumes_but_never_external_ones() {
    let mut desired = three_tiers();
    desired.volumes.push(ProjectResource {
        name: "backups".into(),
        external: true,
    });
    let mut observed = converged(&desired);
    observed.volumes.insert("backups".into(), ObservedResource::default());
    let options = DownOptions {
        remove_volumes: true,
        ..DownOptions::default()
    };
    let waves = down(&desired, &observed, &options);
    assert_eq!(
        waves.last(),
        Some(&vec![
            Action::RemoveNetwork { name: NETWORK.into() },
            Action::RemoveVolume { name: "p_data".into() }
        ])
    );
}

#[test]
fn down_never_touches_external_or_foreign_networks() {
    let mut desired = project([service("web")]);
    desired.networks = vec![
        ProjectResource {
            name: "shared".into(),
            external: true,
        },
        ProjectResource {
            name: NETWORK.into(),
            external: false,
        },
    ];
    let mut observed = converged(&desired);
    let foreign = ObservedResource {
        project: Some("other".into()),
    };
    observed.networks.insert("shared".into(), ObservedResource::default());
    observed.networks.insert(NETWORK.into(), foreign);
    let plan = plan_down(&desired, &observed, &DownOptions::default()).unwrap();
    assert!(!plan.actions().any(|a| matches!(a, Action::RemoveNetwork { .. })));
}

#[test]
fn down_removes_orphans_only_with_the_flag_and_first() {
    let desired = project([service("web")]);
    let mut observed = converged(&desired);
    observed.containers.push(running("old", 1));
    observed.containers.push(oneoff("web", "abc", ContainerState::Running));
    let kept = plan_down(&desired, &observed, &DownOptions::default()).unwrap();
    assert_eq!(kept.orphans_kept, [name("old", 1)]);
    assert!(!kept.actions().any(|a| matches!(a, Action::RemoveOrphan { .. })));

    let options = DownOptions {
        remove_orphans: true,
        ..DownOptions::default()
    };
    let waves = down(&desired, &observed, &options);
    assert_eq!(
        waves[0],
        vec![Action::RemoveOrphan {
            container: name("old", 1),
            timeout: DEFAULT_STOP_TIMEOUT
        }]
    );
    // A running one-off is not an orphan, but compose's `down
    // --remove-orphans` lists one-offs and removes them with their service
    // (`down.go`): stopped, then removed.
    let oneoff_actions: Vec<&Action> = waves
        .iter()
        .flatten()
        .filter(|a| format!("{a:?}").contains("run-abc"))
        .collect();
    assert!(
        matches!(oneoff_actions.as_slice(), [Action::Stop { .. }, Action::Remove { .. }]),
        "{oneoff_actions:?}"
    );
    // Without the flag it is left alone.
    assert!(!kept.actions().any(|a| format!("{a:?}").contains("run-abc")));
}

#[test]
fn down_of_a_service_takes_its_dependents_and_keeps_networks() {
    let desired = three_tiers();
    let observed = converged(&desired);
    let options = DownOptions {
        services: vec!["api".into()],
        ..DownOptions::default()
    };
    let waves = down(&desired, &observed, &options);
    assert_eq!(
        waves,
        vec![
            vec![stop("web", 1)],
            vec![stop("api", 1)],
            vec![remove("web", 1), remove("api", 1)],
        ]
    );
}

#[test]
fn down_with_nothing_running_plans_only_resource_removal() {
    let desired = three_tiers();
    let mut observed = converged(&desired);
    observed.containers.clear();
    let waves = down(&desired, &observed, &DownOptions::default());
    assert_eq!(waves, vec![vec![Action::RemoveNetwork { name: NETWORK.into() }]]);
}
