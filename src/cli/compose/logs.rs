//! `berth logs` and the foreground of `up`: the logs of several
//! containers, each line behind a `name  | ` prefix (colored on a
//! terminal), followed by reading each json-file log from where it was.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use crate::runtime::container::Container;
use crate::runtime::logs::{self, LogEntry};

/// compose's palette, cycled per container.
const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// How lines are printed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub prefix: bool,
    pub color: bool,
    pub timestamps: bool,
}

impl Style {
    pub fn detect(no_color: bool, no_prefix: bool, timestamps: bool) -> Style {
        Style {
            prefix: !no_prefix,
            color: !no_color && super::colors(std::io::stdout().is_terminal()),
            timestamps,
        }
    }
}

/// One container's log as it is read.
pub struct Tail {
    pub container: Container,
    pub label: String,
    file: Option<File>,
    partial: String,
}

impl Tail {
    /// `width` pads the names so the bars line up.
    pub fn new(container: Container, index: usize, width: usize, style: Style) -> Tail {
        let name = format!("{:width$}", container.config.name);
        let label = if !style.prefix {
            String::new()
        } else if style.color {
            format!("\x1b[{}m{name}  |\x1b[0m ", COLORS[index % COLORS.len()])
        } else {
            format!("{name}  | ")
        };
        Tail {
            container,
            label,
            file: None,
            partial: String::new(),
        }
    }

    /// Skips what the log holds now (`up` shows only what comes next when
    /// attaching to containers that were running already).
    pub fn skip_existing(&mut self) {
        if let Ok(mut f) = File::open(self.container.log_path()) {
            let _ = f.seek(SeekFrom::End(0));
            self.file = Some(f);
        }
    }

    /// Prints the complete entries written since the last call.
    pub fn pump(&mut self, out: &mut impl Write, style: Style) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = File::open(self.container.log_path()).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let position = file.stream_position()?;
        let mut reader = BufReader::new(&mut *file);
        let mut consumed = 0u64;
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            consumed += line.len() as u64;
            if !line.ends_with('\n') {
                self.partial.push_str(&line);
                line.clear();
                continue;
            }
            let text = std::mem::take(&mut self.partial) + &line;
            line.clear();
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&text) {
                print_line(out, &self.label, &entry, style)?;
            }
        }
        file.seek(SeekFrom::Start(position + consumed))?;
        Ok(())
    }
}

pub fn print_line(out: &mut impl Write, label: &str, entry: &LogEntry, style: Style) -> std::io::Result<()> {
    let stamp = if style.timestamps {
        format!("{} ", entry.time)
    } else {
        String::new()
    };
    let text = entry.log.strip_suffix('\n').unwrap_or(&entry.log);
    writeln!(out, "{label}{stamp}{text}")
}

/// The entries of several containers merged by time, with `tail` per
/// container and a time window.
pub fn history(
    containers: &[Container],
    tail: Option<usize>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
) -> Vec<(usize, LogEntry)> {
    let mut all = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let Ok(entries) = logs::read_entries(&c.log_path(), since, None) else {
            continue;
        };
        let kept: Vec<LogEntry> = entries
            .into_iter()
            .filter(|e| until.is_none_or(|u| crate::rfc3339::parse(&e.time).is_some_and(|t| t <= u)))
            .collect();
        let skip = tail.map_or(0, |n| kept.len().saturating_sub(n));
        all.extend(kept.into_iter().skip(skip).map(|e| (i, e)));
    }
    all.sort_by(|a, b| a.1.time.cmp(&b.1.time));
    all
}

/// A short pause between polls of the logs.
pub const POLL: Duration = Duration::from_millis(50);
