//! `plan_up`: create / keep / recreate, restart propagation, selection.

use super::*;

/// `web` depends on `db`.
fn web_and_db(restart: bool) -> Desired {
    project([service("db"), depends(service("web"), "db", restart)])
}

fn changed_hash(desired: &mut Desired, service: &str) {
    if let Some(s) = desired.services.get_mut(service) {
        s.config_hash = format!("hash-{service}-changed");
    }
}

#[test]
fn fresh_up_ensures_resources_creates_everything_then_starts_in_dependency_waves() {
    let desired = web_and_db(false);
    let waves = up_waves(&desired, &Observed::default(), &UpOptions::default());
    let pull = |s: &str| Action::PullImage {
        service: s.into(),
        image: format!("img/{s}"),
    };
    assert_eq!(
        waves,
        vec![
            vec![Action::EnsureNetwork { name: NETWORK.into() }, pull("db"), pull("web")],
            vec![create("db", 1), create("web", 1)],
            vec![start("db", 1)],
            vec![start("web", 1)],
        ]
    );
}

#[test]
fn up_of_a_converged_project_is_empty() {
    let desired = web_and_db(true);
    let observed = converged(&desired);
    let plan = plan_up(&desired, &observed, &UpOptions::default()).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert!(plan.orphans_kept.is_empty());
}

#[test]
fn changed_config_recreates_exactly_that_service() {
    let mut desired = project([service("db"), depends(service("web"), "db", false), service("cache")]);
    let observed = converged(&desired);
    changed_hash(&mut desired, "web");
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(waves, vec![vec![recreate("web", 1)], vec![start("web", 1)]]);
}

#[test]
fn recreated_dependency_recreates_restart_true_dependent() {
    let mut desired = web_and_db(true);
    let observed = converged(&desired);
    changed_hash(&mut desired, "db");
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(
        waves,
        vec![
            vec![recreate("db", 1), recreate("web", 1)],
            vec![start("db", 1)],
            vec![start("web", 1)],
        ]
    );
}

#[test]
fn restart_propagates_transitively_through_restart_true_edges() {
    let mut desired = project([
        service("db"),
        depends(service("api"), "db", true),
        depends(service("web"), "api", true),
        depends(service("admin"), "api", false),
    ]);
    let observed = converged(&desired);
    changed_hash(&mut desired, "db");
    let recreated: Vec<String> = up_actions(&desired, &observed, &UpOptions::default())
        .into_iter()
        .filter_map(|a| match a {
            Action::Recreate { service, .. } => Some(service),
            _ => None,
        })
        .collect();
    assert_eq!(recreated, ["db", "api", "web"]);
}

#[test]
fn recreated_dependency_leaves_restart_false_dependent_running() {
    let mut desired = web_and_db(false);
    let observed = converged(&desired);
    changed_hash(&mut desired, "db");
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![recreate("db", 1), start("db", 1)]);
}

#[test]
fn restart_true_dependent_outside_the_selection_is_recreated_not_scaled() {
    let mut desired = project([service("db"), replicas(depends(service("web"), "db", true), 3)]);
    let mut observed = converged(&desired);
    observed.containers.retain(|c| !(c.service == "web" && c.number == 3));
    changed_hash(&mut desired, "db");
    let options = UpOptions {
        services: vec!["db".into()],
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(
        actions,
        vec![
            recreate("db", 1),
            recreate("web", 1),
            recreate("web", 2),
            start("db", 1),
            start("web", 1),
            start("web", 2),
        ]
    );
}

#[test]
fn force_recreate_recreates_every_container() {
    let desired = web_and_db(false);
    let observed = converged(&desired);
    let options = UpOptions {
        force_recreate: true,
        ..UpOptions::default()
    };
    let recreates = up_actions(&desired, &observed, &options)
        .into_iter()
        .filter(|a| matches!(a, Action::Recreate { .. }))
        .count();
    assert_eq!(recreates, 2);
}

#[test]
fn no_recreate_keeps_diverged_containers_and_still_starts_stopped_ones() {
    let mut desired = web_and_db(true);
    let mut observed = converged(&desired);
    observed.containers[0].state = ContainerState::Exited; // db
    changed_hash(&mut desired, "db");
    changed_hash(&mut desired, "web");
    let options = UpOptions {
        no_recreate: true,
        ..UpOptions::default()
    };
    assert_eq!(up_actions(&desired, &observed, &options), vec![start("db", 1)]);
}

#[test]
fn contradicting_recreate_options_are_rejected() {
    let desired = web_and_db(false);
    let both = UpOptions {
        force_recreate: true,
        no_recreate: true,
        ..UpOptions::default()
    };
    assert_eq!(
        plan_up(&desired, &Observed::default(), &both),
        Err(PlanError::IncompatibleOptions {
            first: "force-recreate",
            second: "no-recreate"
        })
    );
    let deps = UpOptions {
        always_recreate_deps: true,
        no_recreate: true,
        ..UpOptions::default()
    };
    assert!(matches!(
        plan_up(&desired, &Observed::default(), &deps),
        Err(PlanError::IncompatibleOptions { .. })
    ));
}

#[test]
fn new_image_id_for_the_reference_recreates() {
    let desired = web_and_db(false);
    let mut observed = converged(&desired);
    observed.images.insert("img/db".into(), "sha-newer".into());
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![recreate("db", 1), start("db", 1)]);
}

#[test]
fn missing_image_label_does_not_recreate() {
    let desired = web_and_db(false);
    let mut observed = converged(&desired);
    observed.containers[0].image_id = None;
    assert!(plan_up(&desired, &observed, &UpOptions::default()).unwrap().is_empty());
}

#[test]
fn selected_service_brings_its_dependencies_only() {
    let desired = project([service("db"), depends(service("web"), "db", false), service("other")]);
    let mut observed = Observed::default();
    observed.networks.insert(NETWORK.into(), ObservedResource::default());
    observed.images = converged(&desired).images;
    let options = UpOptions {
        services: vec!["web".into()],
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(
        actions,
        vec![create("db", 1), create("web", 1), start("db", 1), start("web", 1)]
    );
}

#[test]
fn no_deps_converges_only_the_selected_service() {
    let mut desired = web_and_db(false);
    let observed = converged(&desired);
    changed_hash(&mut desired, "db");
    changed_hash(&mut desired, "web");
    let options = UpOptions {
        services: vec!["web".into()],
        no_deps: true,
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(actions, vec![recreate("web", 1), start("web", 1)]);
}

#[test]
fn always_recreate_deps_recreates_unchanged_dependencies_of_targets() {
    let mut desired = project([service("db"), depends(service("web"), "db", false), service("other")]);
    let observed = converged(&desired);
    changed_hash(&mut desired, "web");
    let options = UpOptions {
        services: vec!["web".into()],
        always_recreate_deps: true,
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(
        actions,
        vec![recreate("db", 1), recreate("web", 1), start("db", 1), start("web", 1)]
    );
}

#[test]
fn force_recreate_with_selection_spares_dependencies() {
    let desired = web_and_db(false);
    let observed = converged(&desired);
    let options = UpOptions {
        services: vec!["web".into()],
        force_recreate: true,
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(actions, vec![recreate("web", 1), start("web", 1)]);
}

#[test]
fn no_start_creates_and_recreates_without_starting() {
    let mut desired = project([service("db"), service("web")]);
    let mut observed = converged(&desired);
    observed.containers.retain(|c| c.service == "web");
    observed.containers[0].state = ContainerState::Exited;
    changed_hash(&mut desired, "web");
    let options = UpOptions {
        no_start: true,
        ..UpOptions::default()
    };
    let actions = up_actions(&desired, &observed, &options);
    assert_eq!(actions, vec![create("db", 1), recreate("web", 1)]);
}

#[test]
fn recreate_and_scale_down_use_the_timeout_option_over_stop_grace_period() {
    let mut web = replicas(service("web"), 1);
    web.stop_timeout = secs(30);
    let desired = project([web]);
    let mut observed = converged(&desired);
    observed.containers.push(running("web", 2));
    let grace = up_actions(&desired, &observed, &UpOptions::default());
    assert!(matches!(grace[0], Action::ScaleDown { timeout, .. } if timeout == secs(30)));
    let options = UpOptions {
        timeout: Some(secs(1)),
        force_recreate: true,
        ..UpOptions::default()
    };
    let forced = up_actions(&desired, &observed, &options);
    assert!(matches!(forced[0], Action::ScaleDown { timeout, .. } if timeout == secs(1)));
    assert!(matches!(forced[1], Action::Recreate { timeout, .. } if timeout == secs(1)));
}

#[test]
fn unknown_selected_service_is_an_error() {
    let options = UpOptions {
        services: vec!["nope".into()],
        ..UpOptions::default()
    };
    assert_eq!(
        plan_up(&web_and_db(false), &Observed::default(), &options),
        Err(PlanError::UnknownService { service: "nope".into() })
    );
}

#[test]
fn optional_dependency_on_a_missing_service_is_ignored_but_a_required_one_fails() {
    let mut web = depends(service("web"), "metrics", false);
    if let Some(edge) = web.depends_on.get_mut("metrics") {
        edge.required = false;
    }
    let desired = project([web.clone()]);
    let observed = converged(&desired);
    assert!(plan_up(&desired, &observed, &UpOptions::default()).unwrap().is_empty());
    let desired = project([depends(service("web"), "metrics", false)]);
    assert!(matches!(
        plan_up(&desired, &observed, &UpOptions::default()),
        Err(PlanError::UndefinedDependency { .. })
    ));
}

/// `app` takes the mounts of `data` (`volumes_from: [data]`).
fn app_with_volumes_from_data() -> Desired {
    let mut app = depends(service("app"), "data", false);
    app.volumes_from = vec!["data".into()];
    project([service("data"), app, service("web")])
}

#[test]
fn a_volumes_from_source_is_made_in_an_earlier_converge_wave() {
    let desired = app_with_volumes_from_data();
    let mut observed = converged(&desired);
    observed.containers.clear();
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(
        waves,
        vec![
            vec![create("data", 1), create("web", 1)],
            vec![create("app", 1)],
            vec![start("data", 1), start("web", 1)],
            vec![start("app", 1)],
        ]
    );
}

#[test]
fn a_recreated_volumes_from_source_recreates_the_service_after_it() {
    let mut desired = app_with_volumes_from_data();
    let observed = converged(&desired);
    changed_hash(&mut desired, "data");
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(
        waves,
        vec![
            vec![recreate("data", 1)],
            vec![recreate("app", 1)],
            vec![start("data", 1)],
            vec![start("app", 1)],
        ]
    );
}
