//! The stack-file JSON Schema: the checked-in copy is current, and berth,
//! the official Compose schemas and berth's own schema agree on the corpus
//! (all accept) and on a set of invalid files (all reject).

mod common;

use std::path::{Path, PathBuf};

use berth::spec::schema::stack_file_schema;
use serde_json::Value;

use common::{corpus_dir, corpus_files, load_file, read, short_name, yaml_to_json};

const UPDATE_COMMAND: &str = "BERTH_UPDATE_SCHEMA=1 cargo test --test schema";

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/compose.schema.json")
}

fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_else(|e| panic!("cannot render the schema: {e}"));
    text.push('\n');
    text
}

#[test]
fn checked_in_schema_is_current() {
    let generated = render(&stack_file_schema());
    let path = schema_path();
    if std::env::var_os("BERTH_UPDATE_SCHEMA").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first_difference = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "{} is stale or missing (first difference at line {}): run `{UPDATE_COMMAND}` to regenerate it",
            path.display(),
            first_difference + 1
        );
    }
}

#[test]
fn schema_generation_is_deterministic() {
    assert_eq!(render(&stack_file_schema()), render(&stack_file_schema()));
}

#[test]
fn generated_schema_is_a_valid_2020_12_schema() {
    let schema = stack_file_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(schema["$id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(schema["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(schema["description"].as_str().is_some_and(|d| !d.is_empty()));
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("the generated schema is not a valid JSON Schema: {error}");
    }
}

/// A named schema to validate instances against.
struct Checker {
    name: &'static str,
    validator: jsonschema::Validator,
}

impl Checker {
    fn errors(&self, instance: &Value) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }
}

fn official(relative: &str, name: &'static str) -> Checker {
    let path = corpus_dir().join(relative);
    let schema: Value =
        serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let validator =
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("cannot compile {}: {e}", path.display()));
    Checker { name, validator }
}

fn checkers() -> Vec<Checker> {
    let ours = jsonschema::validator_for(&stack_file_schema())
        .unwrap_or_else(|e| panic!("cannot compile berth's schema: {e}"));
    vec![
        official("schema/compose-spec.json", "compose-spec (draft-07)"),
        official("schema/compose-go/compose-spec.json", "compose-go (draft 2020-12)"),
        Checker {
            name: "berth's schema",
            validator: ours,
        },
    ]
}

#[test]
fn corpus_is_accepted_by_berth_and_every_schema() {
    let checkers = checkers();
    let files = corpus_files();
    let mut failures = Vec::new();
    for file in &files {
        let name = short_name(file);
        if let Err(error) = load_file(file) {
            failures.push(format!("{name}: berth rejects it: {error}"));
        }
        let instance = yaml_to_json(&read(file));
        for checker in &checkers {
            let errors = checker.errors(&instance);
            if !errors.is_empty() {
                failures.push(format!(
                    "{name}: {} rejects it:\n    {}",
                    checker.name,
                    errors.join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files are not accepted everywhere:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    println!(
        "{} corpus files accepted by berth and {} schemas",
        files.len(),
        checkers.len()
    );
}

/// Stack files that every judge must reject: (name, YAML, a fragment of
/// berth's error message).
const INVALID: &[(&str, &str, &str)] = &[
    (
        "unknown service key",
        "services:\n  web:\n    image: nginx\n    imagee: nginx\n",
        "imagee",
    ),
    (
        "unknown top-level key",
        "servics:\n  web:\n    image: nginx\n",
        "servics",
    ),
    ("ports as a scalar", "services:\n  web:\n    image: nginx\n    ports: 80\n", "ports"),
    (
        "bogus depends_on condition",
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: bogus\n  db:\n    image: postgres\n",
        "bogus",
    ),
    ("image as a list", "services:\n  web:\n    image: [1]\n", "image"),
    (
        "ipam config with a numeric subnet and an unknown key",
        "services:\n  web:\n    image: nginx\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 1\n          bogus: 2\n",
        "subnet",
    ),
    (
        "top-level volumes as a list",
        "services:\n  web:\n    image: nginx\nvolumes: [x]\n",
        "volumes",
    ),
    (
        "healthcheck retries as a mapping",
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      retries: {}\n",
        "retries",
    ),
    ("restart as a list", "services:\n  web:\n    image: nginx\n    restart: [a]\n", "restart"),
    (
        "environment as a number",
        "services:\n  web:\n    image: nginx\n    environment: 5\n",
        "environment",
    ),
    (
        "unknown build key",
        "services:\n  web:\n    build:\n      context: .\n      dockerfil: Dockerfile\n",
        "dockerfil",
    ),
    (
        "command as a mapping",
        "services:\n  web:\n    image: nginx\n    command:\n      a: 1\n",
        "command",
    ),
    (
        "unknown key in a long-syntax volume",
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n        bogus: true\nvolumes:\n  data:\n",
        "bogus",
    ),
    (
        "unknown key in a top-level secret",
        "services:\n  web:\n    image: nginx\nsecrets:\n  s:\n    file: ./s.txt\n    bogus: 1\n",
        "bogus",
    ),
    (
        "services as a list",
        "services:\n  - web\n",
        "services",
    ),
    (
        "deploy resources cpus as a list",
        "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n          cpus: [1]\n",
        "cpus",
    ),
];

const VALID_CONTROL: &str =
    "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n    x-note: fine\nx-top: fine\n";

fn load_text(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let file = dir.join(format!("{}.yaml", name.replace(' ', "-")));
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    load_file(&file).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn invalid_files_are_rejected_by_berth_and_every_schema() {
    let checkers = checkers();
    let dir = tempfile::tempdir().expect("temp dir");

    // The harness itself must accept a good file, or every rejection below
    // would prove nothing.
    assert_eq!(load_text(dir.path(), "valid control", VALID_CONTROL), Ok(()));
    for checker in &checkers {
        assert_eq!(
            checker.errors(&yaml_to_json(VALID_CONTROL)),
            Vec::<String>::new(),
            "{}",
            checker.name
        );
    }

    assert!(INVALID.len() >= 8);
    let mut failures = Vec::new();
    for (name, text, fragment) in INVALID {
        match load_text(dir.path(), name, text) {
            Ok(()) => failures.push(format!("{name}: berth accepts it")),
            Err(message) if !message.contains(fragment) => failures.push(format!(
                "{name}: berth rejects it, but its message lacks {fragment:?}: {message}"
            )),
            Err(_) => {}
        }
        let instance = yaml_to_json(text);
        for checker in &checkers {
            if checker.validator.is_valid(&instance) {
                failures.push(format!("{name}: {} accepts it", checker.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invalid stack files not rejected everywhere:\n{}",
        failures.join("\n")
    );
}
