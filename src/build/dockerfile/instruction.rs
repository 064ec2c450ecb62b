//! One logical line → one typed [`Instruction`]: the keyword, its
//! `--flags`, and its arguments in the forms docker accepts.

use super::words::split_words;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    /// The keyword, uppercased.
    pub keyword: String,
    /// The logical line as written (continuations joined).
    pub original: String,
    pub kind: Kind,
}

/// Exec form (a JSON array) or shell form (run by the stage's `SHELL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    pub command: Command,
    /// `--mount=…` values as written.
    pub mounts: Vec<String>,
    /// `--network=…`.
    pub network: Option<String>,
}

/// COPY and ADD; paths as written (expanded by the executor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The default as written (expanded when the ARG is reached).
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        test: Command,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        base: String,
        platform: Option<String>,
        name: Option<String>,
    },
    Run(RunSpec),
    Copy(CopySpec),
    Add(CopySpec),
    /// Key and value words as written.
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Label(Vec<(String, String)>),
    Entrypoint(Command),
    Cmd(Command),
    Healthcheck(Healthcheck),
    StopSignal(String),
    Shell(Vec<String>),
    /// The trigger instruction's text, run when this image is a base.
    Onbuild(String),
    Maintainer(String),
}

type Flags = Vec<(String, Option<String>)>;

impl Instruction {
    pub fn parse(text: &str, line: usize, escape: char) -> Result<Instruction, String> {
        let text = text.trim();
        let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let keyword = keyword.to_ascii_uppercase();
        let (flags, rest) = take_flags(rest.trim_start());
        let allowed: &[&str] = match keyword.as_str() {
            "FROM" => &["platform"],
            "RUN" => &["mount", "network", "security"],
            "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
            "ADD" => &["chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"],
            "HEALTHCHECK" => &["interval", "timeout", "start-period", "start-interval", "retries"],
            _ => &[],
        };
        for (name, _) in &flags {
            if !allowed.contains(&name.as_str()) {
                return Err(format!("unknown flag: --{name} for {keyword}"));
            }
        }
        let flag = |name: &str| flags.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.clone());
        let need = |what: &str| {
            if rest.is_empty() {
                Err(format!("{keyword} requires {what}"))
            } else {
                Ok(rest.to_string())
            }
        };
        let kind = match keyword.as_str() {
            "FROM" => {
                let words = split_words(rest, escape);
                match words.as_slice() {
                    [base] => Kind::From {
                        base: base.clone(),
                        platform: flag("platform"),
                        name: None,
                    },
                    [base, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                        let name = name.to_ascii_lowercase();
                        if !valid_stage_name(&name) {
                            return Err(format!(
                                "invalid stage name {name:?}: use letters, digits, '-', '_', '.'"
                            ));
                        }
                        Kind::From {
                            base: base.clone(),
                            platform: flag("platform"),
                            name: Some(name),
                        }
                    }
                    _ => return Err("FROM requires an image (FROM IMAGE [AS NAME])".into()),
                }
            }
            "RUN" => {
                if rest.starts_with("<<") {
                    return Err("heredocs are not supported yet: write the script to a file and COPY it".into());
                }
                Kind::Run(RunSpec {
                    command: command(&need("a command")?)?,
                    mounts: flags
                        .iter()
                        .filter(|(n, _)| n == "mount")
                        .filter_map(|(_, v)| v.clone())
                        .collect(),
                    network: flag("network"),
                })
            }
            "COPY" | "ADD" => {
                let words = json_or_words(&need("at least a source and a destination")?, escape)?;
                let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
                    return Err(format!("{keyword} requires at least two arguments: SOURCE… DEST"));
                };
                for unsupported in ["parents", "exclude", "checksum", "keep-git-dir"] {
                    if flags.iter().any(|(n, _)| n == unsupported) {
                        return Err(format!("{keyword} --{unsupported} is not supported"));
                    }
                }
                let spec = CopySpec {
                    sources: sources.to_vec(),
                    dest: dest.clone(),
                    from: flag("from"),
                    chown: flag("chown"),
                    chmod: flag("chmod"),
                    link: flags.iter().any(|(n, v)| n == "link" && v.as_deref() != Some("false")),
                };
                if keyword == "COPY" {
                    Kind::Copy(spec)
                } else {
                    Kind::Add(spec)
                }
            }
            "ENV" => Kind::Env(key_values(&need("at least one KEY=VALUE")?, escape, true)?),
            "LABEL" => Kind::Label(key_values(&need("at least one KEY=VALUE")?, escape, true)?),
            "ARG" => {
                let mut decls = Vec::new();
                for word in split_words(&need("a name")?, escape) {
                    let (name, default) = match word.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (word.clone(), None),
                    };
                    if !valid_name(&name) {
                        return Err(format!("invalid ARG name {name:?}"));
                    }
                    decls.push(ArgDecl { name, default });
                }
                Kind::Arg(decls)
            }
            "WORKDIR" => Kind::Workdir(need("a directory")?),
            "USER" => Kind::User(need("a user")?),
            "STOPSIGNAL" => Kind::StopSignal(need("a signal")?),
            "MAINTAINER" => Kind::Maintainer(need("a name")?),
            "EXPOSE" => Kind::Expose(split_words(&need("at least one port")?, escape)),
            "VOLUME" => Kind::Volume(json_or_words(&need("at least one path")?, escape)?),
            "ENTRYPOINT" => Kind::Entrypoint(command(&need("a command")?)?),
            "CMD" => Kind::Cmd(command(&need("a command")?)?),
            "SHELL" => match command(&need("a JSON array")?)? {
                Command::Exec(words) if !words.is_empty() => Kind::Shell(words),
                _ => return Err("SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]".into()),
            },
            "HEALTHCHECK" => Kind::Healthcheck(healthcheck(&need("NONE or CMD")?, &flag)?),
            "ONBUILD" => {
                let trigger = need("an instruction")?;
                let inner = trigger.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(format!("{inner} is not allowed as an ONBUILD trigger"));
                }
                // The trigger must itself be valid now, not when used.
                Instruction::parse(&trigger, line, escape)?;
                Kind::Onbuild(trigger)
            }
            "" => return Err("empty instruction".into()),
            other => return Err(format!("unknown instruction: {other}")),
        };
        Ok(Instruction {
            line,
            keyword,
            original: text.to_string(),
            kind,
        })
    }
}

/// Leading `--name[=value]` words.
fn take_flags(mut rest: &str) -> (Flags, &str) {
    let mut flags = Vec::new();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            break;
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.trim_matches('"').to_string())),
            None => (word, None),
        };
        flags.push((name.to_ascii_lowercase(), value));
        rest = after[end..].trim_start();
    }
    (flags, rest)
}

fn command(rest: &str) -> Result<Command, String> {
    if rest.starts_with('[') {
        // Not valid JSON: docker falls back to the shell form.
        if let Ok(words) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(Command::Exec(words));
        }
    }
    Ok(Command::Shell(rest.to_string()))
}

fn json_or_words(rest: &str, escape: char) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        if let Ok(words) = serde_json::from_str::<Vec<String>>(rest) {
            // JSON words have no quotes left: escape what expansion would eat.
            return Ok(words
                .into_iter()
                .map(|w| {
                    let mut out = String::new();
                    for c in w.chars() {
                        if c == '"' || c == '\'' || c == escape {
                            out.push(escape);
                        }
                        out.push(c);
                    }
                    out
                })
                .collect());
        }
    }
    Ok(split_words(rest, escape))
}

/// `K=V K2="v 2"`, or (with `legacy`) the old single pair `K V…`.
fn key_values(rest: &str, escape: char, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err("requires KEY=VALUE".into());
    };
    if !first.contains('=') {
        let value = rest[first.len()..].trim();
        if !legacy || value.is_empty() {
            return Err(format!("{first:?} needs a value: KEY=VALUE"));
        }
        return Ok(vec![(first.clone(), value.to_string())]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(format!("{word:?} is not KEY=VALUE")),
        })
        .collect()
}

fn healthcheck(rest: &str, flag: &dyn Fn(&str) -> Option<String>) -> Result<Healthcheck, String> {
    let (head, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match head.to_ascii_uppercase().as_str() {
        "NONE" if tail.trim().is_empty() => Ok(Healthcheck::None),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" if !tail.trim().is_empty() => Ok(Healthcheck::Check {
            test: command(tail.trim())?,
            interval: flag("interval"),
            timeout: flag("timeout"),
            start_period: flag("start-period"),
            start_interval: flag("start-interval"),
            retries: flag("retries"),
        }),
        _ => Err("HEALTHCHECK requires NONE or CMD COMMAND".into()),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn valid_stage_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
