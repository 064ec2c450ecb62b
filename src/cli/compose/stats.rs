//! `berth stats [--no-stream] [--format json] [SERVICE…]`: live resource
//! usage of the project's running containers, refreshed every second;
//! `--no-stream` prints once (after a short second sample, which CPU %
//! needs).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::ops::print_table;
use super::{containers, project_name, Format};
use crate::cli::Cli;
use crate::engine::stats::{host_memory, sample, usage, Sample, Usage};
use crate::runtime::config::Status;
use crate::store::Root;

const REFRESH: Duration = Duration::from_secs(1);
const FIRST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Full container ids.
    #[arg(long)]
    pub no_trunc: bool,
    pub services: Vec<String>,
}

fn samples(root: &Root, project: &str, services: &[String]) -> anyhow::Result<BTreeMap<String, Sample>> {
    Ok(containers(root, project, services)?
        .iter()
        .filter(|c| {
            c.state()
                .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused))
        })
        // A container that exits between the listing and the read just
        // drops out of this reading.
        .filter_map(|c| sample(root, c).ok())
        .map(|s| (s.id.clone(), s))
        .collect())
}

fn print(out: &mut impl Write, rows: &[Usage], format: Format, ids: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if format == Format::Json {
        for row in rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
        return Ok(());
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                ids.get(&r.name).cloned().unwrap_or_else(|| r.id.clone()),
                r.name.clone(),
                r.cpu_perc.clone(),
                r.mem_usage.clone(),
                r.mem_perc.clone(),
                r.net_io.clone(),
                r.pids.clone(),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "PIDS",
        ],
        &table,
    )?;
    Ok(())
}

pub fn stats(cli: &Cli, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let project = project_name(cli)?;
    let memory = host_memory();
    let mut before = samples(&root, &project, &args.services)?;
    std::thread::sleep(FIRST_INTERVAL);
    let clear =
        !args.no_stream && args.format == Format::Table && nix::unistd::isatty(std::io::stdout()).unwrap_or(false);
    let mut out = std::io::stdout().lock();
    loop {
        let now = samples(&root, &project, &args.services)?;
        let mut rows: Vec<Usage> = now.values().map(|s| usage(before.get(&s.id), s, memory)).collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let ids: BTreeMap<String, String> = if args.no_trunc {
            now.values().map(|s| (s.name.clone(), s.id.clone())).collect()
        } else {
            BTreeMap::new()
        };
        if clear {
            // docker's redraw: home the cursor and clear the screen.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        print(&mut out, &rows, args.format, &ids)?;
        if out.flush().is_err() || args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        before = now;
        std::thread::sleep(REFRESH);
    }
}
