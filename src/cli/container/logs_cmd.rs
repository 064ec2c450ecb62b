//! `container logs`: reading and following the json-file log.

use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;

use crate::runtime::config::Status;
use crate::runtime::container::{self, parse_rfc3339, Container};
use crate::runtime::logs::{self, LogEntry};
use crate::store::Root;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    #[arg(long)]
    pub tail: Option<String>,
    #[arg(short, long)]
    pub timestamps: bool,
    /// RFC 3339 time or a relative duration (10m, 1h).
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
}

/// Streams the log (from `skip` entries) until the container exits;
/// returns its exit code.
pub(super) fn follow(
    container: &Container,
    skip: usize,
    since: Option<SystemTime>,
    timestamps: bool,
) -> anyhow::Result<i32> {
    let path = container.log_path();
    let mut file = loop {
        match fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if container.dir.exists() => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    };
    let mut seen = 0usize;
    let mut partial = String::new();
    loop {
        let state = container.state()?;
        let done = matches!(state.status, Status::Exited | Status::Dead | Status::Created);
        let position = file.stream_position()?;
        let mut reader = BufReader::new(&mut file);
        let mut line = String::new();
        let mut consumed = 0u64;
        while reader.read_line(&mut line)? > 0 {
            consumed += line.len() as u64;
            if !line.ends_with('\n') {
                partial.push_str(&line);
                line.clear();
                continue;
            }
            let text = std::mem::take(&mut partial) + &line;
            line.clear();
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&text) {
                seen += 1;
                if seen > skip && since.is_none_or(|s| parse_rfc3339(&entry.time).is_some_and(|t| t >= s)) {
                    print_entry(&entry, timestamps)?;
                }
            }
        }
        file.seek(SeekFrom::Start(position + consumed))?;
        if done {
            return Ok(state.exit_code.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn print_entry(entry: &LogEntry, timestamps: bool) -> std::io::Result<()> {
    let prefix = if timestamps {
        format!("{} ", entry.time)
    } else {
        String::new()
    };
    if entry.stream == "stderr" {
        let mut err = std::io::stderr().lock();
        write!(err, "{prefix}{}", entry.log)?;
        err.flush()
    } else {
        let mut out = std::io::stdout().lock();
        write!(out, "{prefix}{}", entry.log)?;
        out.flush()
    }
}

pub(super) fn parse_since(since: &str) -> anyhow::Result<SystemTime> {
    if let Some(t) = parse_rfc3339(since) {
        return Ok(t);
    }
    let d = crate::spec::syntax::units::parse_duration(since)
        .map_err(|e| anyhow::anyhow!("invalid --since {since:?}: {e}"))?;
    Ok(SystemTime::now() - d)
}

pub(super) fn print_logs(root: &Root, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(root, &args.container)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().with_context(|| format!("invalid --tail {n:?}"))?),
    };
    if args.follow {
        let total = logs::read_entries(&c.log_path(), None, None)?.len();
        let skip = tail.map(|n| total.saturating_sub(n)).unwrap_or(0);
        follow(&c, skip, since, args.timestamps)?;
    } else {
        for entry in logs::read_entries(&c.log_path(), since, tail)? {
            print_entry(&entry, args.timestamps)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
