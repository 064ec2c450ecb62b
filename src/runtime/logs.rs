//! Container logs in docker's json-file format: one JSON object per line
//! (`{"log":"…\n","stream":"stdout","time":"…"}`), rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::container::{format_rfc3339, parse_rfc3339};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries to `path`, rotating to `path.1`, `path.2`, … when the
/// file would pass `max_size` bytes (0 = never), keeping `max_files` files.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Partial lines per stream, flushed when a newline arrives.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records bytes read from a stream (0 = stdout, 1 = stderr); complete
    /// lines become entries, a trailing partial line waits for more.
    pub fn write(&mut self, stream: usize, bytes: &[u8]) -> io::Result<()> {
        let index = stream.min(1);
        self.pending[index].extend_from_slice(bytes);
        while let Some(pos) = self.pending[index].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending[index].drain(..=pos).collect();
            self.append(index, &line)?;
        }
        // Bound memory for output without newlines.
        if self.pending[index].len() > 16 * 1024 {
            let line = std::mem::take(&mut self.pending[index]);
            self.append(index, &line)?;
        }
        Ok(())
    }

    /// Writes out partial lines (at exit).
    pub fn flush(&mut self) -> io::Result<()> {
        for index in 0..2 {
            if !self.pending[index].is_empty() {
                let line = std::mem::take(&mut self.pending[index]);
                self.append(index, &line)?;
            }
        }
        self.file.flush()
    }

    fn append(&mut self, stream: usize, line: &[u8]) -> io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: format_rfc3339(SystemTime::now()),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.max_size > 0 && self.size + bytes.len() as u64 > self.max_size && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(numbered(self.max_files - 1));
        for n in (1..self.max_files - 1).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Every log file of a container, oldest first.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..100)
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}

/// Reads entries (all rotated files), keeping those at or after `since`
/// and the last `tail` of them.
pub fn read_entries(path: &Path, since: Option<SystemTime>, tail: Option<usize>) -> io::Result<Vec<LogEntry>> {
    let mut entries = Vec::new();
    for file in log_files(path) {
        let Ok(f) = File::open(&file) else { continue };
        for line in BufReader::new(f).lines() {
            let line = line?;
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
                if since.is_none_or(|s| parse_rfc3339(&entry.time).is_some_and(|t| t >= s)) {
                    entries.push(entry);
                }
            }
        }
    }
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_entries_and_partials_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 0, 1).unwrap();
        w.write(0, b"hello\nwor").unwrap();
        w.write(1, b"oops\n").unwrap();
        w.write(0, b"ld\n").unwrap();
        w.flush().unwrap();
        let e = read_entries(&path, None, None).unwrap();
        let logs: Vec<(&str, &str)> = e.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(
            logs,
            vec![("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "world\n")]
        );
        assert_eq!(read_entries(&path, None, Some(1)).unwrap().len(), 1);
    }

    #[test]
    fn rotates_by_size_keeping_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 200, 3).unwrap();
        for i in 0..50 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let files = log_files(&path);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(fs::metadata(f).unwrap().len() <= 200);
        }
        let e = read_entries(&path, None, None).unwrap();
        assert_eq!(e.last().unwrap().log, "line 49\n");
        assert!(e.len() < 50, "old lines rotated away");
    }
}
