//! Healthchecks, run by the engine through `exec` as docker does: the pure
//! status rules ([`HealthState::record`], [`HealthState::next_probe_in`]),
//! the state file beside the container (`health.json`, read by `ps`,
//! `inspect` and `depends_on: service_healthy`), and one probe.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runtime::config::HealthConfig;
use crate::runtime::container::Container;
use crate::spec::model::Service;
use crate::store::{write_atomic_volatile, Root};

/// docker's defaults (`daemon/health.go`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;
/// Probe results kept in the state, as docker keeps five.
const LOG_ENTRIES: usize = 5;
/// Output kept per probe, as docker's 4 KiB.
const OUTPUT_LIMIT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "health: starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// The health of one run of a container (reset when it starts again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The container start this state belongs to (`started_at`).
    pub started_at: String,
    pub log: Vec<Probe>,
}

impl HealthState {
    pub fn starting(started_at: &str) -> Self {
        HealthState {
            status: HealthStatus::Starting,
            failing_streak: 0,
            started_at: started_at.to_string(),
            log: Vec::new(),
        }
    }

    /// docker's rules: a success makes it healthy; a failure inside the
    /// start period does not count; `retries` failures in a row make it
    /// unhealthy.
    pub fn record(&mut self, config: &HealthConfig, probe: Probe, since_start: Duration) {
        let in_start_period = since_start < Duration::from_millis(config.start_period_ms);
        if probe.exit_code == 0 {
            self.status = HealthStatus::Healthy;
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == HealthStatus::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= config.retries.max(1) {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(probe);
        let excess = self.log.len().saturating_sub(LOG_ENTRIES);
        self.log.drain(..excess);
    }

    /// The wait before the next probe: `start_interval` while starting
    /// inside the start period, else `interval`.
    pub fn next_probe_in(&self, config: &HealthConfig, since_start: Duration) -> Duration {
        let in_start_period = since_start < Duration::from_millis(config.start_period_ms);
        if self.status == HealthStatus::Starting && in_start_period {
            Duration::from_millis(config.start_interval_ms)
        } else {
            Duration::from_millis(config.interval_ms)
        }
    }
}

/// The image's `HEALTHCHECK` (docker's `config.Healthcheck` in the image
/// config: durations in nanoseconds, `Test: ["NONE"]` to disable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageHealthcheck {
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

impl ImageHealthcheck {
    /// Reads it from an image config blob.
    pub fn from_config(config: &[u8]) -> Option<ImageHealthcheck> {
        let value: serde_json::Value = serde_json::from_slice(config).ok()?;
        serde_json::from_value(value.get("config")?.get("Healthcheck")?.clone()).ok()
    }
}

/// The container's healthcheck: the service's, over the image's (a
/// service check without `test` takes the image's test; durations and
/// retries not given in the file come from the image, then docker's
/// defaults). `None` when there is none or it is disabled.
pub fn config_for(service: &Service, image: Option<&ImageHealthcheck>) -> Option<HealthConfig> {
    let check = service.healthcheck.clone().unwrap_or_default();
    if check.is_disabled() {
        return None;
    }
    let image = image.cloned().unwrap_or_default();
    let test = check.test.clone().unwrap_or(image.test.clone());
    if test.is_empty() || test.first().is_some_and(|t| t == "NONE") {
        return None;
    }
    let from_image = |nanos: u64| (nanos > 0).then(|| Duration::from_nanos(nanos));
    let ms = |given: Option<crate::spec::syntax::units::ComposeDuration>, image: u64, default: Duration| {
        let d = given.map(|d| d.0).or_else(|| from_image(image)).unwrap_or(default);
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    };
    Some(HealthConfig {
        test,
        interval_ms: ms(check.interval, image.interval, DEFAULT_INTERVAL),
        timeout_ms: ms(check.timeout, image.timeout, DEFAULT_TIMEOUT),
        start_period_ms: ms(check.start_period, image.start_period, Duration::ZERO),
        start_interval_ms: ms(check.start_interval, image.start_interval, DEFAULT_START_INTERVAL),
        retries: check.retries.map_or(
            if image.retries > 0 {
                image.retries
            } else {
                DEFAULT_RETRIES
            },
            |r| u32::try_from(r).unwrap_or(u32::MAX),
        ),
    })
}

/// The argv a probe runs in the container.
pub fn probe_command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

pub fn state_path(container: &Container) -> PathBuf {
    container.dir.join("health.json")
}

/// The recorded health, `None` for a container without a healthcheck or
/// not probed yet.
pub fn read(container: &Container) -> Option<HealthState> {
    let bytes = std::fs::read(state_path(container)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write(container: &Container, state: &HealthState) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    write_atomic_volatile(&state_path(container), &bytes)
}

/// Runs one probe by executing `berth container exec` (a fresh process:
/// the engine is multi-threaded and never forks to enter namespaces),
/// killing it after the timeout.
pub fn probe(root: &Root, container: &Container, config: &HealthConfig) -> Probe {
    let start = crate::rfc3339::now();
    let (exit_code, output) = match probe_command(&config.test) {
        None => (1, "healthcheck has no command".to_string()),
        Some(argv) => run_probe(
            root.path(),
            &container.config.id,
            &argv,
            Duration::from_millis(config.timeout_ms),
        ),
    };
    Probe {
        start,
        end: crate::rfc3339::now(),
        exit_code,
        output,
    }
}

fn run_probe(root: &Path, id: &str, argv: &[String], timeout: Duration) -> (i32, String) {
    let spawned = Command::new(crate::runtime::lifecycle::SELF_EXE)
        .arg("--root")
        .arg(root)
        .args(["container", "exec", id])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return (1, format!("starting the probe: {e}")),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return (1, format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()));
    };
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes.truncate(OUTPUT_LIMIT);
        output = String::from_utf8_lossy(&bytes).into_owned();
    }
    (status.code().unwrap_or(1), output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retries: u32, start_period_ms: u64) -> HealthConfig {
        HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval_ms: 1000,
            timeout_ms: 1000,
            start_period_ms,
            start_interval_ms: 100,
            retries,
        }
    }

    fn probe(code: i32) -> Probe {
        Probe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn success_is_healthy_and_retries_failures_make_unhealthy() {
        let c = config(2, 0);
        let mut s = HealthState::starting("t");
        s.record(&c, probe(1), Duration::from_secs(1));
        assert_eq!(s.status, HealthStatus::Starting);
        s.record(&c, probe(0), Duration::from_secs(2));
        assert_eq!((s.status, s.failing_streak), (HealthStatus::Healthy, 0));
        s.record(&c, probe(1), Duration::from_secs(3));
        assert_eq!(s.status, HealthStatus::Healthy);
        s.record(&c, probe(1), Duration::from_secs(4));
        assert_eq!(s.status, HealthStatus::Unhealthy);
        s.record(&c, probe(0), Duration::from_secs(5));
        assert_eq!(s.status, HealthStatus::Healthy);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let c = config(1, 10_000);
        let mut s = HealthState::starting("t");
        for _ in 0..5 {
            s.record(&c, probe(1), Duration::from_secs(1));
        }
        assert_eq!((s.status, s.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(s.log.len(), LOG_ENTRIES);
        assert_eq!(s.next_probe_in(&c, Duration::from_secs(1)), Duration::from_millis(100));
        s.record(&c, probe(1), Duration::from_secs(11));
        assert_eq!(s.status, HealthStatus::Unhealthy);
        assert_eq!(
            s.next_probe_in(&c, Duration::from_secs(11)),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn the_image_healthcheck_fills_what_the_file_leaves_out() {
        let config =
            br#"{"config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2000000000, "Retries": 7}}}"#;
        let image = ImageHealthcheck::from_config(config).unwrap();
        let none = Service::default();
        let c = config_for(&none, Some(&image)).unwrap();
        assert_eq!(
            (c.test.clone(), c.interval_ms, c.retries, c.timeout_ms),
            (vec!["CMD-SHELL".to_string(), "true".to_string()], 2000, 7, 30_000)
        );
        let mut service = Service {
            healthcheck: Some(crate::spec::model::lifecycle::Healthcheck {
                interval: Some(crate::spec::syntax::units::ComposeDuration(Duration::from_secs(5))),
                ..Default::default()
            }),
            ..Service::default()
        };
        let c = config_for(&service, Some(&image)).unwrap();
        assert_eq!((c.interval_ms, c.retries), (5000, 7));
        service.healthcheck = Some(crate::spec::model::lifecycle::Healthcheck {
            disable: Some(true),
            ..Default::default()
        });
        assert_eq!(config_for(&service, Some(&image)), None);
        let disabled = ImageHealthcheck::from_config(br#"{"config": {"Healthcheck": {"Test": ["NONE"]}}}"#).unwrap();
        assert_eq!(config_for(&none, Some(&disabled)), None);
        assert_eq!(config_for(&none, None), None);
    }

    #[test]
    fn probe_commands() {
        assert_eq!(
            probe_command(&["CMD".into(), "a".into(), "b".into()]),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            probe_command(&["CMD-SHELL".into(), "exit 1".into()]),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        assert_eq!(probe_command(&["NONE".into()]), None);
    }
}
