//! Restart policies (`restart:`, `deploy.restart_policy`), decided purely
//! from the policy, how the container ended and its restart history, as
//! docker's `restartmanager` does: exponential backoff from 100 ms, doubled
//! per restart up to a minute, reset after a run of ten seconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::config::RestartPolicy;
use crate::spec::model::Service;

pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// The restart history of a container, kept beside it (`restart.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Restarts so far (docker's `RestartCount`).
    pub count: u32,
    /// The wait before the next restart.
    pub backoff_ms: u64,
}

/// What to do with a container that is not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Leave it as it is.
    Keep,
    /// Start it again after this wait.
    RestartAfter(Duration),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub exit_code: i32,
    /// `stop`/`kill` by a user (or `down`): never restarted.
    pub stopped_by_user: bool,
    pub ran_for: Duration,
}

/// Decides, and advances the history when it restarts.
pub fn decide(policy: RestartPolicy, ending: Ending, history: &mut History) -> Decision {
    if ending.stopped_by_user {
        return Decision::Keep;
    }
    let wanted = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            ending.exit_code != 0 && (max_retries == 0 || history.count < max_retries)
        }
    };
    if !wanted {
        return Decision::Keep;
    }
    let backoff = if ending.ran_for >= RESET_AFTER || history.backoff_ms == 0 {
        INITIAL_BACKOFF
    } else {
        (Duration::from_millis(history.backoff_ms) * 2).min(MAX_BACKOFF)
    };
    history.count += 1;
    history.backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
    Decision::RestartAfter(backoff)
}

/// The policy of a service: `restart:` wins over `deploy.restart_policy`
/// (`none` → no, `on-failure` with `max_attempts`, `any` → always).
///
/// # Errors
///
/// An unknown policy, as text for the caller to attach to the service.
pub fn policy_for(service: &Service) -> Result<RestartPolicy, String> {
    if let Some(restart) = &service.restart {
        return parse(restart);
    }
    let Some(policy) = service.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) else {
        return Ok(RestartPolicy::No);
    };
    match policy.condition.as_deref() {
        Some("none") => Ok(RestartPolicy::No),
        Some("on-failure") => Ok(RestartPolicy::OnFailure {
            max_retries: policy.max_attempts.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        }),
        Some("any") | None => Ok(RestartPolicy::Always),
        Some(other) => Err(format!("unknown deploy.restart_policy.condition {other:?}")),
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse(text: &str) -> Result<RestartPolicy, String> {
    match text.split_once(':') {
        None => match text {
            "no" | "" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
            other => Err(format!("unknown restart policy {other:?}")),
        },
        Some(("on-failure", n)) => n
            .parse()
            .map(|max_retries| RestartPolicy::OnFailure { max_retries })
            .map_err(|_| format!("invalid restart policy {text:?}: the retry count must be a number")),
        Some(_) => Err(format!("invalid restart policy {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(code: i32, secs: u64) -> Ending {
        Ending {
            exit_code: code,
            stopped_by_user: false,
            ran_for: Duration::from_secs(secs),
        }
    }

    #[test]
    fn backoff_doubles_and_resets_after_a_long_run() {
        let mut h = History::default();
        let mut waits = Vec::new();
        for _ in 0..4 {
            waits.push(decide(RestartPolicy::Always, ending(1, 0), &mut h));
        }
        let ms = |n| Decision::RestartAfter(Duration::from_millis(n));
        assert_eq!(waits, vec![ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(decide(RestartPolicy::Always, ending(0, 30), &mut h), ms(100));
        assert_eq!(h.count, 5);
        for _ in 0..20 {
            decide(RestartPolicy::Always, ending(1, 0), &mut h);
        }
        assert_eq!(h.backoff_ms, 60_000);
    }

    #[test]
    fn on_failure_gives_up_after_max_retries_and_ignores_success() {
        let mut h = History::default();
        let policy = RestartPolicy::OnFailure { max_retries: 3 };
        assert_eq!(decide(policy, ending(0, 0), &mut h), Decision::Keep);
        for _ in 0..3 {
            assert!(matches!(
                decide(policy, ending(2, 0), &mut h),
                Decision::RestartAfter(_)
            ));
        }
        assert_eq!(decide(policy, ending(2, 0), &mut h), Decision::Keep);
        assert_eq!(h.count, 3);
    }

    #[test]
    fn user_stops_and_no_are_kept() {
        let mut h = History::default();
        let stopped = Ending {
            stopped_by_user: true,
            ..ending(137, 0)
        };
        assert_eq!(decide(RestartPolicy::Always, stopped, &mut h), Decision::Keep);
        assert_eq!(decide(RestartPolicy::No, ending(1, 0), &mut h), Decision::Keep);
    }

    #[test]
    fn parses_policies() {
        assert_eq!(parse("on-failure:3"), Ok(RestartPolicy::OnFailure { max_retries: 3 }));
        assert_eq!(parse("unless-stopped"), Ok(RestartPolicy::UnlessStopped));
        assert!(parse("sometimes").is_err());
        assert!(parse("on-failure:x").is_err());
    }
}
