//! `berth image …`: load, save, import, ls, rm, inspect, tag, pull, push,
//! search, build, prune.

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use crate::image::reference::{familiar, split_tagged};
use crate::image::{human_size, parse_rfc3339, ImageStore, ImageSummary};
use crate::runtime::container::images_in_use;
use crate::store::Root;

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one invoked:
// building the whole tree cost ~0.8 ms of every berth start.
#[command(defer = true)]
pub enum ImageCommand {
    /// Load images from a docker-save archive or an OCI layout (tar or directory).
    Load {
        /// The archive to read.
        #[arg(short = 'i', long = "input", value_name = "FILE")]
        input: PathBuf,
        /// Print only the loaded names.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Save images to an OCI layout tar that docker can load too.
    Save {
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Create an image from a rootfs tarball (`-` for stdin).
    Import {
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
        #[arg(value_name = "NAME[:TAG]")]
        reference: Option<String>,
        /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE,
        /// LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable.
        #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// A commit message for the image's history.
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
    },
    /// List images.
    #[command(visible_alias = "list")]
    Ls {
        /// Only show image ids.
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Remove images.
    #[command(visible_alias = "rmi")]
    Rm {
        /// Untag images containers still use, and remove images with several names.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Show low-level information on images, as a JSON array.
    Inspect {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        #[arg(value_name = "SOURCE")]
        source: String,
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// Pull an image from a registry.
    Pull(super::registry::PullArgs),
    /// Push an image to the registry its name points at.
    Push(super::push::PushArgs),
    /// Search Docker Hub, or a registry's catalog (REGISTRY/TERM).
    Search(super::registry::SearchArgs),
    /// Build an image from a Dockerfile.
    Build(super::build::BuildArgs),
    /// Remove dangling images and unreferenced layers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Remove every image no container uses, not only dangling ones.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

pub fn run(root: &Root, args: &ImageArgs) -> anyhow::Result<ExitCode> {
    if let ImageCommand::Pull(pull) = &args.command {
        // Before the stdout lock below: pull reports from its download threads.
        return super::registry::pull(root, pull);
    }
    if let ImageCommand::Push(push) = &args.command {
        return super::push::run(root, push);
    }
    if let ImageCommand::Search(search) = &args.command {
        return super::registry::search(root, search);
    }
    if let ImageCommand::Build(build) = &args.command {
        return super::build::run(root, build);
    }
    let store = ImageStore::open(root)?;
    let mut out = io::stdout().lock();
    match &args.command {
        ImageCommand::Load { input, quiet: _ } => {
            for loaded in store.load_archive(input)? {
                if loaded.starts_with("sha256:") {
                    writeln!(out, "Loaded image ID: {loaded}")?;
                } else {
                    writeln!(out, "Loaded image: {loaded}")?;
                }
            }
        }
        ImageCommand::Save { output, images } => match output {
            Some(path) => {
                let mut file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let result = store.save(images, &mut file);
                if result.is_err() {
                    let _ = std::fs::remove_file(path);
                }
                result?;
                file.sync_all()?;
            }
            None => {
                if io::stdout().is_terminal() {
                    bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
                }
                store.save(images, &mut out)?;
                out.flush()?;
            }
        },
        ImageCommand::Import {
            file,
            reference,
            changes,
            message,
        } => {
            let name = reference.as_deref().unwrap_or("");
            let id = store.import_with_message(file, name, changes, message.as_deref())?;
            writeln!(out, "{id}")?;
        }
        ImageCommand::Ls { quiet, format } => {
            let images = store.list()?;
            if *quiet {
                for image in &images {
                    writeln!(out, "{}", short_id(&image.id))?;
                }
            } else {
                match format {
                    ListFormat::Table => write_table(&mut out, &images)?,
                    ListFormat::Json => {
                        for row in rows(&images) {
                            writeln!(out, "{}", serde_json::to_string(&row)?)?;
                        }
                    }
                }
            }
        }
        ImageCommand::Rm { force, images } => {
            let in_use = images_in_use(root)?;
            let mut failed = false;
            for image in images {
                match store.remove(image, *force, &|id| in_use.contains(id)) {
                    Ok(lines) => {
                        for line in lines {
                            writeln!(out, "{line}")?;
                        }
                    }
                    Err(error) => {
                        eprintln!("Error: {}", error.chain());
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        ImageCommand::Inspect { images } => {
            let mut found = Vec::new();
            let mut failed = false;
            for image in images {
                match store.inspect(image) {
                    Ok(value) => found.push(value),
                    Err(error) => {
                        eprintln!("Error: {}", error.chain());
                        failed = true;
                    }
                }
            }
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            found.serialize(&mut serializer)?;
            writeln!(out)?;
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        ImageCommand::Tag { source, target } => store.tag(source, target)?,
        ImageCommand::Pull(_) | ImageCommand::Push(_) | ImageCommand::Search(_) | ImageCommand::Build(_) => {} // handled above
        ImageCommand::Prune { force, all } => {
            if !force && !confirm(*all)? {
                return Ok(ExitCode::SUCCESS);
            }
            let in_use = images_in_use(root)?;
            let lines = store.prune_with(*all, &|id| in_use.contains(id))?;
            let (total, deleted) = lines.split_last().map_or((None, &[][..]), |(t, d)| (Some(t), d));
            if !deleted.is_empty() {
                writeln!(out, "Deleted Images:")?;
                for line in deleted {
                    writeln!(out, "{line}")?;
                }
                writeln!(out)?;
            }
            if let Some(total) = total {
                writeln!(out, "{total}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(all: bool) -> anyhow::Result<bool> {
    let what = if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    repository: String,
    tag: String,
    #[serde(rename = "ID")]
    id: String,
    created_at: String,
    created_since: String,
    size: String,
}

fn rows(images: &[ImageSummary]) -> Vec<Row> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut rows = Vec::new();
    for image in images {
        let created = image.created.as_deref().and_then(parse_rfc3339);
        let since = created.map_or_else(|| "N/A".to_string(), |t| format!("{} ago", human_duration(now - t)));
        let mut names: Vec<(String, String)> = image
            .names
            .iter()
            .map(|n| {
                let (repo, tag) = split_tagged(n);
                (familiar(repo), tag.to_string())
            })
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repository, tag) in names {
            rows.push(Row {
                repository,
                tag,
                id: short_id(&image.id).to_string(),
                created_at: image.created.clone().unwrap_or_default(),
                created_since: since.clone(),
                size: human_size(image.size),
            });
        }
    }
    rows
}

fn write_table(out: &mut dyn Write, images: &[ImageSummary]) -> io::Result<()> {
    let rows = rows(images);
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| [r.repository.as_str(), &r.tag, &r.id, &r.created_since, &r.size])
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// docker's (go-units) human durations: "About an hour", "3 days".
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (minutes, hours) = (s / 60, (s as f64 / 3600.0 + 0.5) as i64);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn table_has_docker_columns() {
        let images = vec![ImageSummary {
            id: format!("sha256:{}", "ab".repeat(32)),
            names: vec!["docker.io/library/busybox:latest".into()],
            created: None,
            size: 4_260_000,
        }];
        let mut out = Vec::new();
        write_table(&mut out, &images).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("REPOSITORY   TAG      IMAGE ID       CREATED   SIZE"));
        assert_eq!(
            lines.next().unwrap(),
            "busybox      latest   abababababab   N/A       4.26MB"
        );
    }
}
