//! `plan_up` per replica: scaling, numbering, names, starts, orphans.

use super::*;

#[test]
fn scale_up_from_1_to_3_creates_replicas_2_and_3() {
    let desired = project([replicas(service("web"), 3)]);
    let mut observed = converged(&desired);
    observed.containers.retain(|c| c.number == 1);
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(
        waves,
        vec![
            vec![create("web", 2), create("web", 3)],
            vec![start("web", 2), start("web", 3)]
        ]
    );
}

#[test]
fn scale_up_reuses_the_number_of_a_removed_replica() {
    let desired = project([replicas(service("web"), 3)]);
    let mut observed = converged(&desired);
    observed.containers.retain(|c| c.number != 2);
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![create("web", 2), start("web", 2)]);
}

#[test]
fn scale_down_from_3_to_1_removes_the_highest_numbers() {
    let desired = project([replicas(service("web"), 3)]);
    let observed = converged(&desired);
    let desired = project([service("web")]);
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![scale_down("web", 3), scale_down("web", 2)]);
}

#[test]
fn scale_down_removes_obsolete_containers_first() {
    let desired = project([replicas(service("web"), 2)]);
    let mut observed = converged(&desired);
    observed.containers.push(running("web", 3));
    observed.containers[0].config_hash = Some("hash-old".into()); // web-1
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![scale_down("web", 1)]);
}

#[test]
fn scale_to_zero_removes_every_replica_and_pulls_nothing() {
    let desired = project([replicas(service("web"), 2)]);
    let mut observed = converged(&desired);
    observed.images.clear();
    let desired = project([replicas(service("web"), 0)]);
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![scale_down("web", 2), scale_down("web", 1)]);
}

#[test]
fn stopped_up_to_date_containers_are_started_not_recreated() {
    let desired = project([service("web"), service("db"), service("cache")]);
    let mut observed = converged(&desired);
    observed.containers = vec![
        replica("web", 1, ContainerState::Exited),
        replica("db", 1, ContainerState::Created),
        replica("cache", 1, ContainerState::Paused),
    ];
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(waves, vec![vec![start("db", 1), start("web", 1)]]);
}

#[test]
fn dead_container_is_recreated() {
    let desired = project([service("web")]);
    let mut observed = converged(&desired);
    observed.containers[0].state = ContainerState::Dead;
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![recreate("web", 1), start("web", 1)]);
}

#[test]
fn orphans_are_reported_but_kept_without_remove_orphans() {
    let desired = project([service("web")]);
    let mut observed = converged(&desired);
    observed.containers.push(running("old", 1));
    let plan = plan_up(&desired, &observed, &UpOptions::default()).unwrap();
    assert!(plan.is_empty());
    assert_eq!(plan.orphans_kept, [name("old", 1)]);
}

#[test]
fn orphans_are_removed_first_with_remove_orphans() {
    let desired = project([service("web")]);
    let mut observed = Observed::default();
    observed.containers.push(running("old", 1));
    observed.images.insert("img/web".into(), "sha-img/web".into());
    let options = UpOptions {
        remove_orphans: true,
        timeout: Some(secs(2)),
        ..UpOptions::default()
    };
    let waves = up_waves(&desired, &observed, &options);
    assert_eq!(
        waves[0],
        vec![Action::RemoveOrphan {
            container: name("old", 1),
            timeout: secs(2)
        }]
    );
    assert_eq!(waves[1], vec![Action::EnsureNetwork { name: NETWORK.into() }]);
}

#[test]
fn oneoff_containers_are_orphans_only_once_exited() {
    let desired = project([service("web")]);
    let mut observed = converged(&desired);
    observed.containers.extend([
        oneoff("web", "aaa", ContainerState::Running),
        oneoff("gone", "bbb", ContainerState::Running),
        oneoff("web", "ccc", ContainerState::Exited),
        oneoff("gone", "ddd", ContainerState::Dead),
    ]);
    let plan = plan_up(&desired, &observed, &UpOptions::default()).unwrap();
    assert_eq!(plan.orphans_kept, ["p-gone-run-ddd", "p-web-run-ccc"]);
    // One-offs are never counted as replicas.
    assert!(plan.is_empty());
}

#[test]
fn profile_disabled_services_are_not_orphans() {
    let mut desired = project([service("web")]);
    desired.inactive_services.insert("debug".into());
    let mut observed = converged(&desired);
    observed.containers.push(running("debug", 1));
    let plan = plan_up(&desired, &observed, &UpOptions::default()).unwrap();
    assert!(plan.orphans_kept.is_empty());
    assert!(plan.is_empty());
}

#[test]
fn container_name_replaces_the_generated_name() {
    let mut web = service("web");
    web.container_name = Some("frontend".into());
    let desired = project([web]);
    let mut observed = converged(&desired);
    observed.containers.clear();
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(
        actions,
        vec![
            Action::Create {
                service: "web".into(),
                number: 1,
                name: "frontend".into()
            },
            Action::Start {
                service: "web".into(),
                container: "frontend".into()
            }
        ]
    );
}

#[test]
fn container_name_with_several_replicas_is_rejected() {
    let mut web = replicas(service("web"), 2);
    web.container_name = Some("frontend".into());
    let desired = project([web]);
    assert!(matches!(
        plan_up(&desired, &Observed::default(), &UpOptions::default()),
        Err(PlanError::ContainerNameWithReplicas { replicas: 2, .. })
    ));
}
