//! Runs a parsed Dockerfile: the stages the target needs, in order; each
//! instruction either updates the config (metadata) or adds a layer
//! (RUN, COPY, ADD); every step goes through the cache. The image is
//! registered (and tagged) only once the target stage is complete.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;

use serde_json::json;

use super::cache::{self, Cache};
use super::config_ops::{self, StageFlags, Vars};
use super::context::SourceTree;
use super::copy_step::{self, CopyRequest, Overlay};
use super::dockerfile::words::expand;
use super::dockerfile::{CopySpec, Dockerfile, Instruction, Kind, RunSpec};
use super::run_step::{self, RunRequest};
use super::{BuildError, BuildRequest};
use crate::image::registry::{Platform, Progress, ProgressMode, PullOptions, Puller};
use crate::image::{ImageDraft, ImageError, ImageStore};
use crate::store::Root;

pub fn build(root: &Root, request: &BuildRequest) -> Result<String, BuildError> {
    let (file, text) = read_dockerfile(request)?;
    let dockerfile = Dockerfile::parse(&file, &text)?;
    let target = dockerfile
        .target_index(request.target.as_deref())
        .map_err(BuildError::invalid)?;
    let store = ImageStore::open(root).map_err(BuildError::image("opening the image store"))?;
    let args = build_args(request);
    let mut builder = Builder {
        root,
        request,
        dockerfile: &dockerfile,
        store,
        context: SourceTree::context(&request.context)?,
        cache: Cache::new(root),
        meta: Vec::new(),
        args,
        used: BTreeSet::new(),
        results: BTreeMap::new(),
        step: 0,
    };
    builder.meta_args()?;
    for index in dockerfile.needed_stages(target) {
        let draft = builder.stage(index)?;
        builder.results.insert(index, draft);
    }
    let mut draft = builder
        .results
        .remove(&target)
        .ok_or_else(|| BuildError::invalid("the target stage was not built"))?;
    if !request.labels.is_empty() {
        let labels = &mut draft.config["config"]["Labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        for (key, value) in &request.labels {
            labels[key] = json!(value);
        }
    }
    let unused: Vec<&str> = builder
        .args
        .keys()
        .filter(|k| !builder.used.contains(*k))
        .map(String::as_str)
        .collect();
    if !unused.is_empty() {
        builder.say(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    let id = builder
        .store
        .store_draft(&draft, &request.tags)
        .map_err(BuildError::image("storing the built image"))?;
    builder.say(&format!("writing image {id} done"));
    for tag in &request.tags {
        builder.say(&format!("naming to {tag} done"));
    }
    Ok(id)
}

/// The Dockerfile's name (for error messages) and text.
fn read_dockerfile(request: &BuildRequest) -> Result<(String, String), BuildError> {
    if let Some(text) = &request.dockerfile_inline {
        return Ok(("Dockerfile".to_string(), text.clone()));
    }
    let path = match &request.dockerfile {
        Some(path) if path.is_absolute() => path.clone(),
        Some(path) => request.context.join(path),
        None => request.context.join("Dockerfile"),
    };
    let text = fs::read_to_string(&path).map_err(BuildError::io("cannot read the Dockerfile", &path))?;
    let name = path
        .file_name()
        .map_or_else(|| "Dockerfile".to_string(), |n| n.to_string_lossy().into_owned());
    Ok((name, text))
}

/// `--build-arg K=V`, and `K` alone taken from the environment.
fn build_args(request: &BuildRequest) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (key, value) in &request.args {
        match value {
            Some(value) => {
                args.insert(key.clone(), value.clone());
            }
            None => {
                if let Ok(value) = std::env::var(key) {
                    args.insert(key.clone(), value);
                }
            }
        }
    }
    args
}

struct Builder<'a> {
    root: &'a Root,
    request: &'a BuildRequest,
    dockerfile: &'a Dockerfile,
    store: ImageStore,
    context: SourceTree,
    cache: Cache,
    /// Meta ARGs (before the first FROM) with their values.
    meta: Vec<(String, String)>,
    /// `--build-arg`s.
    args: BTreeMap<String, String>,
    used: BTreeSet<String>,
    results: BTreeMap<usize, ImageDraft>,
    step: usize,
}

/// A stage being built.
struct StageState {
    draft: ImageDraft,
    /// ARGs declared in this stage, with their values.
    args: Vec<(String, String)>,
    flags: StageFlags,
    label: String,
    count: usize,
    position: usize,
}

impl Builder<'_> {
    fn say(&self, line: &str) {
        if !self.request.quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    fn at(&self, line: usize) -> impl FnOnce(BuildError) -> BuildError + '_ {
        move |source| match source {
            // Parse errors already name their line.
            BuildError::Parse(_) | BuildError::At { .. } => source,
            source => BuildError::At {
                file: self.dockerfile.file.clone(),
                line,
                source: Box::new(source),
            },
        }
    }

    fn meta_args(&mut self) -> Result<(), BuildError> {
        for (line, decl) in &self.dockerfile.meta_args {
            let value = match self.args.get(&decl.name) {
                Some(value) => Some(value.clone()),
                None => match &decl.default {
                    Some(default) => {
                        let meta = &self.meta;
                        let lookup = |n: &str| meta.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                        Some(
                            expand(default, self.dockerfile.escape, &lookup)
                                .map_err(|m| self.at(*line)(BuildError::invalid(m)))?,
                        )
                    }
                    None => None,
                },
            };
            self.used.insert(decl.name.clone());
            if let Some(value) = value {
                self.meta.push((decl.name.clone(), value));
            }
        }
        Ok(())
    }

    fn stage(&mut self, index: usize) -> Result<ImageDraft, BuildError> {
        let dockerfile = self.dockerfile;
        let stage = &dockerfile.stages[index];
        let label = match (&stage.name, dockerfile.stages.len()) {
            (Some(name), _) => format!("{name} "),
            (None, 1) => String::new(),
            (None, _) => format!("stage-{index} "),
        };
        let mut state = StageState {
            draft: ImageDraft::scratch(),
            args: Vec::new(),
            flags: StageFlags::default(),
            label,
            count: stage.instructions.len() + 1,
            position: 1,
        };
        let meta = &self.meta;
        let lookup = |n: &str| meta.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let base =
            expand(&stage.base, dockerfile.escape, &lookup).map_err(|m| self.at(stage.line)(BuildError::invalid(m)))?;
        self.progress(&state, &format!("FROM {base}"));
        state.draft = self
            .base(&base, stage.platform.as_deref(), index)
            .map_err(self.at(stage.line))?;
        // ONBUILD triggers of the base run first, then are not inherited.
        let triggers = config_ops::onbuild_of(&state.draft.config);
        if !triggers.is_empty() {
            if let Some(section) = state.draft.config["config"].as_object_mut() {
                section.remove("OnBuild");
            }
            for trigger in triggers {
                let instruction = Instruction::parse(&trigger, stage.line, dockerfile.escape).map_err(|message| {
                    BuildError::Parse(super::ParseError {
                        file: dockerfile.file.clone(),
                        line: stage.line,
                        message: format!("ONBUILD trigger {trigger:?}: {message}"),
                    })
                })?;
                self.step += 1;
                self.say(&format!("#{} [{}ONBUILD] {trigger}", self.step, state.label));
                self.instruction(&mut state, &instruction, index)?;
            }
        }
        for instruction in &stage.instructions {
            state.position += 1;
            self.progress(&state, &instruction.original);
            self.instruction(&mut state, instruction, index)?;
        }
        Ok(state.draft)
    }

    fn progress(&mut self, state: &StageState, text: &str) {
        self.step += 1;
        self.say(&format!(
            "#{} [{}{}/{}] {text}",
            self.step, state.label, state.position, state.count
        ));
    }

    /// The draft `FROM base` starts from: scratch, an earlier stage, or a
    /// stored image (pulled when absent or with `--pull`).
    fn base(&self, base: &str, platform: Option<&str>, index: usize) -> Result<ImageDraft, BuildError> {
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(ImageDraft::scratch());
        }
        if let Some(stage) = self.dockerfile.stage_index(base, index) {
            return self
                .results
                .get(&stage)
                .cloned()
                .ok_or_else(|| BuildError::invalid(format!("stage {base} was not built")));
        }
        self.image(base, platform, self.request.pull)
    }

    fn image(&self, reference: &str, platform: Option<&str>, pull: bool) -> Result<ImageDraft, BuildError> {
        match self.store.draft_of(reference) {
            Ok((_, draft)) if !pull => return Ok(draft),
            Ok(_) | Err(ImageError::NotFound { .. }) => {}
            Err(e) => return Err(BuildError::image(format!("resolving {reference}"))(e)),
        }
        let pull_error = |source| BuildError::Pull {
            image: reference.to_string(),
            source,
        };
        let platform = platform.map(Platform::parse).transpose().map_err(pull_error)?;
        let puller = Puller::new(self.root).map_err(pull_error)?;
        let mode = if self.request.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Lines
        };
        let progress = Progress::to(mode, Box::new(std::io::stderr()));
        puller
            .pull(reference, &PullOptions { platform }, &progress)
            .map_err(pull_error)?;
        let (_, draft) = self
            .store
            .draft_of(reference)
            .map_err(BuildError::image(format!("resolving {reference}")))?;
        Ok(draft)
    }

    fn instruction(
        &mut self,
        state: &mut StageState,
        instruction: &Instruction,
        index: usize,
    ) -> Result<(), BuildError> {
        let at = instruction.line;
        match &instruction.kind {
            Kind::Arg(decls) => {
                for decl in decls {
                    self.used.insert(decl.name.clone());
                    let value = match self.args.get(&decl.name) {
                        Some(value) => Some(value.clone()),
                        None => match &decl.default {
                            Some(default) => Some(
                                self.vars(state)
                                    .expand(default, self.dockerfile.escape)
                                    .map_err(|m| self.at(at)(BuildError::invalid(m)))?,
                            ),
                            // A meta ARG re-declared without a value keeps its value.
                            None => self
                                .meta
                                .iter()
                                .rev()
                                .find(|(k, _)| *k == decl.name)
                                .map(|(_, v)| v.clone()),
                        },
                    };
                    if let Some(value) = value {
                        state.args.retain(|(k, _)| *k != decl.name);
                        state.args.push((decl.name.clone(), value));
                    }
                }
                Ok(())
            }
            Kind::Run(spec) => self.run(state, spec).map_err(self.at(at)),
            Kind::Copy(spec) => self.copy(state, spec, false, index).map_err(self.at(at)),
            Kind::Add(spec) => self.copy(state, spec, true, index).map_err(self.at(at)),
            Kind::From { .. } => Err(self.at(at)(BuildError::invalid("FROM inside a stage"))),
            kind => self.metadata(state, kind).map_err(self.at(at)),
        }
    }

    fn vars<'s>(&self, state: &'s StageState) -> Vars<'s> {
        Vars {
            env: config_ops::env_of(&state.draft.config),
            args: &state.args,
        }
    }

    fn metadata(&mut self, state: &mut StageState, kind: &Kind) -> Result<(), BuildError> {
        let mut next = state.draft.clone();
        let args = state.args.clone();
        let vars = Vars {
            env: config_ops::env_of(&state.draft.config),
            args: &args,
        };
        let cmd_set = state.flags.cmd_set;
        let created_by = config_ops::apply(&mut next.config, kind, &vars, self.dockerfile.escape, &mut state.flags)
            .map_err(BuildError::invalid)?;
        let key = cache::key(
            &state.draft.identity().to_string(),
            &created_by,
            &[format!("cmd_set={cmd_set}")],
        );
        self.finish(state, &key, next, |next| {
            config_ops::record_step(&mut next.config, &created_by, None, &crate::rfc3339::now_secs());
            Ok(())
        })
    }

    /// Takes the cached result of `key`, or makes it with `make` and
    /// records it.
    fn finish(
        &mut self,
        state: &mut StageState,
        key: &str,
        mut next: ImageDraft,
        make: impl FnOnce(&mut ImageDraft) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        if !self.request.no_cache {
            if let Some(cached) = self.cache.get(key, &self.store) {
                state.draft = cached;
                return Ok(());
            }
        }
        make(&mut next)?;
        self.cache.put(key, &next)?;
        state.draft = next;
        Ok(())
    }

    fn cached(&self, key: &str) -> Option<ImageDraft> {
        if self.request.no_cache {
            return None;
        }
        self.cache.get(key, &self.store)
    }

    fn run(&mut self, state: &mut StageState, spec: &RunSpec) -> Result<(), BuildError> {
        if !spec.mounts.is_empty() {
            return Err(BuildError::invalid("RUN --mount is not supported yet"));
        }
        let config = &state.draft.config;
        let argv = config_ops::argv(&spec.command, &config_ops::shell_of(config));
        let env_pairs = config_ops::env_of(config);
        let mut env: Vec<String> = env_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Build args reach RUN as environment; ENV wins over them.
        let mut arg_inputs = Vec::new();
        for (key, value) in &state.args {
            arg_inputs.push(format!("{key}={value}"));
            if !env_pairs.iter().any(|(k, _)| k == key) {
                env.push(format!("{key}={value}"));
            }
        }
        arg_inputs.sort();
        let created_by = format!("RUN {}", argv.join(" "));
        let key = cache::key(
            &state.draft.identity().to_string(),
            &format!("RUN {}", json!(argv)),
            &[arg_inputs.join("\n"), format!("network={:?}", spec.network)],
        );
        if let Some(cached) = self.cached(&key) {
            self.say(&format!("#{} CACHED", self.step));
            state.draft = cached;
            return Ok(());
        }
        let layers = self
            .store
            .layer_dirs(&state.draft.layers)
            .map_err(BuildError::image("unpacking the layers for RUN"))?;
        let mut progress = run_step::stderr_progress(self.step, self.request.quiet);
        let container = run_step::run(
            self.root,
            RunRequest {
                argv,
                env,
                workdir: config_ops::string_of(config, "WorkingDir"),
                user: config_ops::string_of(config, "User"),
                network: spec.network.as_deref(),
                layers,
                progress: &mut progress,
            },
        )?;
        let upper = container
            .upper()
            .ok_or_else(|| BuildError::invalid("the RUN container is gone"))?;
        let layer = self
            .store
            .layer_from_upper(&upper)
            .map_err(BuildError::image("writing the RUN layer"))?;
        drop(container);
        let mut next = state.draft.clone();
        self.add_layer(&mut next, layer, &created_by);
        self.cache.put(&key, &next)?;
        state.draft = next;
        Ok(())
    }

    fn add_layer(&self, draft: &mut ImageDraft, layer: crate::image::LayerRef, created_by: &str) {
        config_ops::record_step(
            &mut draft.config,
            created_by,
            Some(&layer.diff_id.to_string()),
            &crate::rfc3339::now_secs(),
        );
        draft.layers.push(layer);
    }

    fn copy(&mut self, state: &mut StageState, spec: &CopySpec, add: bool, index: usize) -> Result<(), BuildError> {
        let escape = self.dockerfile.escape;
        let vars = self.vars(state);
        let ex = |word: &str| vars.expand(word, escape).map_err(BuildError::invalid);
        let keyword = if add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        for source in &spec.sources {
            let source = ex(source)?;
            if add && (source.contains("://") || source.starts_with("git@")) {
                return Err(BuildError::invalid(format!(
                    "ADD from a URL ({source}) is not supported: download it in a RUN step (curl/wget) instead"
                )));
            }
            sources.push(source);
        }
        let dest = ex(&spec.dest)?;
        let workdir = config_ops::string_of(&state.draft.config, "WorkingDir").unwrap_or_else(|| "/".to_string());
        let wants_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let mut dest = config_ops::clean_path(&if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{workdir}/{dest}")
        });
        if wants_dir && !dest.ends_with('/') {
            dest.push('/');
        }
        let chown = spec.chown.as_deref().map(ex).transpose()?;
        let chmod = spec.chmod.as_deref().map(ex).transpose()?;
        let from = spec.from.as_deref().map(ex).transpose()?;
        let text = format!(
            "{keyword}{}{}{} {} {dest}",
            from.as_deref().map(|f| format!(" --from={f}")).unwrap_or_default(),
            chown.as_deref().map(|c| format!(" --chown={c}")).unwrap_or_default(),
            chmod.as_deref().map(|c| format!(" --chmod={c}")).unwrap_or_default(),
            sources.join(" ")
        );
        // The source tree: the context, or another stage's or image's files.
        let source_draft = match &from {
            Some(from) => Some(match self.dockerfile.stage_index(from, index) {
                Some(stage) => self
                    .results
                    .get(&stage)
                    .cloned()
                    .ok_or_else(|| BuildError::invalid(format!("stage {from} was not built")))?,
                None => self.image(from, None, false)?,
            }),
            None => None,
        };
        let input = match &source_draft {
            Some(draft) => format!("from={}", draft.identity()),
            None => {
                let mut matched = Vec::new();
                for source in &sources {
                    matched.extend(self.context.resolve(source).map_err(BuildError::invalid)?);
                }
                format!("context={}", self.context.content_hash(&matched)?)
            }
        };
        let key = cache::key(&state.draft.identity().to_string(), &text, &[input]);
        if let Some(cached) = self.cached(&key) {
            self.say(&format!("#{} CACHED", self.step));
            state.draft = cached;
            return Ok(());
        }
        let tmp = self.root.tmp_dir();
        let from_overlay = match &source_draft {
            Some(draft) => {
                let layers = self.store.layer_dirs(&draft.layers).map_err(BuildError::image(format!(
                    "unpacking the layers of --from={}",
                    from.as_deref().unwrap_or("")
                )))?;
                Some(Overlay::mount(&tmp, &layers)?)
            }
            None => None,
        };
        let tree = match &from_overlay {
            Some(overlay) => SourceTree::rootfs(&overlay.merged()),
            None => self.context.clone(),
        };
        let mut matched = Vec::new();
        for source in &sources {
            matched.extend(tree.resolve(source).map_err(BuildError::invalid)?);
        }
        let layers = self
            .store
            .layer_dirs(&state.draft.layers)
            .map_err(BuildError::image(format!("unpacking the layers for {keyword}")))?;
        let mut overlay = Overlay::mount(&tmp, &layers)?;
        copy_step::copy_into(
            &overlay.merged(),
            &CopyRequest {
                tree: &tree,
                sources: matched,
                dest,
                chown,
                chmod,
                keep_owners: from.is_some(),
                extract: add,
            },
        )?;
        overlay.unmount()?;
        drop(from_overlay);
        let layer = self
            .store
            .layer_from_upper(&overlay.upper())
            .map_err(BuildError::image(format!("writing the {keyword} layer")))?;
        drop(overlay);
        let mut next = state.draft.clone();
        self.add_layer(&mut next, layer, &format!("{text} # berth"));
        self.cache.put(&key, &next)?;
        state.draft = next;
        Ok(())
    }
}
