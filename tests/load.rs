//! End-to-end tests of the stack-file loader (`berth::spec::load`): each
//! test writes compose files into a temporary directory and loads them with
//! an explicit environment, never the process's own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use berth::spec::hash::service_hash;
use berth::spec::model::{Command, Condition, DependsOn, Service};
use berth::spec::syntax::ports::PortConfig;
use berth::spec::syntax::volumes::VolumeType;
use berth::spec::{load, LoadOptions, LoadedProject};
use tempfile::TempDir;

// --- helpers -------------------------------------------------------------

/// A temporary directory holding `files` (relative paths, parents created).
fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("creating a temporary directory: {e}"));
    write_files(dir.path(), files);
    dir
}

fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        let parent = path.parent().unwrap_or(root);
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// Options that discover files from `dir`, with an empty environment.
fn options(dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_ok(options: &LoadOptions) -> LoadedProject {
    match load(options) {
        Ok(project) => project,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn load_err(options: &LoadOptions) -> String {
    match load(options) {
        Ok(project) => panic!(
            "load succeeded, expected an error: {:?}",
            project.project.services.keys()
        ),
        Err(e) => e.to_string(),
    }
}

/// Loads `compose.yaml` with `text` in a fresh directory and returns the
/// error message and the file's path.
fn error_of(text: &str) -> (String, PathBuf) {
    let dir = tree(&[("compose.yaml", text)]);
    let file = dir.path().join("compose.yaml");
    (load_err(&options(dir.path())), file)
}

fn service<'a>(loaded: &'a LoadedProject, name: &str) -> &'a Service {
    match loaded.project.services.get(name) {
        Some(s) => s,
        None => panic!("no service {name:?} in {:?}", loaded.project.services.keys()),
    }
}

/// A service's environment as `KEY → value` (`None` for unset).
fn environment(loaded: &LoadedProject, name: &str) -> BTreeMap<String, Option<String>> {
    service(loaded, name).environment.0.clone()
}

fn env_of(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

fn names(loaded: &LoadedProject) -> Vec<&str> {
    loaded.project.services.keys().map(String::as_str).collect()
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn port(target: u16, published: Option<&str>, host_ip: Option<&str>, protocol: &str) -> PortConfig {
    PortConfig {
        name: None,
        target,
        published: published.map(str::to_string),
        host_ip: host_ip.map(str::to_string),
        protocol: protocol.to_string(),
        app_protocol: None,
        mode: "ingress".to_string(),
    }
}

fn unset_warning(name: &str) -> String {
    format!("The \"{name}\" variable is not set. Defaulting to a blank string.")
}

// --- 1. interpolation ----------------------------------------------------

#[test]
fn interpolation_forms_end_to_end() {
    let dir = tree(&[(
        "compose.yaml",
        r#"name: interp
services:
  web:
    image: "nginx:${TAG}"
    environment:
      A: "${EMPTY:-dflt}"
      B: "${EMPTY-dflt}"
      C: "${UNSET:-dflt}"
      D: "${UNSET-dflt}"
      E: "$$HOME and $${X}"
      F: "${MISSING}"
      G: "$TAG/${TAG}"
      H: "${TAG:?never fails}"
"#,
    )]);
    let mut opts = options(dir.path());
    opts.os_env = vars(&[("TAG", "1.25"), ("EMPTY", "")]);
    let loaded = load_ok(&opts);
    let web = service(&loaded, "web");
    assert_eq!(web.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[
            ("A", Some("dflt")),
            ("B", Some("")),
            ("C", Some("dflt")),
            ("D", Some("dflt")),
            ("E", Some("$HOME and ${X}")),
            ("F", Some("")),
            ("G", Some("1.25/1.25")),
            ("H", Some("1.25")),
        ])
    );
    assert_eq!(loaded.warnings, vec![unset_warning("MISSING")]);
}

#[test]
fn no_interpolate_keeps_templates() {
    let dir = tree(&[(
        "compose.yaml",
        "name: raw\nservices:\n  web:\n    image: \"nginx:${TAG}\"\n",
    )]);
    let mut opts = options(dir.path());
    opts.no_interpolate = true;
    let loaded = load_ok(&opts);
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("nginx:${TAG}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn required_variable_failure_names_file_line_column_path_and_message() {
    let (message, file) =
        error_of("services:\n  web:\n    image: nginx\n    environment:\n      DB_URL: ${DB_URL:?set DB_URL first}\n");
    assert_eq!(
        message,
        format!(
            "{}:5:7: services.web.environment.DB_URL: required variable DB_URL is missing a value: set DB_URL first",
            file.display()
        )
    );
}

#[test]
fn required_variable_set_but_empty_fails_only_with_the_colon_form() {
    let dir = tree(&[(
        "compose.yaml",
        "name: req\nservices:\n  web:\n    image: \"nginx${SUFFIX?}\"\n    labels:\n      l: ${SUFFIX:?must not be empty}\n",
    )]);
    let mut opts = options(dir.path());
    opts.os_env = vars(&[("SUFFIX", "")]);
    assert_eq!(
        load_err(&opts),
        format!(
            "{}:6:7: services.web.labels.l: required variable SUFFIX is missing a value: must not be empty",
            dir.path().join("compose.yaml").display()
        )
    );
}

#[test]
fn required_variable_in_a_list_item() {
    let (message, file) = error_of("services:\n  web:\n    image: nginx\n    command:\n      - run\n      - ${ARG?}\n");
    assert_eq!(
        message,
        format!(
            "{}:6:9: services.web.command[1]: required variable ARG is missing a value",
            file.display()
        )
    );
}

#[test]
fn dotenv_feeds_interpolation_and_os_env_wins() {
    let dir = tree(&[
        (
            "compose.yaml",
            "name: dot\nservices:\n  web:\n    image: \"app:${TAG}\"\n    environment:\n      OTHER: ${OTHER}\n",
        ),
        (".env", "TAG=from-dotenv\nOTHER=dot\n"),
    ]);
    let loaded = load_ok(&options(dir.path()));
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("app:from-dotenv"));

    let mut opts = options(dir.path());
    opts.os_env = vars(&[("TAG", "from-os")]);
    let loaded = load_ok(&opts);
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("app:from-os"));
    assert_eq!(environment(&loaded, "web"), env_of(&[("OTHER", Some("dot"))]));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn dotenv_of_the_project_dir_is_used_from_a_subdirectory() {
    let dir = tree(&[
        (
            "compose.yaml",
            "name: dot\nservices:\n  web:\n    image: \"app:${TAG}\"\n",
        ),
        (".env", "TAG=project\n"),
        ("sub/readme", ""),
    ]);
    let loaded = load_ok(&options(&dir.path().join("sub")));
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("app:project"));
}

#[test]
fn env_files_replace_dotenv_and_later_files_override_earlier_ones() {
    let dir = tree(&[
        (
            "compose.yaml",
            "name: envfiles\nservices:\n  web:\n    image: app\n    environment:\n      A: ${A}\n      B: ${B}\n      C: ${C}\n      D: ${D}\n",
        ),
        (".env", "A=dotenv\nB=dotenv\nC=dotenv\n"),
        ("one.env", "A=one\nB=one\nD=one\n"),
        ("conf/two.env", "B=two\nD=${A}-two\n"),
    ]);
    let mut opts = options(dir.path());
    opts.env_files = vec![PathBuf::from("one.env"), PathBuf::from("conf/two.env")];
    opts.os_env = vars(&[("D", "os")]);
    let loaded = load_ok(&opts);
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[
            ("A", Some("one")),
            ("B", Some("two")),
            ("C", Some("")),
            ("D", Some("os"))
        ])
    );
    assert_eq!(loaded.warnings, vec![unset_warning("C")]);
}

#[test]
fn compose_project_name_is_available_to_interpolation() {
    let text = "services:\n  web:\n    image: nginx\n    container_name: ${COMPOSE_PROJECT_NAME}-web\n";
    let dir = tree(&[("compose.yaml", text)]);
    let mut opts = options(dir.path());
    opts.project_name = Some("demo".into());
    let loaded = load_ok(&opts);
    assert_eq!(service(&loaded, "web").container_name.as_deref(), Some("demo-web"));

    let dir = tree(&[("Shop/compose.yaml", text)]);
    let loaded = load_ok(&options(&dir.path().join("Shop")));
    assert_eq!(loaded.project.name, "shop");
    assert_eq!(service(&loaded, "web").container_name.as_deref(), Some("shop-web"));
}

// --- 2. project name -----------------------------------------------------

#[test]
fn project_name_precedence() {
    let dir = tree(&[(
        "My_App/compose.yaml",
        "name: ${NAME_VAR:-from-file}\nservices:\n  web:\n    image: nginx\n",
    )]);
    let app = dir.path().join("My_App");
    let name = |opts: &LoadOptions| load_ok(opts).project.name;

    // `name:`, interpolated.
    assert_eq!(name(&options(&app)), "from-file");
    let mut opts = options(&app);
    opts.os_env = vars(&[("NAME_VAR", "interpolated")]);
    assert_eq!(name(&opts), "interpolated");

    // COMPOSE_PROJECT_NAME from .env beats `name:`.
    fs::write(app.join(".env"), "COMPOSE_PROJECT_NAME=from-dotenv\n").unwrap();
    assert_eq!(name(&options(&app)), "from-dotenv");

    // COMPOSE_PROJECT_NAME from the OS beats .env.
    let mut opts = options(&app);
    opts.os_env = vars(&[("COMPOSE_PROJECT_NAME", "from-os")]);
    assert_eq!(name(&opts), "from-os");

    // The option beats everything.
    opts.project_name = Some("explicit".into());
    assert_eq!(name(&opts), "explicit");

    // Without any of them: the directory's name, normalized.
    fs::remove_file(app.join(".env")).unwrap();
    fs::write(app.join("compose.yaml"), "services:\n  web:\n    image: nginx\n").unwrap();
    assert_eq!(name(&options(&app)), "my_app");
}

#[test]
fn invalid_explicit_project_names_are_errors() {
    let dir = tree(&[("compose.yaml", "services:\n  web:\n    image: nginx\n")]);
    let mut opts = options(dir.path());
    opts.project_name = Some("Bad Name".into());
    assert_eq!(
        load_err(&opts),
        "invalid project name \"Bad Name\": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    );

    let mut opts = options(dir.path());
    opts.os_env = vars(&[("COMPOSE_PROJECT_NAME", "UPPER")]);
    assert!(load_err(&opts).starts_with("invalid project name \"UPPER\": "));
}

// --- 3. file discovery and merging ---------------------------------------

#[test]
fn discovers_compose_yaml_upwards_and_merges_the_override() {
    let dir = tree(&[
        (
            "compose.yaml",
            "name: disc\nservices:\n  web:\n    image: nginx\n    environment:\n      A: base\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    environment:\n      B: override\n  debug:\n    image: busybox\n",
        ),
        ("a/b/.keep", ""),
    ]);
    let loaded = load_ok(&options(&dir.path().join("a/b")));
    assert_eq!(
        loaded.files,
        vec![
            dir.path().join("compose.yaml"),
            dir.path().join("compose.override.yaml")
        ]
    );
    assert_eq!(loaded.project_dir, dir.path());
    assert_eq!(names(&loaded), ["debug", "web"]);
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[("A", Some("base")), ("B", Some("override"))])
    );
}

#[test]
fn no_compose_file_is_an_error() {
    let dir = tree(&[]);
    let message = load_err(&options(dir.path()));
    assert!(
        message.starts_with("no configuration file provided: not found"),
        "{message}"
    );
    assert!(message.contains(&path_str(dir.path())), "{message}");
}

#[test]
fn compose_file_variable_lists_files_with_colons() {
    let dir = tree(&[
        ("base.yaml", "name: cf\nservices:\n  web:\n    image: nginx\n"),
        (
            "extra/more.yaml",
            "services:\n  web:\n    image: nginx:2\n  db:\n    image: postgres\n",
        ),
        ("compose.yaml", "services:\n  ignored:\n    image: x\n"),
    ]);
    let mut opts = options(dir.path());
    opts.os_env = vars(&[("COMPOSE_FILE", "base.yaml:extra/more.yaml")]);
    let loaded = load_ok(&opts);
    assert_eq!(
        loaded.files,
        vec![dir.path().join("base.yaml"), dir.path().join("extra/more.yaml")]
    );
    assert_eq!(names(&loaded), ["db", "web"]);
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("nginx:2"));
}

#[test]
fn multiple_files_follow_the_merge_rules() {
    let dir = tree(&[
        (
            "base.yaml",
            r#"name: merge
services:
  web:
    image: nginx
    command: ["nginx", "-g", "daemon off;"]
    environment:
      - A=1
      - B=2
    ports:
      - "8080:80"
      - "443:443"
  worker:
    image: busybox
    ports: ["9000:9000"]
    dns: [1.1.1.1]
    labels: {a: "1", b: "2"}
"#,
        ),
        (
            "over.yaml",
            r#"services:
  web:
    command: ["nginx-debug"]
    environment:
      B: 3
      C: "4"
    ports:
      - "8080:80"
      - "8081:81"
  worker:
    ports: !reset []
    labels: !override {c: "3"}
"#,
        ),
    ]);
    let mut opts = options(dir.path());
    opts.files = vec![PathBuf::from("base.yaml"), PathBuf::from("over.yaml")];
    let loaded = load_ok(&opts);
    let web = service(&loaded, "web");
    assert_eq!(web.command, Some(Command(vec!["nginx-debug".into()])));
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[("A", Some("1")), ("B", Some("3")), ("C", Some("4"))])
    );
    assert_eq!(
        web.ports,
        vec![
            port(80, Some("8080"), None, "tcp"),
            port(443, Some("443"), None, "tcp"),
            port(81, Some("8081"), None, "tcp"),
        ]
    );
    let worker = service(&loaded, "worker");
    assert!(worker.ports.is_empty(), "{:?}", worker.ports);
    assert_eq!(worker.dns, vec!["1.1.1.1".to_string()]);
    assert_eq!(worker.labels.0, BTreeMap::from([("c".to_string(), "3".to_string())]));
}

#[test]
fn relative_paths_of_later_files_resolve_against_the_project_dir() {
    let dir = tree(&[
        ("compose.yaml", "name: first\nservices:\n  web:\n    image: nginx\n"),
        (
            "overrides/dev.yaml",
            "name: second\nservices:\n  web:\n    build: ./app\n    volumes: [\"./src:/src\"]\n",
        ),
    ]);
    let mut opts = options(dir.path());
    opts.files = vec![PathBuf::from("compose.yaml"), PathBuf::from("overrides/dev.yaml")];
    let loaded = load_ok(&opts);
    // The last `name:` wins.
    assert_eq!(loaded.project.name, "second");
    assert_eq!(loaded.project_dir, dir.path());
    let web = service(&loaded, "web");
    assert_eq!(
        web.build.as_ref().and_then(|b| b.context.clone()),
        Some(path_str(&dir.path().join("app")))
    );
    assert_eq!(web.volumes[0].source, Some(path_str(&dir.path().join("src"))));
}

// --- 4. extends ----------------------------------------------------------

#[test]
fn extends_in_the_same_file() {
    let dir = tree(&[(
        "compose.yaml",
        r#"name: ext
services:
  base:
    image: busybox
    environment: {A: "1", B: "1"}
    volumes: ["./data:/data"]
    command: [sleep, "10"]
  web:
    extends: base
    environment: {B: "2"}
    command: [sleep, "20"]
"#,
    )]);
    let loaded = load_ok(&options(dir.path()));
    let web = service(&loaded, "web");
    assert_eq!(web.image.as_deref(), Some("busybox"));
    assert!(web.extends.is_none());
    assert_eq!(web.command, Some(Command(vec!["sleep".into(), "20".into()])));
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[("A", Some("1")), ("B", Some("2"))])
    );
    assert_eq!(web.volumes.len(), 1);
    assert_eq!(
        web.volumes[0].source.as_deref(),
        Some(path_str(&dir.path().join("data")).as_str())
    );
}

#[test]
fn extends_from_another_directory_resolves_paths_against_the_base_file() {
    let dir = tree(&[
        (
            "app/compose.yaml",
            r#"name: ext
services:
  web:
    extends:
      file: ../common/base.yaml
      service: base
    environment:
      LEVEL: top
    volumes:
      - ./local:/local
"#,
        ),
        (
            "common/base.yaml",
            r#"services:
  base:
    build: ./ctx
    volumes:
      - ./conf:/etc/conf:ro
    environment:
      LEVEL: base
      FROM_BASE: "yes"
"#,
        ),
    ]);
    let loaded = load_ok(&options(&dir.path().join("app")));
    let web = service(&loaded, "web");
    let context = web.build.as_ref().and_then(|b| b.context.clone());
    assert_eq!(context, Some(path_str(&dir.path().join("common/ctx"))));
    let mounts: Vec<(VolumeType, Option<&str>, &str, bool)> = web
        .volumes
        .iter()
        .map(|v| (v.kind, v.source.as_deref(), v.target.as_str(), v.read_only))
        .collect();
    let conf = path_str(&dir.path().join("common/conf"));
    let local = path_str(&dir.path().join("app/local"));
    assert_eq!(
        mounts,
        vec![
            (VolumeType::Bind, Some(conf.as_str()), "/etc/conf", true),
            (VolumeType::Bind, Some(local.as_str()), "/local", false),
        ]
    );
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[("FROM_BASE", Some("yes")), ("LEVEL", Some("top"))])
    );
}

#[test]
fn extends_chains_over_several_levels_and_files() {
    let dir = tree(&[
        (
            "compose.yaml",
            r#"name: chain
services:
  top:
    extends: middle
    environment: {TOP: "1"}
  middle:
    extends:
      file: lib/bottom.yaml
      service: bottom
    environment: {MIDDLE: "1", SHARED: middle}
"#,
        ),
        (
            "lib/bottom.yaml",
            r#"services:
  bottom:
    extends: root
    environment: {BOTTOM: "1", SHARED: bottom}
  root:
    image: alpine
    env_file: root.env
"#,
        ),
        ("lib/root.env", "ROOT=1\n"),
    ]);
    let loaded = load_ok(&options(dir.path()));
    assert_eq!(service(&loaded, "top").image.as_deref(), Some("alpine"));
    assert_eq!(
        environment(&loaded, "top"),
        env_of(&[
            ("BOTTOM", Some("1")),
            ("MIDDLE", Some("1")),
            ("ROOT", Some("1")),
            ("SHARED", Some("middle")),
            ("TOP", Some("1")),
        ])
    );
    assert_eq!(names(&loaded), ["middle", "top"]);
}

#[test]
fn circular_extends_is_an_error() {
    let (message, file) = error_of(
        "services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends:\n      service: c\n  c:\n    extends: a\n",
    );
    let f = file.display();
    assert_eq!(
        message,
        format!("{f}:4:5: services.a.extends: circular extends: {f}:a → {f}:b → {f}:c → {f}:a")
    );
}

#[test]
fn circular_extends_across_files_is_an_error() {
    let dir = tree(&[
        (
            "compose.yaml",
            "services:\n  web:\n    extends:\n      file: other.yaml\n      service: base\n",
        ),
        (
            "other.yaml",
            "services:\n  base:\n    image: x\n    extends:\n      file: compose.yaml\n      service: web\n",
        ),
    ]);
    let main = path_str(&dir.path().join("compose.yaml"));
    let other = path_str(&dir.path().join("other.yaml"));
    assert_eq!(
        load_err(&options(dir.path())),
        format!("{main}:3:5: services.web.extends: circular extends: {main}:web → {other}:base → {main}:web")
    );
}

#[test]
fn files_extending_each_other_without_a_cycle_load() {
    let dir = tree(&[
        (
            "compose.yaml",
            "name: mutual\nservices:\n  web:\n    extends:\n      file: other.yaml\n      service: base\n  db:\n    image: postgres\n",
        ),
        (
            "other.yaml",
            "services:\n  base:\n    image: nginx\n  helper:\n    extends:\n      file: compose.yaml\n      service: db\n",
        ),
    ]);
    let loaded = load_ok(&options(dir.path()));
    assert_eq!(service(&loaded, "web").image.as_deref(), Some("nginx"));
}

#[test]
fn extending_a_missing_service_is_an_error() {
    let (message, file) = error_of("services:\n  web:\n    image: x\n    extends: nothere\n");
    assert_eq!(
        message,
        format!(
            "{}:4:5: services.web.extends: cannot extend service \"nothere\": no such service",
            file.display()
        )
    );

    let dir = tree(&[
        (
            "compose.yaml",
            "services:\n  web:\n    extends:\n      file: base.yaml\n      service: nothere\n",
        ),
        ("base.yaml", "services:\n  base:\n    image: x\n"),
    ]);
    let file = dir.path().join("compose.yaml");
    assert_eq!(
        load_err(&options(dir.path())),
        format!(
            "{}:3:5: services.web.extends: cannot extend service \"nothere\": not defined in {}",
            file.display(),
            dir.path().join("base.yaml").display()
        )
    );
}

// --- 5. include ----------------------------------------------------------

fn include_tree() -> TempDir {
    tree(&[
        (
            "compose.yaml",
            r#"name: inc
include:
  - sub/compose.yaml
  - path: other/compose.yaml
    env_file: other/custom.env
services:
  web:
    image: nginx
    depends_on: [api, db]
"#,
        ),
        (
            "sub/compose.yaml",
            "services:\n  api:\n    image: \"api:${API_TAG}\"\n    volumes: [\"./data:/data\"]\n    build: .\n",
        ),
        ("sub/.env", "API_TAG=from-sub\n"),
        (
            "other/compose.yaml",
            "services:\n  db:\n    image: \"postgres:${PG_TAG}\"\n",
        ),
        ("other/custom.env", "PG_TAG=16\n"),
        ("other/.env", "PG_TAG=ignored\n"),
    ])
}

#[test]
fn include_short_and_long_forms() {
    let dir = include_tree();
    let loaded = load_ok(&options(dir.path()));
    assert_eq!(names(&loaded), ["api", "db", "web"]);
    let api = service(&loaded, "api");
    assert_eq!(api.image.as_deref(), Some("api:from-sub"));
    assert_eq!(api.volumes[0].source, Some(path_str(&dir.path().join("sub/data"))));
    assert_eq!(
        api.build.as_ref().and_then(|b| b.context.clone()),
        Some(path_str(&dir.path().join("sub")))
    );
    assert_eq!(service(&loaded, "db").image.as_deref(), Some("postgres:16"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn including_project_variables_override_the_included_env() {
    let dir = include_tree();
    fs::write(dir.path().join(".env"), "API_TAG=from-parent\n").unwrap();
    let mut opts = options(dir.path());
    opts.os_env = vars(&[("PG_TAG", "from-os")]);
    let loaded = load_ok(&opts);
    assert_eq!(service(&loaded, "api").image.as_deref(), Some("api:from-parent"));
    assert_eq!(service(&loaded, "db").image.as_deref(), Some("postgres:from-os"));
}

#[test]
fn include_conflicting_with_a_local_service_is_an_error() {
    let dir = tree(&[
        (
            "compose.yaml",
            "include:\n  - sub/compose.yaml\nservices:\n  api:\n    image: other\n",
        ),
        ("sub/compose.yaml", "services:\n  api:\n    image: api\n"),
    ]);
    assert_eq!(
        load_err(&options(dir.path())),
        format!(
            "{}:2:5: include[0]: services.api conflicts with the definition in an included file",
            dir.path().join("compose.yaml").display()
        )
    );
}

// --- 6. profiles ---------------------------------------------------------

const PROFILES: &str = r#"name: prof
services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: busybox
    profiles: [tools, ops]
"#;

#[test]
fn profiles_enable_and_disable_services() {
    let dir = tree(&[("compose.yaml", PROFILES)]);
    let with = |profiles: &[&str], os: &[(&str, &str)]| {
        let mut opts = options(dir.path());
        opts.profiles = profiles.iter().map(|p| p.to_string()).collect();
        opts.os_env = vars(os);
        load_ok(&opts)
    };
    let loaded = with(&[], &[]);
    assert_eq!(names(&loaded), ["web"]);
    let all: BTreeSet<String> = ["debug", "ops", "tools"].iter().map(|p| p.to_string()).collect();
    assert_eq!(loaded.profiles, all);

    assert_eq!(names(&with(&["debug"], &[])), ["debug", "web"]);
    assert_eq!(names(&with(&["ops"], &[])), ["tools", "web"]);
    assert_eq!(
        names(&with(&[], &[("COMPOSE_PROFILES", "tools,debug")])),
        ["debug", "tools", "web"]
    );
    // The option wins over the variable.
    assert_eq!(
        names(&with(&["debug"], &[("COMPOSE_PROFILES", "tools")])),
        ["debug", "web"]
    );
    let everything = with(&["*"], &[]);
    assert_eq!(names(&everything), ["debug", "tools", "web"]);
    assert_eq!(everything.profiles, all);
}

#[test]
fn compose_profiles_from_dotenv() {
    let dir = tree(&[("compose.yaml", PROFILES), (".env", "COMPOSE_PROFILES=debug\n")]);
    assert_eq!(names(&load_ok(&options(dir.path()))), ["debug", "web"]);
}

#[test]
fn required_dependency_on_a_disabled_service_is_an_error() {
    let (message, file) = error_of(
        "services:\n  web:\n    image: nginx\n    depends_on:\n      - debug\n  debug:\n    image: busybox\n    profiles: [debug]\n",
    );
    assert_eq!(
        message,
        format!(
            "{}:5:9: services.web.depends_on.debug: service \"debug\" was pulled in as a dependency of service \"web\" but is not enabled by the active profiles",
            file.display()
        )
    );
}

#[test]
fn optional_dependency_on_a_disabled_service_is_dropped() {
    let dir = tree(&[(
        "compose.yaml",
        "name: opt\nservices:\n  web:\n    image: nginx\n    depends_on:\n      debug:\n        condition: service_started\n        required: false\n  debug:\n    image: busybox\n    profiles: [debug]\n",
    )]);
    let loaded = load_ok(&options(dir.path()));
    assert_eq!(names(&loaded), ["web"]);
    assert!(service(&loaded, "web").depends_on.is_empty());
    assert_eq!(
        loaded.warnings,
        vec!["service \"web\": optional dependency \"debug\" is disabled by profiles; ignored".to_string()]
    );
}

// --- 7. env_file ---------------------------------------------------------

#[test]
fn env_files_merge_into_environment() {
    let dir = tree(&[
        (
            "compose.yaml",
            r#"name: envf
services:
  web:
    image: nginx
    env_file:
      - common.env
      - path: optional.env
        required: false
      - path: raw.env
        format: raw
      - override.env
    environment:
      SHARED: from-environment
      PASS:
      NOPE:
"#,
        ),
        (
            "common.env",
            "SHARED=from-file\nONLY_FILE=file\nINTERP=${HOST_VAR}\nLATER=common\n",
        ),
        ("raw.env", "RAW=$NOT_INTERPOLATED 'quoted'\n"),
        ("override.env", "LATER=override\n"),
    ]);
    let mut opts = options(dir.path());
    opts.os_env = vars(&[
        ("PASS", "passed"),
        ("HOST_VAR", "hv"),
        ("ONLY_FILE", "os-does-not-leak"),
    ]);
    let loaded = load_ok(&opts);
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[
            ("INTERP", Some("hv")),
            ("LATER", Some("override")),
            ("NOPE", None),
            ("ONLY_FILE", Some("file")),
            ("PASS", Some("passed")),
            ("RAW", Some("$NOT_INTERPOLATED 'quoted'")),
            ("SHARED", Some("from-environment")),
        ])
    );
    assert!(service(&loaded, "web").env_file.is_empty());
}

#[test]
fn bare_environment_keys_take_the_os_value_or_stay_unset() {
    let dir = tree(&[(
        "compose.yaml",
        "name: bare\nservices:\n  web:\n    image: nginx\n    environment:\n      - FROM_OS\n      - NOT_SET\n      - EMPTY=\n",
    )]);
    let mut opts = options(dir.path());
    opts.os_env = vars(&[("FROM_OS", "value")]);
    let loaded = load_ok(&opts);
    assert_eq!(
        environment(&loaded, "web"),
        env_of(&[("EMPTY", Some("")), ("FROM_OS", Some("value")), ("NOT_SET", None)])
    );
}

#[test]
fn missing_required_env_file_is_an_error() {
    let dir = tree(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    env_file:\n      - present.env\n      - missing.env\n",
    )]);
    fs::write(dir.path().join("present.env"), "A=1\n").unwrap();
    assert_eq!(
        load_err(&options(dir.path())),
        format!(
            "{}:6:9: services.web.env_file[1]: env file {} not found",
            dir.path().join("compose.yaml").display(),
            dir.path().join("missing.env").display()
        )
    );
}

// --- 8. normalization ----------------------------------------------------

#[test]
fn normalization_is_visible_in_the_model() {
    let dir = tree(&[(
        "compose.yaml",
        r#"name: norm
services:
  web:
    image: nginx
    ports:
      - 80
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - data:/var/lib/data
      - /abs/path:/abs
    depends_on: [db]
    networks: [front, outside]
  db:
    image: postgres
  sidecar:
    image: busybox
    network_mode: "service:web"
    volumes_from: [db]
  linker:
    image: busybox
    links: ["db:database"]
volumes:
  data:
  named:
    name: custom-name
  ext:
    external: true
networks:
  front:
  outside:
    external: true
"#,
    )]);
    let loaded = load_ok(&options(dir.path()));
    let project = &loaded.project;
    let web = service(&loaded, "web");
    assert_eq!(
        web.ports,
        vec![
            port(80, None, None, "tcp"),
            port(80, Some("8080"), None, "tcp"),
            port(53, Some("5353"), Some("127.0.0.1"), "udp"),
        ]
    );
    let html = path_str(&dir.path().join("html"));
    let mounts: Vec<(VolumeType, Option<&str>, &str, bool)> = web
        .volumes
        .iter()
        .map(|v| (v.kind, v.source.as_deref(), v.target.as_str(), v.read_only))
        .collect();
    assert_eq!(
        mounts,
        vec![
            (VolumeType::Bind, Some(html.as_str()), "/usr/share/nginx/html", true),
            (VolumeType::Volume, Some("data"), "/var/lib/data", false),
            (VolumeType::Bind, Some("/abs/path"), "/abs", false),
        ]
    );
    assert_eq!(
        web.depends_on,
        BTreeMap::from([("db".to_string(), DependsOn::started())])
    );
    let web_networks: Vec<&str> = web.networks.keys().map(String::as_str).collect();
    assert_eq!(web_networks, ["front", "outside"]);

    let db_networks: Vec<&str> = service(&loaded, "db").networks.keys().map(String::as_str).collect();
    assert_eq!(db_networks, ["default"]);
    let network_names: BTreeMap<&str, Option<&str>> = project
        .networks
        .iter()
        .map(|(k, n)| (k.as_str(), n.name.as_deref()))
        .collect();
    assert_eq!(
        network_names,
        BTreeMap::from([
            ("default", Some("norm_default")),
            ("front", Some("norm_front")),
            ("outside", Some("outside")),
        ])
    );
    let volume_names: BTreeMap<&str, Option<&str>> = project
        .volumes
        .iter()
        .map(|(k, v)| (k.as_str(), v.name.as_deref()))
        .collect();
    assert_eq!(
        volume_names,
        BTreeMap::from([
            ("data", Some("norm_data")),
            ("ext", Some("ext")),
            ("named", Some("custom-name")),
        ])
    );

    let implied = |restart: bool| DependsOn {
        condition: Condition::ServiceStarted,
        restart: Some(restart),
        required: true,
    };
    let sidecar = service(&loaded, "sidecar");
    assert!(sidecar.networks.is_empty(), "{:?}", sidecar.networks);
    assert_eq!(
        sidecar.depends_on,
        BTreeMap::from([("db".to_string(), implied(false)), ("web".to_string(), implied(true))])
    );
    assert_eq!(
        service(&loaded, "linker").depends_on,
        BTreeMap::from([("db".to_string(), implied(true))])
    );
}

#[test]
fn depends_on_long_form_keeps_conditions() {
    let dir = tree(&[(
        "compose.yaml",
        "name: dep\nservices:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      init:\n        condition: service_completed_successfully\n  db:\n    image: postgres\n  init:\n    image: busybox\n",
    )]);
    let loaded = load_ok(&options(dir.path()));
    let web = service(&loaded, "web");
    assert_eq!(web.depends_on["db"].condition, Condition::ServiceHealthy);
    assert_eq!(web.depends_on["db"].restart, Some(true));
    assert_eq!(
        web.depends_on["init"].condition,
        Condition::ServiceCompletedSuccessfully
    );
    assert!(web.depends_on["init"].required);
}

// --- 9. validation errors ------------------------------------------------

fn assert_error(text: &str, expected_suffix: &str) {
    let (message, file) = error_of(text);
    assert_eq!(message, format!("{}:{expected_suffix}", file.display()));
}

#[test]
fn unknown_key_suggests_the_right_one() {
    assert_error(
        "services:\n  web:\n    imgae: nginx\n",
        "3:5: services.web.imgae: unknown key `imgae` (did you mean `image`?)",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\nvolumez:\n  data:\n",
        "4:1: volumez: unknown key `volumez` (did you mean `volumes`?)",
    );
}

#[test]
fn wrong_types_are_errors() {
    assert_error(
        "services:\n  web:\n    image: nginx\n    ports: 80\n",
        "4:5: services.web.ports: expected a list, found a number",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\n    mem_limit: lots\n",
        "4:5: services.web.mem_limit: invalid size \"lots\": expected a number",
    );
}

#[test]
fn undefined_references_are_errors() {
    assert_error(
        "services:\n  web:\n    image: nginx\n    networks:\n      back:\n",
        "5:7: services.web.networks.back: service \"web\" refers to undefined network \"back\"",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - ./ok:/ok\n      - cache:/cache\n",
        "6:9: services.web.volumes[1]: service \"web\" refers to undefined volume \"cache\"",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\n    secrets:\n      - token\n",
        "5:9: services.web.secrets[0]: service \"web\" refers to undefined secret \"token\"",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_healthy\n",
        "5:7: services.web.depends_on.db: service \"web\" refers to undefined service \"db\"",
    );
    // Implied dependencies point at the entry that implies them.
    assert_error(
        "services:\n  web:\n    image: nginx\n    links: [cache]\n    volumes_from:\n      - container:x\n      - data:ro\n",
        "4:13: services.web.links[0]: service \"web\" refers to undefined service \"cache\"",
    );
    assert_error(
        "services:\n  web:\n    image: nginx\n    volumes_from:\n      - container:x\n      - data:ro\n",
        "6:9: services.web.volumes_from[1]: service \"web\" refers to undefined service \"data\"",
    );
}

#[test]
fn dependency_cycle_names_the_whole_cycle() {
    assert_error(
        "services:\n  b:\n    image: x\n    depends_on: [c]\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_started\n  c:\n    image: x\n    depends_on: [a]\n",
        "8:7: services.a.depends_on.b: dependency cycle: a → b → c → a",
    );
}

#[test]
fn container_name_with_replicas_is_an_error() {
    assert_error(
        "services:\n  web:\n    image: nginx\n    container_name: web\n    deploy:\n      replicas: 2\n",
        "4:5: services.web.container_name: service \"web\" sets container_name, so it cannot have more than one replica",
    );
    let dir = tree(&[(
        "compose.yaml",
        "name: one\nservices:\n  web:\n    image: nginx\n    container_name: web\n    scale: 1\n",
    )]);
    load_ok(&options(dir.path()));
}

#[test]
fn host_network_mode_with_ports_is_an_error() {
    assert_error(
        "services:\n  web:\n    image: nginx\n    network_mode: host\n    ports: [\"80:80\"]\n",
        "5:5: services.web.ports: service \"web\": ports cannot be published with network_mode: host",
    );
}

#[test]
fn yaml_syntax_error_names_the_line() {
    let (message, file) = error_of("services:\n  web:\n    image: nginx\n   bad: [\n");
    let prefix = format!("{}:4:", file.display());
    assert_eq!(
        message,
        format!(
            "{prefix}4: did not find expected key at line 4 column 4, while parsing a block mapping at line 2 column 3"
        )
    );
}

#[test]
fn service_without_image_or_build_is_an_error() {
    assert_error(
        "services:\n  web:\n    command: echo\n",
        "2:3: services.web: service \"web\" has neither an image nor a build context specified",
    );
}

// --- 10. config hash -----------------------------------------------------

fn hash_of(text: &str, profiles: &[&str]) -> String {
    let dir = tree(&[("compose.yaml", text)]);
    let mut opts = options(dir.path());
    opts.project_name = Some("hash".into());
    opts.profiles = profiles.iter().map(|p| p.to_string()).collect();
    service_hash(service(&load_ok(&opts), "web"))
}

#[test]
fn config_hash_ignores_form_and_orchestration_only_changes() {
    let base = hash_of(
        "services:\n  web:\n    image: nginx\n    environment:\n      A: \"1\"\n      B: \"2\"\n    ports: [\"80:80\"]\n  db:\n    image: pg\n",
        &[],
    );
    let reordered = hash_of(
        "services:\n  db:\n    image: pg\n  web:\n    ports: [\"80:80\"]\n    environment:\n      - B=2\n      - A=1\n    image: nginx\n",
        &[],
    );
    assert_eq!(base, reordered);

    let changed = hash_of(
        "services:\n  web:\n    image: nginx\n    environment:\n      A: \"1\"\n      B: \"3\"\n    ports: [\"80:80\"]\n  db:\n    image: pg\n",
        &[],
    );
    assert_ne!(base, changed);

    let with = |extra: &str, profiles: &[&str]| {
        hash_of(
            &format!("services:\n  web:\n    image: nginx\n    environment:\n      A: \"1\"\n      B: \"2\"\n    ports: [\"80:80\"]\n{extra}  db:\n    image: pg\n"),
            profiles,
        )
    };
    assert_eq!(with("", &[]), base);
    assert_eq!(with("    deploy:\n      replicas: 3\n", &[]), base);
    assert_eq!(
        with("    deploy:\n      replicas: 2\n", &[]),
        with("    deploy:\n      replicas: 5\n", &[])
    );
    assert_eq!(with("    scale: 2\n", &[]), base);
    assert_eq!(with("    depends_on: [db]\n", &[]), base);
    assert_eq!(with("    profiles: [p]\n", &["p"]), base);
    assert_ne!(with("    command: [\"nginx\", \"-t\"]\n", &[]), base);
}
