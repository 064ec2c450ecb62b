//! `berth watch`: the development loop. Host files covered by a service's
//! `develop.watch` rules are mirrored into its running containers (or
//! restart, rebuild, exec), and the stack's own files reload the project.
//!
//! - [`rules`]: a rule compiled into a [`Trigger`] — which paths it
//!   covers, where they land, which rule wins (pure);
//! - [`batch`]: bursts of events into one batch, a batch into each
//!   service's work (pure);
//! - [`watcher`]: inotify through `notify`, into changed paths;
//! - [`sync`]: writing into a container's filesystem.
//!
//! The session (engine calls, restarts, status lines, logs) is the CLI's:
//! `crate::cli::compose` (`watch.rs`).

pub mod batch;
pub mod rules;
pub mod sync;
pub mod watcher;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use batch::{plan, Change, Debouncer, Plan, ServiceBatch};
pub use rules::{RuleError, Trigger};
pub use sync::{mirror, SyncReport};
pub use watcher::{Watcher, WatcherError};

use crate::build::ignore::IgnoreRules;
use crate::spec::model::Project;

/// The triggers of `services` (all services with rules when empty).
pub fn triggers(project: &Project, services: &[String]) -> Result<Vec<Trigger>, RuleError> {
    let mut out = Vec::new();
    for (name, service) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(develop) = &service.develop else {
            continue;
        };
        let context = service
            .build
            .as_ref()
            .and_then(|b| b.context.as_deref())
            .map(PathBuf::from)
            .and_then(|dir| context_ignore(&dir).map(|rules| (dir, rules)));
        for (order, rule) in develop.watch.iter().enumerate() {
            out.push(Trigger::new(name, order, rule, context.clone())?);
        }
    }
    Ok(out)
}

/// The build context's `.dockerignore`: what the image never sees is
/// not worth a sync or a rebuild either.
fn context_ignore(dir: &Path) -> Option<IgnoreRules> {
    let text = std::fs::read_to_string(dir.join(".dockerignore")).ok()?;
    Some(IgnoreRules::parse(&text))
}

/// The files whose edit reloads the project: the stack files, the
/// interpolation files (`.env` or the `--env-file`s, absolute) and every
/// service's `env_file` (absolute once loaded).
pub fn stack_files(files: &[PathBuf], env_files: &[PathBuf], project: &Project) -> BTreeSet<PathBuf> {
    let mut out: BTreeSet<PathBuf> = files.iter().chain(env_files).map(|f| rules::clean(f)).collect();
    for service in project.services.values() {
        out.extend(service.env_file.iter().map(|e| rules::clean(Path::new(&e.path))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_of_selected_services_and_stack_files() {
        let project: Project = serde_yaml::from_str(
            r#"
name: demo
services:
  web:
    image: busybox
    env_file: [/p/web.env]
    develop:
      watch:
        - {path: /p/www, action: sync, target: /www}
        - {path: /p/conf, action: restart}
  db:
    image: busybox
"#,
        )
        .unwrap();
        assert_eq!(triggers(&project, &[]).unwrap().len(), 2);
        assert!(triggers(&project, &["db".to_string()]).unwrap().is_empty());
        let files = stack_files(
            &[PathBuf::from("/p/compose.yaml")],
            &[PathBuf::from("/p/.env")],
            &project,
        );
        let expected: BTreeSet<PathBuf> = ["/p/compose.yaml", "/p/.env", "/p/web.env"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(files, expected);
    }
}
