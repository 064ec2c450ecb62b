//! Bursts of file events into batches, and a batch into what to do per
//! service. Pure: the clock is passed in, the filesystem is not touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::rules::{syncs, winner, Trigger};
use crate::spec::model::lifecycle::ServiceHook;
use crate::spec::model::WatchAction;

/// Quiet time that ends a burst: an editor's save (write, rename,
/// chmod) or a `git checkout` of many files arrives as events a few
/// milliseconds apart, and must become one sync and at most one restart.
pub const QUIET: Duration = Duration::from_millis(50);

/// A burst that never goes quiet (a build writing into the tree) is cut
/// here, so changes still reach the container.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// Collects changed paths until the burst is over.
#[derive(Debug, Default)]
pub struct Debouncer {
    pending: BTreeSet<PathBuf>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debouncer {
    pub fn push(&mut self, path: PathBuf, now: Instant) {
        self.pending.insert(path);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// How long until the batch is due (zero: now); `None` when empty.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        let (first, last) = (self.first?, self.last?);
        let deadline = (last + QUIET).min(first + MAX_WAIT);
        Some(deadline.saturating_duration_since(now))
    }

    pub fn due(&self, now: Instant) -> bool {
        self.wait(now).is_some_and(|w| w.is_zero())
    }

    /// The batch, each path once, in order; the debouncer starts over.
    pub fn take(&mut self) -> Vec<PathBuf> {
        self.first = None;
        self.last = None;
        std::mem::take(&mut self.pending).into_iter().collect()
    }
}

/// One host path to mirror at a path in the container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub host: PathBuf,
    pub target: String,
}

/// What one batch does to one service, in this order: sync the changes,
/// restart once, then run each exec; or, when any path wants a rebuild,
/// only the rebuild (the new image and container carry every change).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceBatch {
    pub service: String,
    pub changes: Vec<Change>,
    pub restart: bool,
    pub rebuild: bool,
    pub execs: Vec<ServiceHook>,
}

/// A batch decided: whether the stack's own files changed (reload the
/// project first), then each service's work.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub reload: bool,
    pub services: Vec<ServiceBatch>,
}

/// Decides a batch. Each path goes to the winning rule of each service
/// (see [`winner`]); per service the strongest action wins: rebuild over
/// restart over exec over a plain sync. `initial` marks the start-up
/// sync, which copies files but restarts and runs nothing.
pub fn plan(paths: &[PathBuf], triggers: &[Trigger], stack_files: &BTreeSet<PathBuf>, initial: bool) -> Plan {
    let mut by_service: BTreeMap<&str, Vec<&Trigger>> = BTreeMap::new();
    for t in triggers {
        by_service.entry(t.service.as_str()).or_default().push(t);
    }
    let reload = paths.iter().any(|p| stack_files.contains(p));
    let mut services = Vec::new();
    for (service, own) in by_service {
        let mut batch = ServiceBatch {
            service: service.to_string(),
            ..ServiceBatch::default()
        };
        let mut exec_rules = BTreeSet::new();
        for path in paths {
            let Some(rule) = winner(own.iter().copied(), path) else {
                continue;
            };
            if initial && !(syncs(rule.action) && rule.initial_sync) {
                continue;
            }
            match rule.action {
                WatchAction::Rebuild => batch.rebuild = true,
                WatchAction::Restart => batch.restart = true,
                WatchAction::SyncRestart => batch.restart = true,
                WatchAction::SyncExec => {
                    exec_rules.insert(rule.order);
                }
                WatchAction::Sync => {}
            }
            if syncs(rule.action) {
                if let Some(target) = rule.target_for(path) {
                    batch.changes.push(Change {
                        host: path.clone(),
                        target,
                    });
                }
            }
        }
        if initial {
            batch.restart = false;
            exec_rules.clear();
        }
        batch.execs = own
            .iter()
            .filter(|t| exec_rules.contains(&t.order))
            .filter_map(|t| t.exec.clone())
            .collect();
        if batch.rebuild {
            batch.changes.clear();
            batch.restart = false;
            batch.execs.clear();
        }
        let idle = batch.changes.is_empty() && !batch.restart && !batch.rebuild && batch.execs.is_empty();
        if !idle {
            services.push(batch);
        }
    }
    Plan { reload, services }
}

/// Whether `path` is worth a walk: under some rule's path (a directory
/// created or moved in must have its contents synced).
pub fn under_any(triggers: &[Trigger], path: &Path) -> bool {
    triggers.iter().any(|t| path.starts_with(&t.path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::WatchRule;

    fn triggers(service: &str, yaml: &str) -> Vec<Trigger> {
        let rules: Vec<WatchRule> = serde_yaml::from_str(yaml).unwrap();
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| Trigger::new(service, i, r, None).unwrap())
            .collect()
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_burst_is_one_batch_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        assert_eq!(d.wait(t0), None);
        for i in 0..1000u64 {
            d.push(PathBuf::from(format!("/p/f{i}")), t0 + Duration::from_micros(i * 30));
        }
        d.push(PathBuf::from("/p/f1"), t0 + Duration::from_millis(30));
        let last = t0 + Duration::from_millis(30);
        assert!(!d.due(last + Duration::from_millis(49)));
        assert!(d.due(last + QUIET));
        let batch = d.take();
        assert_eq!(batch.len(), 1000, "each path once");
        assert!(d.is_empty() && d.wait(last).is_none());
    }

    #[test]
    fn a_burst_that_never_goes_quiet_is_cut() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        while now < t0 + MAX_WAIT {
            d.push(PathBuf::from("/p/x"), now);
            assert!(!d.due(now));
            now += Duration::from_millis(20);
        }
        assert!(d.due(now));
    }

    #[test]
    fn one_restart_per_service_and_batch() {
        let t = triggers("web", "[{path: /p, action: sync+restart, target: /app}]");
        let plan = plan(&paths(&["/p/a", "/p/b", "/p/c"]), &t, &BTreeSet::new(), false);
        assert_eq!(plan.services.len(), 1);
        let web = &plan.services[0];
        assert!(web.restart);
        assert_eq!(web.changes.len(), 3);
        assert_eq!(web.changes[2].target, "/app/c");
    }

    #[test]
    fn rebuild_wins_over_everything_in_its_service() {
        let t = triggers(
            "web",
            "[{path: /p, action: sync+restart, target: /app}, {path: /p/package.json, action: rebuild}]",
        );
        let plan = plan(&paths(&["/p/a.js", "/p/package.json"]), &t, &BTreeSet::new(), false);
        let web = &plan.services[0];
        assert!(web.rebuild && !web.restart && web.changes.is_empty());
        let only_code = super::plan(&paths(&["/p/a.js"]), &t, &BTreeSet::new(), false);
        assert!(!only_code.services[0].rebuild && only_code.services[0].restart);
    }

    #[test]
    fn services_are_decided_apart_and_unmatched_paths_dropped() {
        let mut t = triggers("web", "[{path: /p/web, action: sync, target: /www}]");
        t.extend(triggers(
            "api",
            "[{path: /p/api, action: sync+exec, target: /srv, exec: {command: [kill, -HUP, '1']}}]",
        ));
        let plan = plan(
            &paths(&["/p/web/i.html", "/p/api/a.py", "/p/README"]),
            &t,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(plan.services.len(), 2);
        let api = plan.services.iter().find(|s| s.service == "api").unwrap();
        assert_eq!(api.execs.len(), 1, "one exec per rule, not per file");
        assert_eq!(api.changes[0].target, "/srv/a.py");
        let web = plan.services.iter().find(|s| s.service == "web").unwrap();
        assert!(!web.restart && web.execs.is_empty());
        assert!(!plan.reload);
    }

    #[test]
    fn restart_rules_sync_nothing_and_ignored_paths_do_nothing() {
        let t = triggers(
            "web",
            "[{path: /p/conf, action: restart}, {path: /p/src, action: sync, target: /app, ignore: [tmp]}]",
        );
        let plan = plan(
            &paths(&["/p/conf/nginx.conf", "/p/src/tmp/x"]),
            &t,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(plan.services.len(), 1);
        assert!(plan.services[0].restart && plan.services[0].changes.is_empty());
        let plan = super::plan(&paths(&["/p/src/tmp/x"]), &t, &BTreeSet::new(), false);
        assert!(plan.services.is_empty());
    }

    #[test]
    fn stack_files_ask_for_a_reload() {
        let t = triggers("web", "[{path: /p, action: sync+restart, target: /app}]");
        let stack = BTreeSet::from([PathBuf::from("/p/compose.yaml")]);
        let plan = plan(&paths(&["/p/compose.yaml"]), &t, &stack, false);
        assert!(plan.reload);
    }

    #[test]
    fn the_initial_sync_copies_only_rules_that_ask_and_restarts_nothing() {
        let t = triggers(
            "web",
            "[{path: /p/a, action: sync+restart, target: /a, initial_sync: true}, {path: /p/b, action: sync, target: /b}]",
        );
        let plan = plan(&paths(&["/p/a/x", "/p/b/y"]), &t, &BTreeSet::new(), true);
        let web = &plan.services[0];
        assert_eq!(web.changes.len(), 1);
        assert_eq!(web.changes[0].target, "/a/x");
        assert!(!web.restart);
    }
}
