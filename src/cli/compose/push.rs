//! `berth push [SERVICE…]`: pushes the images of services that are built
//! here (a `build:` section): `image:` and the `build.tags`, as docker
//! compose does. A service without `image:` has nowhere to go and is
//! skipped; services that only name an image are someone else's to push.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::{load_project, Cli};
use crate::image::registry::{Progress, ProgressMode, Pusher};
use crate::spec::model::Project;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Report a failed push and go on with the next image.
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Print only the pushed images' names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

pub fn push(cli: &Cli, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_project(cli, false)?;
    let targets = push_targets(&loaded.project, &args.services)?;
    let pusher = Pusher::new(&Root::new(&cli.root))?;
    let progress = Progress::new(ProgressMode::detect(args.quiet));
    for target in targets {
        let (service, image) = match target {
            Target::Image { service, image } => (service, image),
            Target::Skipped { service } => {
                progress.line(&format!(
                    "Skipping {service}: it has a build section but no image: to push to"
                ));
                continue;
            }
        };
        progress.line(&format!("Pushing {service}: {image}"));
        match pusher.push(&image, &image, &progress) {
            Ok(_) => {}
            // Reported and passed over as asked; the exit status stays 0,
            // as with docker compose.
            Err(error) if args.ignore_push_failures => {
                eprintln!("WARNING: pushing {service} failed: {:#}", anyhow::Error::from(error));
            }
            Err(error) => return Err(anyhow::Error::from(error).context(format!("pushing service {service}"))),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One thing `push` does for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Image { service: String, image: String },
    Skipped { service: String },
}

/// What to push, in service order: every `image:` and `build.tags` of the
/// chosen services (all when none is named) that have a `build:` section.
fn push_targets(project: &Project, services: &[String]) -> anyhow::Result<Vec<Target>> {
    for name in services {
        if !project.services.contains_key(name) {
            bail!("no such service: {name}");
        }
    }
    let mut targets = Vec::new();
    for (name, service) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(build) = &service.build else { continue };
        let Some(image) = &service.image else {
            targets.push(Target::Skipped { service: name.clone() });
            continue;
        };
        for image in std::iter::once(image).chain(&build.tags) {
            let target = Target::Image {
                service: name.clone(),
                image: image.clone(),
            };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn pushes_built_images_and_their_tags_only() {
        let project = project(
            "name: p\nservices:\n  web:\n    image: r:5000/web:1\n    build:\n      context: .\n      tags: [r:5000/web:latest]\n  \
             db:\n    image: postgres\n  tool:\n    build:\n      context: .\n",
        );
        let image = |service: &str, image: &str| Target::Image {
            service: service.into(),
            image: image.into(),
        };
        assert_eq!(
            push_targets(&project, &[]).unwrap(),
            vec![
                Target::Skipped { service: "tool".into() },
                image("web", "r:5000/web:1"),
                image("web", "r:5000/web:latest"),
            ]
        );
        assert_eq!(push_targets(&project, &["db".into()]).unwrap(), vec![]);
        assert!(push_targets(&project, &["nope".into()]).is_err());
    }
}
