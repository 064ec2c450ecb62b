//! `plan_up` resources: image pulls and builds, networks, volumes.

use super::*;

#[test]
fn pull_policy_missing_pulls_only_absent_images_once_per_reference() {
    let mut api = service("api");
    api.image = "img/web".into();
    let desired = project([service("web"), api, service("db")]);
    let mut observed = converged(&desired);
    observed.containers.clear();
    observed.images.remove("img/web");
    let waves = up_waves(&desired, &observed, &UpOptions::default());
    assert_eq!(
        waves[0],
        vec![Action::PullImage {
            service: "api".into(),
            image: "img/web".into()
        }]
    );
}

#[test]
fn pull_policy_never_fails_on_a_missing_image_and_accepts_a_present_one() {
    let mut web = service("web");
    web.pull_policy = PullPolicy::Never;
    let desired = project([web]);
    let mut observed = converged(&desired);
    assert!(plan_up(&desired, &observed, &UpOptions::default()).unwrap().is_empty());
    observed.images.clear();
    assert_eq!(
        plan_up(&desired, &observed, &UpOptions::default()),
        Err(PlanError::ImageNotPresent {
            service: "web".into(),
            image: "img/web".into()
        })
    );
}

#[test]
fn pull_policy_always_pulls_even_a_present_image() {
    let mut web = service("web");
    web.pull_policy = PullPolicy::Always;
    let desired = project([web]);
    let observed = converged(&desired);
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(
        actions,
        vec![Action::PullImage {
            service: "web".into(),
            image: "img/web".into()
        }]
    );
}

#[test]
fn missing_image_of_a_buildable_service_is_built() {
    let mut web = service("web");
    web.buildable = true;
    let mut tool = service("tool");
    tool.pull_policy = PullPolicy::Build;
    let desired = project([web, tool]);
    let mut observed = converged(&desired);
    observed.images.clear();
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    let build = |s: &str| Action::BuildImage {
        service: s.into(),
        image: format!("img/{s}"),
    };
    assert_eq!(actions, vec![build("tool"), build("web")]);
}

#[test]
fn networks_and_volumes_are_ensured_unless_present_and_external_ones_must_exist() {
    let mut web = service("web");
    web.networks.push("shared".into());
    web.volumes = vec!["p_data".into()];
    let mut desired = project([web]);
    desired.networks.push(ProjectResource {
        name: "shared".into(),
        external: true,
    });
    desired.volumes.push(ProjectResource {
        name: "p_data".into(),
        external: false,
    });
    let mut observed = converged(&desired);
    observed.volumes.clear();
    let actions = up_actions(&desired, &observed, &UpOptions::default());
    assert_eq!(actions, vec![Action::EnsureVolume { name: "p_data".into() }]);
    observed.networks.remove("shared");
    assert_eq!(
        plan_up(&desired, &observed, &UpOptions::default()),
        Err(PlanError::ExternalNetworkMissing { name: "shared".into() })
    );
}
