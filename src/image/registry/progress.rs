//! What a pull reports: per-layer bars on a terminal (indicatif), docker's
//! plain status lines otherwise, nothing with `-q`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::image::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Quiet,
    Lines,
    Bars,
}

impl ProgressMode {
    /// Bars when stderr is a terminal, else lines; `quiet` wins.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Lines
        }
    }
}

/// Shared by a pull's download threads.
pub struct Progress {
    mode: ProgressMode,
    bars: Option<MultiProgress>,
    layers: Mutex<HashMap<Digest, ProgressBar>>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Progress {
    /// Reports to stdout (status lines) and stderr (bars).
    pub fn new(mode: ProgressMode) -> Self {
        Self::to(mode, Box::new(std::io::stdout()))
    }

    pub fn to(mode: ProgressMode, out: Box<dyn Write + Send>) -> Self {
        let bars = (mode == ProgressMode::Bars).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            mode,
            bars,
            layers: Mutex::new(HashMap::new()),
            out: Mutex::new(out),
        }
    }

    pub fn quiet() -> Self {
        Self::to(ProgressMode::Quiet, Box::new(std::io::sink()))
    }

    /// A status line (not in quiet mode); above the bars when drawing them.
    pub fn line(&self, text: &str) {
        match (&self.mode, &self.bars) {
            (ProgressMode::Quiet, _) => {}
            (_, Some(bars)) => {
                let _ = bars.println(text);
            }
            (_, None) => {
                let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Whatever the mode: the final result (`-q` prints only this).
    pub fn result(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    pub fn layer_exists(&self, digest: &Digest) {
        self.line(&format!("{}: Already exists", digest.short()));
    }

    pub fn layer_start(&self, digest: &Digest, size: u64) {
        match &self.bars {
            Some(bars) => {
                let bar = bars.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(digest.short().to_string());
                bar.set_message("Downloading");
                self.lock_layers().insert(digest.clone(), bar);
            }
            None => self.line(&format!("{}: Pulling fs layer", digest.short())),
        }
    }

    pub fn layer_bytes(&self, digest: &Digest, bytes: u64) {
        if self.bars.is_some() {
            if let Some(bar) = self.lock_layers().get(digest) {
                bar.inc(bytes);
            }
        }
    }

    pub fn layer_downloaded(&self, digest: &Digest) {
        match self.lock_layers().get(digest) {
            Some(bar) => bar.set_message("Extracting"),
            None => self.line(&format!("{}: Download complete", digest.short())),
        }
    }

    pub fn layer_done(&self, digest: &Digest) {
        match self.lock_layers().remove(digest) {
            Some(bar) => {
                bar.set_message("Pull complete");
                bar.finish();
            }
            None => self.line(&format!("{}: Pull complete", digest.short())),
        }
    }

    pub fn layer_failed(&self, digest: &Digest) {
        if let Some(bar) = self.lock_layers().remove(digest) {
            bar.abandon_with_message("Failed");
        }
    }

    fn lock_layers(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, ProgressBar>> {
        self.layers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_lines_read_like_docker_and_quiet_prints_only_the_result() {
        let d = Digest::of(b"layer");
        let out = Shared::default();
        let progress = Progress::to(ProgressMode::Lines, Box::new(out.clone()));
        progress.layer_start(&d, 5);
        progress.layer_bytes(&d, 5);
        progress.layer_downloaded(&d);
        progress.layer_done(&d);
        progress.result("docker.io/library/x:latest");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let short = d.short();
        assert_eq!(
            text,
            format!(
                "{short}: Pulling fs layer\n{short}: Download complete\n{short}: Pull complete\n\
                 docker.io/library/x:latest\n"
            )
        );
        let out = Shared::default();
        let quiet = Progress::to(ProgressMode::Quiet, Box::new(out.clone()));
        quiet.layer_start(&d, 5);
        quiet.line("Status: …");
        quiet.result("x");
        assert_eq!(out.0.lock().unwrap().as_slice(), b"x\n");
    }
}
