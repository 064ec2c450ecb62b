//! Every file of the real-world corpus loads and resolves into a sane
//! project.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use berth::spec::hash::service_hash;

use common::{corpus_files, load_file, short_name};

/// The name compose derives from a directory: lowercased, only
/// `[a-z0-9_-]`, not starting with `_` or `-`.
fn expected_project_name(file: &Path) -> String {
    let dir = file
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    dir.chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .to_string()
}

fn is_sane_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

#[test]
fn every_corpus_file_loads_and_resolves() {
    let files = corpus_files();
    let mut failures = Vec::new();
    let mut services_total = 0;
    for file in &files {
        let name = short_name(file);
        let loaded = match load_file(file) {
            Ok(loaded) => loaded,
            Err(error) => {
                failures.push(format!("{name}: does not load: {error}"));
                continue;
            }
        };
        let project = &loaded.project;
        let mut problems = Vec::new();

        if !is_sane_project_name(&project.name) {
            problems.push(format!(
                "project name {:?} is not a valid compose project name",
                project.name
            ));
        }
        // Only one corpus file sets `name:`, and it matches its directory.
        let expected = expected_project_name(file);
        if project.name != expected {
            problems.push(format!("project name {:?}, expected {expected:?}", project.name));
        }
        let file_dir = file.parent().and_then(|d| d.canonicalize().ok());
        if !loaded.project_dir.is_absolute() || loaded.project_dir.canonicalize().ok() != file_dir {
            problems.push(format!("project directory {}", loaded.project_dir.display()));
        }
        if project.services.is_empty() {
            problems.push("no services".to_string());
        }
        for (service_name, service) in &project.services {
            if service.image.is_none() && service.build.is_none() {
                problems.push(format!("service {service_name} has neither image nor build"));
            }
            let hash = service_hash(service);
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(format!("service {service_name}: bad config hash {hash:?}"));
            }
            for volume in &service.volumes {
                if let Some(source) = volume.source.as_deref().filter(|s| s.starts_with('.')) {
                    problems.push(format!(
                        "service {service_name}: relative bind source {source:?} left unresolved"
                    ));
                }
            }
            for dependency in service.depends_on.keys() {
                if !project.services.contains_key(dependency) {
                    problems.push(format!("service {service_name} depends on unknown {dependency}"));
                }
            }
        }

        // The dependency graph covers every service exactly once.
        let waves = loaded.graph.start_waves();
        let ordered: Vec<&String> = waves.iter().flatten().collect();
        let unique: BTreeSet<&String> = ordered.iter().copied().collect();
        let expected_services: BTreeSet<&String> = project.services.keys().collect();
        if ordered.len() != unique.len() || unique != expected_services {
            problems.push(format!(
                "start order {waves:?} does not cover the services exactly once"
            ));
        }

        println!(
            "{name}: project {:?}, {} service(s), {} network(s), {} volume(s), {} secret(s), {} start wave(s), {} warning(s)",
            project.name,
            project.services.len(),
            project.networks.len(),
            project.volumes.len(),
            project.secrets.len(),
            waves.len(),
            loaded.warnings.len(),
        );
        for warning in &loaded.warnings {
            println!("    warning: {warning}");
        }
        services_total += project.services.len();
        failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    println!("{} files, {services_total} services", files.len());
    assert!(
        failures.is_empty(),
        "{} problem(s) in the corpus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs the built binary in the file's directory with only the corpus
/// variables in its environment.
fn berth(file: &Path, args: &[&str]) -> std::process::Output {
    let dir = file.parent().unwrap_or(Path::new("/"));
    std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-f")
        .arg(file)
        .arg("config")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(common::corpus_env())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO_BIN_EXE_berth")))
}

#[test]
fn berth_config_accepts_every_corpus_file() {
    let files = corpus_files();
    let mut failures = Vec::new();
    for file in &files {
        let name = short_name(file);
        let quiet = berth(file, &["-q"]);
        if !quiet.status.success() {
            failures.push(format!(
                "{name}: `berth config -q` exited with {}: {}",
                quiet.status,
                String::from_utf8_lossy(&quiet.stderr).trim()
            ));
            continue;
        }
        if !quiet.stdout.is_empty() {
            failures.push(format!(
                "{name}: `berth config -q` printed to stdout: {}",
                String::from_utf8_lossy(&quiet.stdout).trim()
            ));
        }
        // The CLI sees the same services as the library.
        let listed = berth(file, &["--services"]);
        let listed: BTreeSet<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let expected: BTreeSet<String> = match load_file(file) {
            Ok(loaded) => loaded.project.services.into_keys().collect(),
            Err(_) => continue, // reported by every_corpus_file_loads_and_resolves
        };
        if listed != expected {
            failures.push(format!(
                "{name}: `berth config --services` lists {listed:?}, expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "`berth config` fails on {} of {} corpus files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
