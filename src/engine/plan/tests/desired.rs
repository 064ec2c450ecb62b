//! `Desired::from_project`: replicas, names, hashes, resources.

use super::*;
use crate::spec::hash::service_hash;
use crate::spec::model::{Network, Project, Service, Volume};

fn parse_service(yaml: &str) -> Service {
    serde_yaml::from_str(yaml).unwrap()
}

/// Services from `(name, yaml)` pairs, with resolved resource names.
fn compose_project(services: &[(&str, &str)]) -> Project {
    let mut project = Project {
        name: "p".into(),
        ..Project::default()
    };
    for (name, yaml) in services {
        project.services.insert((*name).into(), parse_service(yaml));
    }
    project.networks.insert(
        "default".into(),
        Network {
            name: Some("p_default".into()),
            ..Network::default()
        },
    );
    project.networks.insert(
        "outside".into(),
        Network {
            name: Some("outside".into()),
            external: true,
            ..Network::default()
        },
    );
    project.volumes.insert(
        "data".into(),
        Volume {
            name: Some("p_data".into()),
            ..Volume::default()
        },
    );
    project
}

#[test]
fn replicas_follow_scale_option_then_deploy_then_scale_then_one() {
    let project = compose_project(&[
        ("a", "image: x\nscale: 2\ndeploy: {replicas: 3}"),
        ("b", "image: x\nscale: 2"),
        ("c", "image: x"),
        ("d", "image: x\nscale: 2"),
    ]);
    let scale = BTreeMap::from([("d".to_string(), 5)]);
    let desired = Desired::from_project(&project, &scale).unwrap();
    let replicas: Vec<u64> = desired.services.values().map(|s| s.replicas).collect();
    assert_eq!(replicas, [3, 2, 1, 5]);
}

#[test]
fn services_carry_hash_image_names_dependencies_and_resources() {
    let project = compose_project(&[
        (
            "db",
            "image: postgres\nvolumes: [{type: volume, source: data, target: /var/lib}]\nstop_grace_period: 30s",
        ),
        (
            "web",
            "build: .\nnetworks: [default, outside]\ndepends_on: {db: {condition: service_healthy, restart: true}}",
        ),
    ]);
    let desired = Desired::from_project(&project, &BTreeMap::new()).unwrap();
    let db = &desired.services["db"];
    assert_eq!(db.config_hash, service_hash(&project.services["db"]));
    assert_eq!(db.image, "postgres");
    assert_eq!(db.volumes, ["p_data"]);
    assert_eq!(db.stop_timeout, secs(30));
    let web = &desired.services["web"];
    assert_eq!(web.image, "p-web", "built images are tagged <project>-<service>");
    assert!(web.buildable);
    assert_eq!(web.networks, ["p_default", "outside"]);
    assert_eq!(web.stop_timeout, DEFAULT_STOP_TIMEOUT);
    assert_eq!(
        web.depends_on["db"],
        DesiredDependency {
            condition: Condition::ServiceHealthy,
            restart: true,
            required: true
        }
    );
    assert_eq!(web.container_name_for("p", 2), "p-web-2");
    assert!(desired.network_is_external("outside"));
    assert!(!desired.network_is_external("p_default"));
}

#[test]
fn scale_of_an_unknown_service_or_a_named_container_is_rejected() {
    let project = compose_project(&[("web", "image: x\ncontainer_name: front")]);
    let unknown = BTreeMap::from([("nope".to_string(), 2)]);
    assert_eq!(
        Desired::from_project(&project, &unknown),
        Err(PlanError::UnknownService { service: "nope".into() })
    );
    let twice = BTreeMap::from([("web".to_string(), 2)]);
    assert!(matches!(
        Desired::from_project(&project, &twice),
        Err(PlanError::ContainerNameWithReplicas { .. })
    ));
}

#[test]
fn pull_policy_values_map_to_the_planner_policies() {
    assert_eq!(PullPolicy::from_compose(Some("always")), PullPolicy::Always);
    assert_eq!(PullPolicy::from_compose(Some("never")), PullPolicy::Never);
    assert_eq!(PullPolicy::from_compose(Some("build")), PullPolicy::Build);
    assert_eq!(PullPolicy::from_compose(Some("daily")), PullPolicy::Missing);
    assert_eq!(PullPolicy::from_compose(None), PullPolicy::Missing);
}
