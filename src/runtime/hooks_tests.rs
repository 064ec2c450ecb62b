//! Hooks run as real processes (`/bin/sh`), which needs no root.

use std::fs;

use super::*;

fn hook(stage: HookStage, script: &str) -> Hook {
    Hook {
        stage,
        path: "/bin/sh".into(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["GREETING=hello there".into()],
        timeout: None,
    }
}

fn config() -> ContainerConfig {
    let json = serde_json::json!({
        "id": "abc123", "name": "c", "image": "busybox", "image_id": "x", "layers": [],
        "args": ["sh", "-c", "true"], "env": ["A=1"], "working_dir": "/w", "user": "", "group_add": [],
        "hostname": "h", "domainname": null, "mounts": [], "devices": [],
        "resources": crate::runtime::cgroups::Resources::default(), "capabilities": [], "privileged": false,
        "read_only": true, "no_new_privileges": false, "seccomp": "default", "rlimits": [], "sysctls": {},
        "shm_size": 0, "init": false, "tty": false, "interactive": false,
        "stop_signal": "SIGTERM", "stop_timeout": 10, "network": "none",
        "auto_remove": false, "labels": {"k": "v"}, "log_max_size": 0, "log_max_files": 1,
        "created": "now",
    });
    serde_json::from_value(json).unwrap()
}

#[test]
fn configs_without_hooks_still_load_and_hooks_round_trip() {
    let mut c = config();
    assert!(c.hooks.is_empty());
    assert!(!serde_json::to_string(&c).unwrap().contains("hooks"));
    c.hooks.push(Hook {
        timeout: Some(5),
        ..hook(HookStage::CreateContainer, "true")
    });
    let text = serde_json::to_string(&c).unwrap();
    assert!(text.contains(r#""stage":"createContainer""#), "{text}");
    let back: ContainerConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back.hooks, c.hooks);
}

#[test]
fn state_follows_the_runtime_spec() {
    let c = config();
    let dir = Path::new("/var/lib/berth/containers/abc123");
    let state: serde_json::Value =
        serde_json::from_str(&state_json(&c, dir, HookStage::CreateContainer, Some(42))).unwrap();
    assert_eq!(state["ociVersion"], OCI_VERSION);
    assert_eq!(state["id"], "abc123");
    assert_eq!(state["status"], "creating");
    assert_eq!(state["pid"], 42);
    assert_eq!(state["bundle"], "/var/lib/berth/containers/abc123/bundle");
    assert_eq!(state["annotations"]["k"], "v");
    let stopped: serde_json::Value = serde_json::from_str(&state_json(&c, dir, HookStage::Poststop, None)).unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped.get("pid").is_none());
    assert_eq!(status_at(HookStage::StartContainer), "created");
    assert_eq!(status_at(HookStage::Poststart), "running");
}

#[test]
fn bundle_points_hooks_at_the_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let c = config();
    write_bundle(&c, dir.path()).unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("bundle/config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], dir.path().join("rootfs").display().to_string());
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["process"]["env"][0], "A=1");
    assert_eq!(spec["process"]["cwd"], "/w");
}

#[test]
fn prestart_runs_with_create_runtime_first() {
    let hooks = vec![
        hook(HookStage::CreateRuntime, "1"),
        hook(HookStage::CreateContainer, "2"),
        hook(HookStage::Prestart, "3"),
        hook(HookStage::Poststop, "4"),
    ];
    let scripts = |stage| -> Vec<String> { at_stage(&hooks, stage).iter().map(|h| h.args[2].clone()).collect() };
    assert_eq!(scripts(HookStage::CreateRuntime), ["3", "1"]);
    assert_eq!(scripts(HookStage::Prestart), ["3", "1"]);
    assert_eq!(scripts(HookStage::CreateContainer), ["2"]);
    assert!(scripts(HookStage::StartContainer).is_empty());
}

#[test]
fn a_hook_gets_the_state_on_stdin_its_argv0_and_only_its_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{{ cat; echo; echo \"$0|$GREETING|${{HOME:-nohome}}|$(pwd)\"; }} > {}",
        out.display()
    );
    run(&hook(HookStage::CreateContainer, &script), r#"{"id":"x"}"#).unwrap();
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "{\"id\":\"x\"}\nsh|hello there|nohome|/\n"
    );
}

#[test]
fn a_hook_that_ignores_stdin_is_fine() {
    run(&hook(HookStage::Poststart, "exit 0"), &"x".repeat(100)).unwrap();
}

#[test]
fn a_failing_hook_is_named_with_its_status_and_output() {
    let err = run(
        &hook(HookStage::CreateContainer, "echo out; echo broken >&2; exit 3"),
        "{}",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("createContainer hook /bin/sh failed (exit status 3): "),
        "{text}"
    );
    assert!(text.contains("out") && text.contains("broken"), "{text}");
}

#[test]
fn a_missing_hook_is_named() {
    let missing = Hook {
        path: "/nonexistent/hook".into(),
        args: Vec::new(),
        ..hook(HookStage::StartContainer, "")
    };
    let text = run(&missing, "{}").unwrap_err().to_string();
    assert!(
        text.starts_with("startContainer hook /nonexistent/hook: cannot run it:"),
        "{text}"
    );
}

#[test]
fn a_slow_hook_is_killed_at_its_timeout() {
    let slow = Hook {
        timeout: Some(1),
        ..hook(HookStage::CreateRuntime, "echo waiting; sleep 30")
    };
    let started = Instant::now();
    let text = run(&slow, "{}").unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        text,
        "createRuntime hook /bin/sh did not finish within 1s and was killed: waiting"
    );
}

#[test]
fn a_daemonizing_hook_does_not_hang_the_start() {
    // The background sleep keeps the output pipe open after the hook exits.
    let started = Instant::now();
    run(&hook(HookStage::CreateContainer, "sleep 5 & exit 0"), "{}").unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn warnings_for_stages_that_must_not_fail() {
    let hooks = vec![hook(HookStage::Poststop, "exit 1"), hook(HookStage::Poststop, "exit 0")];
    let warnings = run_stage_warning(&hooks, HookStage::Poststop, "{}");
    assert_eq!(
        warnings,
        ["berth: warning: poststop hook /bin/sh failed (exit status 1)"]
    );
    let err = run_stage(
        &[
            hook(HookStage::StartContainer, "exit 0"),
            hook(HookStage::StartContainer, "exit 2"),
        ],
        HookStage::StartContainer,
        "{}",
    )
    .unwrap_err();
    assert!(err.to_string().contains("exit status 2"));
}
