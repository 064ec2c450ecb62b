//! `berth config` and friends, driven through the built binary as a user
//! would run them. No root needed: these verbs only read files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        // Tests must not see the developer's own compose variables.
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .output()
        .expect("berth runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("berth-cli").tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const STACK: &str = "\
name: shop
services:
  web:
    image: nginx:${TAG:-1.25}
    ports: ['8080:80']
    depends_on:
      api: {condition: service_healthy}
  api:
    build: ./api
    environment: [MODE=prod]
    depends_on: [db]
    healthcheck: {test: 'true', interval: 1s}
  db:
    image: postgres:16
    volumes: ['pgdata:/var/lib/postgresql/data']
  debug:
    image: busybox
    profiles: [debug]
volumes:
  pgdata:
";

#[test]
fn prints_the_canonical_project() {
    let dir = project(&[("compose.yaml", STACK)]);
    let out = berth(dir.path(), &["config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(value["name"], "shop");
    assert_eq!(value["services"]["web"]["image"], "nginx:1.25");
    assert_eq!(value["services"]["web"]["ports"][0]["target"], 80);
    assert_eq!(value["services"]["web"]["ports"][0]["published"], "8080");
    assert_eq!(value["services"]["api"]["environment"]["MODE"], "prod");
    let context = value["services"]["api"]["build"]["context"].as_str().unwrap();
    assert_eq!(Path::new(context), dir.path().join("api"));
    assert_eq!(value["volumes"]["pgdata"]["name"], "shop_pgdata");
    assert_eq!(value["networks"]["default"]["name"], "shop_default");
    assert!(value["services"].get("debug").is_none(), "profiled service disabled");

    // Deterministic: the same bytes twice, and JSON says the same thing.
    assert_eq!(text, stdout(&berth(dir.path(), &["config"])));
    let json: serde_json::Value =
        serde_json::from_slice(&berth(dir.path(), &["config", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["services"]["web"]["image"], "nginx:1.25");
}

#[test]
fn lists_services_volumes_networks_profiles_images() {
    let dir = project(&[("compose.yaml", STACK)]);
    assert_eq!(stdout(&berth(dir.path(), &["config", "--services"])), "api\ndb\nweb\n");
    assert_eq!(
        stdout(&berth(dir.path(), &["--profile", "debug", "config", "--services"])),
        "api\ndb\ndebug\nweb\n"
    );
    assert_eq!(stdout(&berth(dir.path(), &["config", "--volumes"])), "pgdata\n");
    assert_eq!(stdout(&berth(dir.path(), &["config", "--networks"])), "default\n");
    assert_eq!(stdout(&berth(dir.path(), &["config", "--profiles"])), "debug\n");
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--images"])),
        "shop-api\npostgres:16\nnginx:1.25\n"
    );
}

#[test]
fn graph_waves_and_dot() {
    let dir = project(&[("compose.yaml", STACK)]);
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--graph"])),
        "wave 1: db\nwave 2: api\nwave 3: web\n"
    );
    let dot = stdout(&berth(dir.path(), &["config", "--graph", "dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("\"web\" -> \"api\""), "{dot}");
}

#[test]
fn hash_is_stable_and_tracks_changes() {
    let dir = project(&[("compose.yaml", STACK)]);
    let first = stdout(&berth(dir.path(), &["config", "--hash", "web"]));
    assert!(first.starts_with("web "), "{first}");
    assert_eq!(first.trim().len(), "web ".len() + 64);
    assert_eq!(first, stdout(&berth(dir.path(), &["config", "--hash", "web"])));
    let dir2 = project(&[("compose.yaml", &STACK.replace("1.25", "1.27"))]);
    let changed = stdout(&berth(dir2.path(), &["config", "--hash", "web"]));
    assert_ne!(first, changed);
    let all = stdout(&berth(dir.path(), &["config", "--hash", "*"]));
    assert_eq!(all.lines().count(), 3);
}

#[test]
fn quiet_validates_and_selected_services_bring_dependencies() {
    let dir = project(&[("compose.yaml", STACK)]);
    let out = berth(dir.path(), &["config", "-q"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let out = berth(dir.path(), &["config", "--services", "api"]);
    assert_eq!(stdout(&out), "api\ndb\n");
    let out = berth(dir.path(), &["config", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such service: nosuch"), "{}", stderr(&out));
}

#[test]
fn errors_name_file_line_column_and_exit_1() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    imgae: nginx\n",
            "compose.yaml:3:5: services.web.imgae: unknown key `imgae` (did you mean `image`?)",
        ),
        (
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
            "compose.yaml:4:18: services.a.depends_on.b: dependency cycle: a → b → a",
        ),
        (
            "services:\n  web:\n    image: ${IMG:?set IMG}\n",
            "compose.yaml:3:5: services.web.image: required variable IMG is missing a value: set IMG",
        ),
        (
            "services:\n  web:\n    image: x\n    networks: [back]\n",
            "compose.yaml:4:16: services.web.networks.back: service \"web\" refers to undefined network \"back\"",
        ),
        (
            "services:\n  web:\n    image: x\n    ports: 80\n",
            "compose.yaml:4:5: services.web.ports: expected a list, found a number",
        ),
    ];
    for (text, expected) in cases {
        let dir = project(&[("compose.yaml", text)]);
        let out = berth(dir.path(), &["config"]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        let expected = format!("{}/{expected}", dir.path().display());
        assert_eq!(err.trim_end(), expected, "for:\n{text}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = project(&[]);
    let out = berth(dir.path(), &["config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no configuration file provided"),
        "{}",
        stderr(&out)
    );
    let out = berth(dir.path(), &["-f", "nope.yaml", "config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.yaml"), "{}", stderr(&out));
}

#[test]
fn warnings_go_to_stderr_and_respect_log_level() {
    let dir = project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x:${UNSET_TAG}\n    runtime: runc\n",
    )]);
    let out = berth(dir.path(), &["config", "-q"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("The \"UNSET_TAG\" variable is not set"), "{err}");
    assert!(
        err.contains("services.web.runtime: parsed but not supported by berth; ignored"),
        "{err}"
    );
    let out = berth(dir.path(), &["--log-level", "error", "config", "-q"]);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn global_flags_pick_files_name_profiles_and_env() {
    let dir = project(&[
        (
            "base.yaml",
            "services:\n  web:\n    image: web:${TAG}\n    environment: {A: '1'}\n",
        ),
        (
            "extra.yaml",
            "services:\n  web:\n    environment: {B: '2'}\n  tool:\n    image: t\n    profiles: [tools]\n",
        ),
        ("prod.env", "TAG=prod\n"),
    ]);
    let out = berth(
        dir.path(),
        &[
            "-f",
            "base.yaml",
            "-f",
            "extra.yaml",
            "-p",
            "custom",
            "--profile",
            "tools",
            "--env-file",
            "prod.env",
            "config",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "custom");
    assert_eq!(json["services"]["web"]["image"], "web:prod");
    assert_eq!(json["services"]["web"]["environment"]["A"], "1");
    assert_eq!(json["services"]["web"]["environment"]["B"], "2");
    assert!(json["services"]["tool"].is_object());
    let out = berth(dir.path(), &["-p", "Bad Name", "-f", "base.yaml", "config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid project name"), "{}", stderr(&out));
}

#[test]
fn completion_scripts_are_generated() {
    let dir = project(&[]);
    for shell in ["bash", "zsh", "fish"] {
        let out = berth(dir.path(), &["completion", shell]);
        assert!(out.status.success());
        assert!(stdout(&out).contains("berth"), "{shell}");
    }
}

#[test]
fn yaml_1_1_words_are_quoted_as_docker_compose_prints_them() {
    let dir = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    restart: \"no\"\n    environment: [A=yes, B=on, C=plain]\n",
    )]);
    let out = berth(dir.path(), &["config"]);
    let text = stdout(&out);
    assert!(text.contains("restart: \"no\"\n"), "{text}");
    assert!(text.contains("A: \"yes\"\n") && text.contains("B: \"on\"\n"), "{text}");
    assert!(text.contains("C: plain\n"), "{text}");
    // And it reads back the same.
    std::fs::write(dir.path().join("compose.yaml"), &text).unwrap();
    assert_eq!(stdout(&berth(dir.path(), &["config"])), text);
}
