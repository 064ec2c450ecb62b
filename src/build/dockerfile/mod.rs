//! The Dockerfile parser: text → stages of typed instructions. Pure.
//!
//! Arguments are kept as written (quotes included) where docker expands
//! variables at build time (ENV, LABEL, COPY, WORKDIR, …): the executor
//! expands them with [`words::expand`] against the stage's ENV and ARGs
//! as it goes, exactly where docker would.

mod instruction;
mod lines;
pub mod words;

pub use instruction::{ArgDecl, Command, CopySpec, Healthcheck, Instruction, Kind, RunSpec};

/// `Dockerfile:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name errors use (`Dockerfile`, or the `-f` file's name).
    pub file: String,
    pub escape: char,
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and in a
    /// stage that declares them again without a value.
    pub meta_args: Vec<(usize, ArgDecl)>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub line: usize,
    /// As written (may hold `$VAR`s from meta ARGs).
    pub base: String,
    pub platform: Option<String>,
    /// `AS name`, lowercased as docker does.
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// Parses `text`; `file` is only used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
        let error = |line: usize, message: String| ParseError {
            file: file.to_string(),
            line,
            message,
        };
        let (directives, lines) = lines::logical_lines(text).map_err(|(line, message)| error(line, message))?;
        let mut dockerfile = Dockerfile {
            file: file.to_string(),
            escape: directives.escape,
            syntax: directives.syntax,
            meta_args: Vec::new(),
            stages: Vec::new(),
        };
        for logical in lines {
            let line = logical.line;
            let instruction =
                Instruction::parse(&logical.text, line, directives.escape).map_err(|message| error(line, message))?;
            match instruction.kind {
                Kind::From { base, platform, name } => {
                    if let Some(name) = &name {
                        if dockerfile.stages.iter().any(|s| s.name.as_deref() == Some(name)) {
                            return Err(error(line, format!("duplicate stage name {name:?}")));
                        }
                    }
                    dockerfile.stages.push(Stage {
                        line,
                        base,
                        platform,
                        name,
                        instructions: Vec::new(),
                    });
                }
                kind => match dockerfile.stages.last_mut() {
                    Some(stage) => stage.instructions.push(Instruction { kind, ..instruction }),
                    None => match kind {
                        Kind::Arg(decls) => dockerfile.meta_args.extend(decls.into_iter().map(|d| (line, d))),
                        _ => {
                            return Err(error(
                                line,
                                format!("{} before the first FROM: only ARG may come first", instruction.keyword),
                            ))
                        }
                    },
                },
            }
        }
        if dockerfile.stages.is_empty() {
            return Err(error(1, "the Dockerfile has no FROM instruction".to_string()));
        }
        Ok(dockerfile)
    }

    /// The index of the stage `reference` names (its `AS` name or its
    /// number), if any.
    pub fn stage_index(&self, reference: &str, before: usize) -> Option<usize> {
        let lower = reference.to_ascii_lowercase();
        if let Some(i) = self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        reference.parse::<usize>().ok().filter(|i| *i < before)
    }

    /// The stages `target` needs, in order: itself, the stages its `FROM`
    /// and `COPY --from` name, transitively (as BuildKit skips unused ones).
    pub fn needed_stages(&self, target: usize) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut pending = vec![target];
        while let Some(index) = pending.pop() {
            if index >= needed.len() || needed[index] {
                continue;
            }
            needed[index] = true;
            let stage = &self.stages[index];
            pending.extend(self.stage_index(&stage.base, index));
            for instruction in &stage.instructions {
                if let Kind::Copy(copy) | Kind::Add(copy) = &instruction.kind {
                    if let Some(from) = &copy.from {
                        pending.extend(self.stage_index(from, index));
                    }
                }
            }
        }
        (0..self.stages.len()).filter(|i| needed[*i]).collect()
    }

    /// The index of `--target`, or the last stage.
    pub fn target_index(&self, target: Option<&str>) -> Result<usize, String> {
        match target {
            None => Ok(self.stages.len() - 1),
            Some(name) => {
                let lower = name.to_ascii_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| format!("target stage {name:?} could not be found"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
