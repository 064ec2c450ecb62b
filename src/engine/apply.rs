//! Runs a [`Plan`]: wave after wave, the actions of a wave in parallel,
//! each a small call into the runtime, network, volume and image layers.
//! A failed action stops the plan after its wave; what was made before
//! stays (the next `up` converges, `down` removes it), and what the failed
//! action itself made is undone by it. Waiting on dependencies and health
//! is `super::waits`'.

use std::time::Duration;

use super::plan::{Action, Desired, Plan};
use super::translate::{self, Replica};
use super::volumes_from::{self, VolumesFrom};
pub use super::waits::wait_until_healthy;
use super::{health, labels, restart};
use crate::image::registry::{Progress, PullOptions, Puller};
use crate::image::ImageStore;
use crate::network::ipam::Owner;
use crate::network::provision;
use crate::network::NetworkStore;
use crate::runtime::config::{ContainerConfig, MountKind, Status};
use crate::runtime::container;
use crate::runtime::{create, lifecycle, ports};
use crate::spec::model::Project;
use crate::store::Root;
use crate::volume::VolumeStore;

/// Progress, as compose prints it: ` Container demo-web-1  Started`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// `Container`, `Network`, `Volume` or `Image`.
    pub kind: String,
    pub name: String,
    pub status: String,
}

impl Event {
    pub fn new(kind: &str, name: &str, status: &str) -> Self {
        Event {
            kind: kind.to_string(),
            name: name.to_string(),
            status: status.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("service {service:?}: {message}")]
    Service { service: String, message: String },
    #[error("container {container}: {message}")]
    Container { container: String, message: String },
    #[error("network {network}: {message}")]
    Network { network: String, message: String },
    #[error("volume {volume}: {message}")]
    Volume { volume: String, message: String },
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    /// A device request that cannot be met; the message names the service.
    #[error("{0}")]
    Devices(String),
    #[error("dependency failed to start: {0}")]
    Dependency(String),
}

/// How a one-off container (`compose run`) is removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneOffRemoval {
    /// Its monitor removes it when it exits (detached `--rm`).
    pub by_monitor: bool,
    /// It is removed when it exits, by its monitor or the waiting `run`.
    pub on_exit: bool,
}

/// Everything an action may need.
pub struct Applier<'a> {
    pub root: &'a Root,
    pub project: &'a Project,
    pub desired: &'a Desired,
    pub events: &'a (dyn Fn(Event) + Sync),
    /// `down -v`: remove the containers' anonymous volumes too.
    pub remove_volumes: bool,
}

impl Applier<'_> {
    /// Runs the plan; the first failing wave ends it with every error of
    /// that wave.
    pub fn run(&self, plan: &Plan) -> Result<(), Vec<ApplyError>> {
        for wave in &plan.waves {
            let errors: Vec<ApplyError> = std::thread::scope(|scope| {
                let handles: Vec<_> = wave
                    .actions
                    .iter()
                    .map(|action| scope.spawn(move || self.action(action)))
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| match h.join() {
                        Ok(result) => result.err(),
                        Err(_) => Some(ApplyError::Dependency("an action panicked".into())),
                    })
                    .collect()
            });
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        Ok(())
    }

    pub(super) fn event(&self, kind: &str, name: &str, status: &str) {
        (self.events)(Event::new(kind, name, status));
    }

    fn action(&self, action: &Action) -> Result<(), ApplyError> {
        match action {
            Action::EnsureNetwork { name } => self.ensure_network(name),
            Action::EnsureVolume { name } => self.ensure_volume(name),
            Action::PullImage { service, image } => self.pull(service, image),
            Action::BuildImage { service, image } => self.build(service, image, false),
            Action::Create { service, number, name } => self.create(service, *number, name, Vec::new()),
            Action::Start { service, container } => self.start(service, container),
            Action::Stop { container, timeout } => self.stop(container, *timeout),
            Action::Remove { container } => self.remove(container, self.remove_volumes),
            Action::Recreate {
                service,
                container,
                number,
                name,
                timeout,
            } => self.recreate(service, container, *number, name, *timeout),
            Action::RemoveOrphan { container, timeout } | Action::ScaleDown { container, timeout, .. } => {
                self.stop(container, *timeout)?;
                self.remove(container, true)
            }
            Action::RemoveNetwork { name } => self.remove_network(name),
            Action::RemoveVolume { name } => self.remove_volume(name),
        }
    }

    fn ensure_network(&self, name: &str) -> Result<(), ApplyError> {
        let err = |message: String| ApplyError::Network {
            network: name.to_string(),
            message,
        };
        let (key, spec) = self
            .project
            .networks
            .iter()
            .find(|(key, _)| translate::network_name(self.project, key) == name)
            .ok_or_else(|| err("not in the project".into()))?;
        let mut spec = spec.clone();
        spec.labels
            .0
            .extend(labels::resource(&self.project.name, labels::NETWORK, key));
        self.event("Network", name, "Creating");
        provision::create_network(self.root, name, &spec, false).map_err(|e| err(error_chain(&e)))?;
        self.event("Network", name, "Created");
        Ok(())
    }

    fn ensure_volume(&self, name: &str) -> Result<(), ApplyError> {
        let err = |message: String| ApplyError::Volume {
            volume: name.to_string(),
            message,
        };
        let (key, spec) = self
            .project
            .volumes
            .iter()
            .find(|(key, _)| translate::volume_name(self.project, key) == name)
            .ok_or_else(|| err("not in the project".into()))?;
        let mut volume_labels = spec.labels.0.clone();
        volume_labels.extend(labels::resource(&self.project.name, labels::VOLUME, key));
        let store = VolumeStore::open(self.root).map_err(|e| err(error_chain(&e)))?;
        let locked = store.lock().map_err(|e| err(error_chain(&e)))?;
        locked
            .create(
                Some(name),
                spec.driver.as_deref().unwrap_or("local"),
                spec.driver_opts.0.clone(),
                volume_labels,
            )
            .map_err(|e| err(error_chain(&e)))?;
        self.event("Volume", name, "Created");
        Ok(())
    }

    fn pull(&self, service: &str, image: &str) -> Result<(), ApplyError> {
        let err = |message: String| ApplyError::Service {
            service: service.to_string(),
            message: format!("pulling {image}: {message}"),
        };
        self.event("Image", image, "Pulling");
        let puller = Puller::new(self.root).map_err(|e| err(error_chain(&e)))?;
        puller
            .pull(image, &PullOptions::default(), &Progress::quiet())
            .map_err(|e| err(error_chain(&e)))?;
        self.event("Image", image, "Pulled");
        Ok(())
    }

    /// Builds a service's image from its `build:` section, tagged `image`
    /// (and the section's `tags`).
    pub fn build(&self, service: &str, image: &str, no_cache: bool) -> Result<(), ApplyError> {
        let err = |message: String| ApplyError::Service {
            service: service.to_string(),
            message,
        };
        let build = self
            .project
            .services
            .get(service)
            .and_then(|s| s.build.as_ref())
            .ok_or_else(|| err(format!("image {image} is missing and the service has no build section")))?;
        let request = build_request(build, image, no_cache).map_err(err)?;
        self.event("Image", image, "Building");
        crate::build::build_image(self.root, &request).map_err(|e| err(format!("building {image}: {}", e.chain())))?;
        self.event("Image", image, "Built");
        Ok(())
    }

    /// Creates replica `number`; `reuse` are anonymous volumes of a
    /// replaced container (target → volume), kept as compose keeps them.
    fn create(&self, service: &str, number: u32, name: &str, reuse: Vec<(String, String)>) -> Result<(), ApplyError> {
        self.create_container(service, number, name, reuse, None)
    }

    /// Creates a one-off container of `service` (`berth run`) through the
    /// same path as replicas, so it gets the service's networks, volumes,
    /// devices and limits. As compose's `run` without `--use-aliases`, it
    /// gets no network aliases: the service name keeps resolving to the
    /// service's replicas only.
    pub fn create_oneoff(&self, service: &str, name: &str, removal: OneOffRemoval) -> Result<(), ApplyError> {
        self.create_container(service, 1, name, Vec::new(), Some(removal))
    }

    /// `oneoff`: `None` for a replica, how it is removed for a one-off.
    fn create_container(
        &self,
        service: &str,
        number: u32,
        name: &str,
        reuse: Vec<(String, String)>,
        oneoff: Option<OneOffRemoval>,
    ) -> Result<(), ApplyError> {
        let err = |message: String| ApplyError::Service {
            service: service.to_string(),
            message,
        };
        let desired = self
            .desired
            .services
            .get(service)
            .ok_or_else(|| err("not in the project".into()))?;
        let store = ImageStore::open(self.root).map_err(|e| err(error_chain(&e)))?;
        let image = store
            .resolve(&desired.image)
            .map_err(|e| err(format!("image {}: {}", desired.image, error_chain(&e))))?;
        let info = image.runtime_info(&desired.image);
        let replica = Replica {
            project: self.project,
            service,
            number,
            name,
            image_id: &image.id,
            config_hash: &desired.config_hash,
            oneoff: oneoff.is_some(),
        };
        let mut spec = translate::container_spec(&replica).map_err(|e| err(e.to_string()))?;
        if let Some(removal) = oneoff {
            spec.options.auto_remove = removal.by_monitor;
            spec.options.removed_on_exit = removal.on_exit;
            for join in &mut spec.networks {
                join.aliases.clear();
            }
        }
        let compose_service = &self.project.services[service];
        let image_health = crate::image::Digest::parse(&image.id)
            .and_then(|digest| store.blobs().read_blob(&digest))
            .ok()
            .and_then(|config| health::ImageHealthcheck::from_config(&config));
        let healthcheck = health::config_for(compose_service, image_health.as_ref());
        let restart_policy = restart::policy_for(compose_service).map_err(err)?;
        let mut options = spec.options;
        self.add_volumes_from(&spec.volumes_from, &mut options).map_err(err)?;
        for file in &spec.generated_files {
            let path = write_generated(self.root, &self.project.name, name, file)
                .map_err(|e| err(format!("writing {} {:?}: {e}", file.kind, file.name)))?;
            options.volumes.push(format!("{}:{}:ro", path.display(), file.target));
        }
        reuse_anonymous(&mut options.volumes, reuse);
        // Devices first: a missing GPU fails before anything is allocated.
        let devices = crate::devices::host_nodes::device_nodes(&spec.devices).map_err(|e| err(error_chain(&e)))?;
        let device_edits = crate::devices::edits_for_service(service, compose_service, &crate::devices::device_root())
            .map_err(|e| ApplyError::Devices(error_chain(&e)))?;
        self.event("Container", name, "Creating");
        let id = container::new_id();
        let owner = Owner {
            container_id: id.clone(),
            container_name: name.to_string(),
        };
        let release = || {
            let _ = NetworkStore::new(self.root).release_all_for(&id);
        };
        for (index, join) in spec.networks.iter().enumerate() {
            match provision::attach_new_container(
                self.root,
                &join.network,
                join.ipv4_address,
                &join.aliases,
                &owner,
                index,
            ) {
                Ok(attachment) => options.network_attachments.push(attachment),
                Err(e) => {
                    release();
                    return Err(err(error_chain(&e)));
                }
            }
        }
        let result = (|| {
            let published = ports::publish(self.root, &spec.ports).map_err(|e| error_chain(&e))?;
            let requests = create::volume_requests(&options, &info).map_err(|e| e.to_string())?;
            let volumes = VolumeStore::open(self.root).map_err(|e| error_chain(&e))?;
            let locked = volumes.lock().map_err(|e| error_chain(&e))?;
            let (sources, anonymous) = locked.resolve_for_container(&requests).map_err(|e| error_chain(&e))?;
            options.volume_sources = sources;
            let built = create::build(&options, &info, &id, name, devices, &crate::rfc3339::now())
                .map(|config| {
                    let mut config = ContainerConfig {
                        ports: published,
                        healthcheck,
                        restart: restart_policy,
                        ..config
                    };
                    if let Some(edits) = &device_edits {
                        crate::devices::apply_to_config(&mut config, edits);
                    }
                    config
                })
                .map_err(|e| e.to_string());
            let created = built.and_then(|config| lifecycle::create(self.root, config).map_err(|e| e.to_string()));
            if created.is_err() {
                for volume in &anonymous {
                    let _ = locked.remove(volume, true);
                }
            }
            created
        })();
        match result {
            Ok(_) => {
                self.event("Container", name, "Created");
                Ok(())
            }
            Err(message) => {
                release();
                Err(err(message))
            }
        }
    }

    /// `volumes_from`: each source container's mounts as they are now —
    /// its anonymous volumes by their names, so both mount the same one.
    fn add_volumes_from(&self, entries: &[VolumesFrom], options: &mut create::CreateOptions) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let containers = container::list(self.root).map_err(|e| error_chain(&e))?;
        let configs: Vec<&ContainerConfig> = containers.iter().map(|c| &c.config).collect();
        for entry in entries {
            let source = volumes_from::source_container(&configs, &self.project.name, entry)
                .ok_or_else(|| format!("volumes_from {:?}: {}", entry.entry, missing_source(entry)))?;
            let shared = volumes_from::shared_mounts(&source.mounts, entry.read_only)
                .map_err(|reason| format!("volumes_from {:?}: {reason}", entry.entry))?;
            volumes_from::add_shared(&mut options.volumes, &options.tmpfs, shared);
        }
        Ok(())
    }

    fn recreate(&self, service: &str, old: &str, number: u32, name: &str, timeout: Duration) -> Result<(), ApplyError> {
        self.event("Container", old, "Recreate");
        let reuse = match container::find(self.root, old) {
            Ok(c) => anonymous_volumes(self.root, &c.config),
            Err(_) => Vec::new(),
        };
        self.stop(old, timeout)?;
        self.remove(old, false)?;
        self.create(service, number, name, reuse)?;
        self.event("Container", name, "Recreated");
        Ok(())
    }

    fn start(&self, service: &str, name: &str) -> Result<(), ApplyError> {
        self.wait_for_dependencies(service)?;
        let err = |message: String| ApplyError::Container {
            container: name.to_string(),
            message,
        };
        let c = container::find(self.root, name).map_err(|e| err(e.to_string()))?;
        self.event("Container", name, "Starting");
        if let Some(config) = &c.config.healthcheck {
            let _ = config;
            // A fresh run starts with a fresh health state.
            let _ = std::fs::remove_file(health::state_path(&c));
        }
        let _ = std::fs::remove_file(c.dir.join(super::supervisor::RESTART_FILE));
        lifecycle::start(self.root, &c).map_err(|e| err(e.to_string()))?;
        self.event("Container", name, "Started");
        Ok(())
    }

    fn stop(&self, name: &str, timeout: Duration) -> Result<(), ApplyError> {
        let Ok(c) = container::find(self.root, name) else {
            return Ok(());
        };
        let running = c
            .state()
            .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused));
        if running {
            self.event("Container", name, "Stopping");
        }
        lifecycle::stop(self.root, &c, timeout).map_err(|e| ApplyError::Container {
            container: name.to_string(),
            message: e.to_string(),
        })?;
        if running {
            self.event("Container", name, "Stopped");
        }
        Ok(())
    }

    fn remove(&self, name: &str, with_volumes: bool) -> Result<(), ApplyError> {
        let Ok(c) = container::find(self.root, name) else {
            return Ok(());
        };
        self.event("Container", name, "Removing");
        let result = if with_volumes {
            lifecycle::remove_with_volumes(self.root, &c, true)
        } else {
            lifecycle::remove(self.root, &c, true)
        };
        result.map_err(|e| ApplyError::Container {
            container: name.to_string(),
            message: e.to_string(),
        })?;
        self.event("Container", name, "Removed");
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), ApplyError> {
        self.event("Network", name, "Removing");
        provision::remove_network(self.root, name).map_err(|e| ApplyError::Network {
            network: name.to_string(),
            message: error_chain(&e),
        })?;
        self.event("Network", name, "Removed");
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<(), ApplyError> {
        let err = |e: crate::volume::VolumeError| ApplyError::Volume {
            volume: name.to_string(),
            message: error_chain(&e),
        };
        let store = VolumeStore::open(self.root).map_err(err)?;
        store.lock().map_err(err)?.remove(name, false).map_err(err)?;
        self.event("Volume", name, "Removed");
        Ok(())
    }
}

/// compose `build:` → a build request; what berth cannot honour is refused
/// by name rather than ignored.
pub fn build_request(
    build: &crate::spec::model::build::Build,
    image: &str,
    no_cache: bool,
) -> Result<crate::build::BuildRequest, String> {
    let refused = [
        ("additional_contexts", !build.additional_contexts.0.is_empty()),
        ("ssh", build.ssh.is_some()),
        ("secrets", build.secrets.is_some()),
        ("platforms", build.platforms.len() > 1),
        (
            "network other than host or default",
            build.network.as_deref().is_some_and(|n| n != "host" && n != "default"),
        ),
    ];
    if let Some((key, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(format!("build.{key} is not supported by berth (it builds with its own runtime, for the host's platform, on the host network)"));
    }
    let context = build.context.clone().unwrap_or_else(|| ".".into());
    let mut tags = vec![image.to_string()];
    tags.extend(build.tags.iter().cloned());
    Ok(crate::build::BuildRequest {
        context: context.into(),
        dockerfile: build.dockerfile.as_ref().map(Into::into),
        dockerfile_inline: build.dockerfile_inline.clone(),
        args: build.args.0.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        target: build.target.clone(),
        tags,
        labels: build.labels.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        no_cache: no_cache || build.no_cache.unwrap_or(false),
        pull: build.pull.unwrap_or(false),
        quiet: true,
    })
}

/// Where a project keeps the files berth writes for it (inline configs and
/// secrets); removed by a whole-project `down`.
pub fn project_dir(root: &Root, project: &str) -> std::path::PathBuf {
    root.path().join("projects").join(project)
}

/// Writes an inline config or secret for container `container`, with its
/// mode and owner, and returns its path.
fn write_generated(
    root: &Root,
    project: &str,
    container: &str,
    file: &translate::GeneratedFile,
) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = project_dir(root, project).join(container);
    crate::store::create_private_dir(&dir)?;
    // The container reads it through the bind mount: its directory must be
    // searchable, the file readable per its mode.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
    let path = dir.join(format!("{}-{}", file.kind, file.name));
    crate::store::write_atomic(&path, file.content.as_bytes())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    if file.uid.is_some() || file.gid.is_some() {
        std::os::unix::fs::chown(&path, file.uid, file.gid)?;
    }
    Ok(path)
}

/// compose's rule for a recreated container's anonymous volumes (target →
/// volume of the old one): each takes the place of an anonymous volume
/// the new one declares at that target, or is added when it declares
/// nothing there (an image `VOLUME`); a named volume or bind at the target
/// wins.
fn reuse_anonymous(volumes: &mut Vec<String>, reuse: Vec<(String, String)>) {
    let trimmed = |t: &str| t.trim_end_matches('/').to_string();
    for (target, volume) in reuse {
        let at = volumes
            .iter()
            .position(|v| trimmed(volumes_from::volume_target(v)) == trimmed(&target));
        match at {
            None => volumes.push(format!("{volume}:{target}")),
            Some(index) => {
                let spec = &volumes[index];
                let first = spec.split(':').next().unwrap_or_default();
                let anonymous = first.starts_with('/') && volumes_from::volume_target(spec) == first;
                if anonymous {
                    volumes[index] = match spec.split_once(':') {
                        Some((_, mode)) => format!("{volume}:{target}:{mode}"),
                        None => format!("{volume}:{target}"),
                    };
                }
            }
        }
    }
}

/// Why a `volumes_from` source was not found.
pub fn missing_source(entry: &VolumesFrom) -> String {
    match &entry.source {
        volumes_from::Source::Service(service) => {
            format!("service {service:?} has no container (is it scaled to 0?)")
        }
        volumes_from::Source::Container(name) => format!("no such container {name:?}"),
    }
}

/// The anonymous volumes of a container: target → volume name.
fn anonymous_volumes(root: &Root, config: &ContainerConfig) -> Vec<(String, String)> {
    let Ok(store) = VolumeStore::open(root) else {
        return Vec::new();
    };
    config
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume)
        .filter_map(|m| {
            let volume = m.volume.as_ref()?;
            store
                .get(volume)
                .ok()
                .filter(|v| v.anonymous)
                .map(|_| (m.target.clone(), volume.clone()))
        })
        .collect()
}

/// An error with its sources, one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreated_containers_anonymous_volumes_are_reused() {
        let mut volumes: Vec<String> = ["/anon", "/ro:ro", "named:/data", "/host:/bind", "src:/shared:nocopy"]
            .map(String::from)
            .to_vec();
        let reuse = [
            ("/anon", "v1"),
            ("/ro", "v2"),
            ("/data", "v3"),
            ("/bind", "v4"),
            ("/shared", "src"),
            ("/image-volume", "v5"),
        ]
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .to_vec();
        reuse_anonymous(&mut volumes, reuse);
        assert_eq!(
            volumes,
            vec![
                "v1:/anon",
                "v2:/ro:ro",
                "named:/data",
                "/host:/bind",
                "src:/shared:nocopy",
                "v5:/image-volume"
            ]
        );
    }

    #[test]
    fn build_sections_berth_cannot_honour_are_refused_by_name() {
        let mut build = crate::spec::model::build::Build {
            context: Some("/ctx".into()),
            ..Default::default()
        };
        let request = build_request(&build, "app:1", false).unwrap();
        assert_eq!(request.tags, vec!["app:1"]);
        build.ssh = Some(serde_yaml::Value::String("default".into()));
        let err = build_request(&build, "app:1", false).unwrap_err();
        assert!(err.contains("build.ssh"), "{err}");
    }
}
