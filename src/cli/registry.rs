//! Registry verbs: `berth image pull`, `berth image search`, `berth login`,
//! `berth logout`.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::image::ListFormat;
use crate::image::reference::DEFAULT_REGISTRY;
use crate::image::registry::client::{http_client, RetryPolicy, Session};
use crate::image::registry::credentials::normalize_registry;
use crate::image::registry::search::{render_table, Searcher, DEFAULT_LIMIT};
use crate::image::registry::{
    CredentialStore, Credentials, EngineConfig, Platform, Progress, ProgressMode, PullOptions, Puller,
};
use crate::store::Root;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Pull this platform's image from a multi-platform index (os/arch[/variant]).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Print only the pulled image's name.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Show at most this many results (1-100).
    #[arg(long, default_value_t = DEFAULT_LIMIT as u32, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Do not cut descriptions short.
    #[arg(long)]
    pub no_trunc: bool,
    /// A term for Docker Hub, or REGISTRY/TERM for a registry's catalog
    /// (REGISTRY/ lists all of it).
    #[arg(value_name = "TERM")]
    pub term: String,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short = 'p', long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

pub fn pull(root: &Root, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let puller = Puller::new(root)?;
    let progress = Progress::new(ProgressMode::detect(args.quiet));
    puller.pull(&args.image, &PullOptions { platform }, &progress)?;
    Ok(ExitCode::SUCCESS)
}

pub fn search(root: &Root, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let outcome = Searcher::new(root)?.search(&args.term, args.limit as usize)?;
    let text = match args.format {
        ListFormat::Table => render_table(&outcome, args.no_trunc),
        ListFormat::Json => serde_json::to_string_pretty(&outcome.results)? + "\n",
    };
    io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn login(root: &Root, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let registry = normalize_registry(args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY));
    let username = match &args.username {
        Some(username) => username.clone(),
        None if io::stdin().is_terminal() && !args.password_stdin => prompt("Username: ")?,
        None => bail!("no user name for {registry}: pass -u USER"),
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        io::stdin()
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(password) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        password.clone()
    } else if io::stdin().is_terminal() {
        prompt_hidden("Password: ")?
    } else {
        bail!("no password for {registry}: use --password-stdin or run on a terminal");
    };
    if username.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    let credentials = Credentials { username, password };
    // Check with the registry itself (never a mirror) before filing them.
    let config = EngineConfig::load(root)?;
    let endpoint = config
        .endpoints(&registry)
        .pop()
        .context("no endpoint for the registry")?;
    let session = Session::connect(
        &http_client()?,
        &registry,
        &endpoint,
        Some(credentials.clone()),
        &RetryPolicy::default(),
    )?;
    session
        .verify_login()
        .with_context(|| format!("cannot log in to {registry}"))?;
    let store = CredentialStore::from_env();
    store.store(&registry, &credentials)?;
    writeln!(io::stdout(), "Login Succeeded")?;
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = normalize_registry(args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY));
    let store = CredentialStore::from_env();
    if store.erase(&registry)? {
        writeln!(io::stdout(), "Removing login credentials for {registry}")?;
    } else {
        writeln!(io::stdout(), "Not logged in to {registry}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt(text: &str) -> anyhow::Result<String> {
    eprint!("{text}");
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Reads a line from the terminal with echo off, restoring it after.
fn prompt_hidden(text: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn off echo")?;
    let line = prompt(text);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    restored.context("cannot restore the terminal settings")?;
    line
}
