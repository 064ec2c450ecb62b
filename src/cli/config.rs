//! `berth config`: the resolved project, canonically.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_yaml::{Mapping, Value};

use super::{load_project, Cli};
use crate::spec::hash::service_hash;
use crate::spec::model::Project;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long = "services")]
    pub list_services: bool,
    /// Print the volume names, one per line.
    #[arg(long = "volumes")]
    pub list_volumes: bool,
    /// Print the network names, one per line.
    #[arg(long = "networks")]
    pub list_networks: bool,
    /// Print the profile names, one per line.
    #[arg(long = "profiles")]
    pub list_profiles: bool,
    /// Print the image of each service, one per line.
    #[arg(long = "images")]
    pub list_images: bool,
    /// Print the config hash of SERVICE ("*" or a comma list for several).
    #[arg(long, value_name = "SERVICE")]
    pub hash: Option<String>,
    /// Print the start order as waves (`text`) or as a Graphviz graph (`dot`).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "text")]
    pub graph: Option<GraphFormat>,
    /// Do not interpolate variables.
    #[arg(long)]
    pub no_interpolate: bool,
    /// Only validate the configuration; print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the output to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

pub fn run(cli: &Cli, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_project(cli, args.no_interpolate)?;
    let mut project = loaded.project;
    if !args.services.is_empty() {
        for name in &args.services {
            if !project.services.contains_key(name) {
                bail!("no such service: {name}");
            }
        }
        let keep: BTreeSet<String> = loaded.graph.with_dependencies(&args.services).into_iter().collect();
        project.services.retain(|name, _| keep.contains(name));
    }
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }

    let text = if args.list_services {
        lines(project.services.keys())
    } else if args.list_volumes {
        lines(project.volumes.keys())
    } else if args.list_networks {
        lines(project.networks.keys())
    } else if args.list_profiles {
        lines(loaded.profiles.iter())
    } else if args.list_images {
        lines(project.services.iter().map(|(name, s)| image_of(&project, name, s)))
    } else if let Some(selection) = &args.hash {
        hashes(&project, selection)?
    } else if let Some(format) = args.graph {
        match format {
            GraphFormat::Dot => loaded.graph.to_dot(),
            GraphFormat::Text => loaded
                .graph
                .start_waves()
                .iter()
                .enumerate()
                .map(|(i, wave)| format!("wave {}: {}\n", i + 1, wave.join(" ")))
                .collect(),
        }
    } else {
        render(&project, args.format)?
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn lines<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items.into_iter().map(|s| format!("{}\n", s.as_ref())).collect()
}

/// The image a service runs: its `image`, else the name compose gives a
/// built image (`<project>-<service>`).
fn image_of(project: &Project, name: &str, service: &crate::spec::model::Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", project.name))
}

fn hashes(project: &Project, selection: &str) -> anyhow::Result<String> {
    let names: Vec<String> = if selection == "*" {
        project.services.keys().cloned().collect()
    } else {
        selection.split(',').map(|s| s.trim().to_string()).collect()
    };
    let mut out = String::new();
    for name in names {
        let service = project
            .services
            .get(&name)
            .with_context(|| format!("no such service: {name}"))?;
        out.push_str(&format!("{name} {}\n", service_hash(service)));
    }
    Ok(out)
}

/// The project as YAML or JSON, with `x-*` extensions put back.
fn render(project: &Project, format: Format) -> anyhow::Result<String> {
    let mut value = serde_yaml::to_value(project)?;
    if let Value::Mapping(root) = &mut value {
        if let Some(Value::Mapping(services)) = root.get_mut("services") {
            for (name, service) in &project.services {
                if let Some(Value::Mapping(rendered)) = services.get_mut(name.as_str()) {
                    insert_all(rendered, &service.extensions);
                }
            }
        }
        insert_all(root, &project.extensions);
    }
    Ok(match format {
        Format::Yaml => {
            mark_yaml11_words(&mut value);
            // The emitter escapes the marker inside the quotes it chose.
            serde_yaml::to_string(&value)?.replace("\\x01\"", "\"")
        }
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&value)?;
            json.push('\n');
            json
        }
    })
}

/// serde_yaml writes YAML 1.2, where `no`, `yes`, `on`, `off` are plain
/// strings; YAML 1.1 readers (docker compose's own parser among them) take
/// them for booleans. Such strings get a marker that forces the emitter to
/// quote them, and the marker is then cut from the text, so `restart: "no"`
/// comes out as docker compose prints it.
const QUOTE_MARK: &str = "\u{1}";

fn mark_yaml11_words(value: &mut Value) {
    match value {
        Value::String(s) => {
            let ambiguous = matches!(
                s.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
            );
            if ambiguous {
                *s = format!("{s}{QUOTE_MARK}");
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(mark_yaml11_words),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| mark_yaml11_words(v)),
        Value::Tagged(tagged) => mark_yaml11_words(&mut tagged.value),
        _ => {}
    }
}

fn insert_all(map: &mut Mapping, extensions: &std::collections::BTreeMap<String, Value>) {
    for (key, value) in extensions {
        map.insert(Value::String(key.clone()), value.clone());
    }
}
