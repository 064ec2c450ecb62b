//! `develop.watch` rules compiled into triggers: which rule a host path
//! belongs to, and where in the container it lands. Pure: no I/O (the
//! build context's `.dockerignore` is read by the caller and passed in).

use std::path::{Component, Path, PathBuf};

use crate::build::ignore::IgnoreRules;
use crate::spec::model::lifecycle::ServiceHook;
use crate::spec::model::{WatchAction, WatchRule};

/// A rule that cannot be watched, named so the user can fix the file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("service {service}: develop.watch rule for {path}: action {action} needs a `target` in the container")]
    MissingTarget {
        service: String,
        path: String,
        action: &'static str,
    },
    #[error("service {service}: develop.watch rule for {path}: action sync+exec needs an `exec` command")]
    MissingExec { service: String, path: String },
    #[error("service {service}: develop.watch target {target:?} must be an absolute path in the container")]
    RelativeTarget { service: String, target: String },
}

/// Names that editors and VCS tools write next to real files; compose
/// ignores them for every rule, so an editor's save does not sync swap
/// files or vim's `4913` write probe.
const EPHEMERAL: &[&str] = &["*.swp", "*.swx", "*~", ".#*", "#*#", "4913", ".DS_Store"];

/// One compiled `develop.watch` rule of one service.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub service: String,
    /// The rule's position in the service's list: ties between rules of
    /// the same specificity go to the first one written.
    pub order: usize,
    /// Absolute and lexically clean host path.
    pub path: PathBuf,
    pub action: WatchAction,
    pub target: Option<String>,
    pub initial_sync: bool,
    pub exec: Option<ServiceHook>,
    ignore: IgnoreRules,
    include: Option<IgnoreRules>,
    /// The build context and its `.dockerignore`, applied to paths inside it.
    context_ignore: Option<(PathBuf, IgnoreRules)>,
}

/// The action's name as written in the compose file.
pub fn action_name(action: WatchAction) -> &'static str {
    match action {
        WatchAction::Sync => "sync",
        WatchAction::Rebuild => "rebuild",
        WatchAction::Restart => "restart",
        WatchAction::SyncRestart => "sync+restart",
        WatchAction::SyncExec => "sync+exec",
    }
}

/// Whether the action copies files into the container.
pub fn syncs(action: WatchAction) -> bool {
    matches!(
        action,
        WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
    )
}

impl Trigger {
    /// Compiles `rule` (whose `path` the loader made absolute). The
    /// context ignore is the service's build context with its
    /// `.dockerignore`, when it has one.
    pub fn new(
        service: &str,
        order: usize,
        rule: &WatchRule,
        context_ignore: Option<(PathBuf, IgnoreRules)>,
    ) -> Result<Trigger, RuleError> {
        if syncs(rule.action) && rule.target.is_none() {
            return Err(RuleError::MissingTarget {
                service: service.to_string(),
                path: rule.path.clone(),
                action: action_name(rule.action),
            });
        }
        if rule.action == WatchAction::SyncExec && rule.exec.is_none() {
            return Err(RuleError::MissingExec {
                service: service.to_string(),
                path: rule.path.clone(),
            });
        }
        if let Some(target) = rule.target.as_deref().filter(|t| !t.starts_with('/')) {
            return Err(RuleError::RelativeTarget {
                service: service.to_string(),
                target: target.to_string(),
            });
        }
        let mut ignore_text = EPHEMERAL.iter().map(|p| format!("**/{p}\n")).collect::<String>();
        ignore_text.push_str("**/.git\n");
        for pattern in &rule.ignore {
            ignore_text.push_str(pattern);
            ignore_text.push('\n');
        }
        Ok(Trigger {
            service: service.to_string(),
            order,
            path: clean(Path::new(&rule.path)),
            action: rule.action,
            target: rule.target.clone(),
            initial_sync: rule.initial_sync.unwrap_or(false),
            exec: rule.exec.clone(),
            ignore: IgnoreRules::parse(&ignore_text),
            include: (!rule.include.is_empty()).then(|| IgnoreRules::parse(&rule.include.join("\n"))),
            context_ignore: context_ignore.map(|(dir, rules)| (clean(&dir), rules)),
        })
    }

    /// The path relative to the rule's `path` when the rule covers it
    /// (under the path, not ignored, included); `""` for the path itself.
    pub fn covers(&self, host: &Path) -> Option<String> {
        let host = clean(host);
        let rel = host.strip_prefix(&self.path).ok()?;
        let rel = rel.to_string_lossy().into_owned();
        if rel.is_empty() {
            return Some(rel);
        }
        if self.ignore.is_excluded(&rel) {
            return None;
        }
        if let Some((context, rules)) = &self.context_ignore {
            if let Ok(in_context) = host.strip_prefix(context) {
                let in_context = in_context.to_string_lossy();
                if !in_context.is_empty() && rules.is_excluded(&in_context) {
                    return None;
                }
            }
        }
        if let Some(include) = &self.include {
            // `include` patterns match like ignore lines: a match on a
            // parent directory counts for everything below it.
            if !include.is_excluded(&rel) {
                return None;
            }
        }
        Some(rel)
    }

    /// Where the host path lands in the container (sync actions only).
    pub fn target_for(&self, host: &Path) -> Option<String> {
        let rel = self.covers(host)?;
        let target = self.target.as_deref()?.trim_end_matches('/');
        Some(match (rel.is_empty(), target.is_empty()) {
            (true, true) => "/".to_string(),
            (true, false) => target.to_string(),
            (false, _) => format!("{target}/{rel}"),
        })
    }

    /// Specificity: a rule on a deeper path wins over its parents' rules.
    fn depth(&self) -> usize {
        self.path.components().count()
    }
}

/// The rule that decides for `host` among one service's triggers: the one
/// with the deepest `path` that covers it; ties go to the first written.
pub fn winner<'t>(triggers: impl IntoIterator<Item = &'t Trigger>, host: &Path) -> Option<&'t Trigger> {
    triggers
        .into_iter()
        .filter(|t| t.covers(host).is_some())
        .min_by_key(|t| (std::cmp::Reverse(t.depth()), t.order))
}

/// `a/./b/../c/` → `a/c`, without touching the filesystem (the path may
/// be gone already: that is what a deletion event reports).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> WatchRule {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn trigger(yaml: &str) -> Trigger {
        Trigger::new("web", 0, &rule(yaml), None).unwrap()
    }

    #[test]
    fn paths_map_under_the_target() {
        let t = trigger("{path: /p/src, action: sync, target: /app/}");
        assert_eq!(t.target_for(Path::new("/p/src/a/b.js")).as_deref(), Some("/app/a/b.js"));
        assert_eq!(t.target_for(Path::new("/p/src")).as_deref(), Some("/app"));
        assert_eq!(t.target_for(Path::new("/p/src/./x/../y")).as_deref(), Some("/app/y"));
        assert_eq!(
            t.target_for(Path::new("/p/srcx/a")),
            None,
            "a sibling with the same prefix"
        );
        assert_eq!(t.target_for(Path::new("/p/other")), None);
        let file = trigger("{path: /p/index.html, action: sync, target: /www/index.html}");
        assert_eq!(
            file.target_for(Path::new("/p/index.html")).as_deref(),
            Some("/www/index.html")
        );
        let root = trigger("{path: /p, action: sync, target: /}");
        assert_eq!(root.target_for(Path::new("/p/etc/x")).as_deref(), Some("/etc/x"));
    }

    #[test]
    fn ignore_is_relative_to_the_path_with_dockerignore_semantics() {
        let t = trigger("{path: /p, action: sync, target: /app, ignore: [node_modules/, '*.log', '!keep.log']}");
        assert!(t.covers(Path::new("/p/node_modules/x/index.js")).is_none());
        assert!(t.covers(Path::new("/p/node_modules")).is_none());
        assert!(t.covers(Path::new("/p/debug.log")).is_none());
        assert!(t.covers(Path::new("/p/keep.log")).is_some());
        assert!(
            t.covers(Path::new("/p/sub/debug.log")).is_some(),
            "* stays in one segment"
        );
        assert!(t.covers(Path::new("/p/src/main.js")).is_some());
    }

    #[test]
    fn editor_files_and_git_never_sync() {
        let t = trigger("{path: /p, action: sync, target: /app}");
        for path in [
            "/p/.git/index",
            "/p/a/.main.rs.swp",
            "/p/a/main.rs~",
            "/p/4913",
            "/p/.#x",
            "/p/#x#",
        ] {
            assert!(t.covers(Path::new(path)).is_none(), "{path}");
        }
        assert!(t.covers(Path::new("/p/a/main.rs")).is_some());
    }

    #[test]
    fn include_narrows_the_rule() {
        let t = trigger("{path: /p, action: sync, target: /app, include: ['*.html', 'static']}");
        assert!(t.covers(Path::new("/p/index.html")).is_some());
        assert!(t.covers(Path::new("/p/static/css/a.css")).is_some());
        assert!(t.covers(Path::new("/p/main.go")).is_none());
    }

    #[test]
    fn the_build_contexts_dockerignore_applies_inside_it() {
        let context = Some((PathBuf::from("/p"), IgnoreRules::parse("secret\n")));
        let t = Trigger::new("web", 0, &rule("{path: /p/src, action: rebuild}"), context).unwrap();
        assert!(t.covers(Path::new("/p/src/main.c")).is_some());
        let context = Some((PathBuf::from("/p"), IgnoreRules::parse("src/gen\n")));
        let t = Trigger::new("web", 0, &rule("{path: /p/src, action: rebuild}"), context).unwrap();
        assert!(t.covers(Path::new("/p/src/gen/x.c")).is_none());
    }

    #[test]
    fn the_deepest_rule_wins_then_the_first_written() {
        let all = [
            Trigger::new("web", 0, &rule("{path: /p, action: sync, target: /app}"), None).unwrap(),
            Trigger::new("web", 1, &rule("{path: /p/package.json, action: rebuild}"), None).unwrap(),
            Trigger::new("web", 2, &rule("{path: /p, action: sync+restart, target: /srv}"), None).unwrap(),
            Trigger::new(
                "web",
                3,
                &rule("{path: /p/cache, action: sync, target: /c, ignore: ['*']}"),
                None,
            )
            .unwrap(),
        ];
        assert_eq!(winner(&all, Path::new("/p/package.json")).unwrap().order, 1);
        assert_eq!(winner(&all, Path::new("/p/src/a.js")).unwrap().order, 0);
        // Ignored by the deeper rule: the parent rule takes it.
        assert_eq!(winner(&all, Path::new("/p/cache/x")).unwrap().order, 0);
        assert!(winner(&all, Path::new("/q/x")).is_none());
    }

    #[test]
    fn invalid_rules_name_the_service_and_path() {
        let err = Trigger::new("web", 0, &rule("{path: /p, action: sync}"), None).unwrap_err();
        assert!(
            err.to_string().contains("service web") && err.to_string().contains("target"),
            "{err}"
        );
        let err = Trigger::new("web", 0, &rule("{path: /p, action: sync+exec, target: /a}"), None).unwrap_err();
        assert!(matches!(err, RuleError::MissingExec { .. }));
        let err = Trigger::new("web", 0, &rule("{path: /p, action: sync, target: app}"), None).unwrap_err();
        assert!(matches!(err, RuleError::RelativeTarget { .. }));
        assert!(Trigger::new("web", 0, &rule("{path: /p, action: restart}"), None).is_ok());
    }
}
