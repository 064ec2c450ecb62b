//! The loading pipeline: files → documents (read, interpolate, include,
//! extends, absolute paths) → merge → typed model → resolve → validate.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::environment::{self, Variables};
use super::error::LoadError;
use super::extensions;
use super::interpolate::interpolate_value;
use super::merge::{canonicalize, merge_documents, merge_services, strip_tags};
use super::model::{ComposeFile, Include, Project};
use super::path::{PathSegment, YamlPath};
use super::resolve::{self, ResolveContext};
use super::source::{parse_yaml, syntax_error_location, SourceMap};
use super::syntax::volumes::{clean_path, parse_volume, VolumeType};
use super::validate;
use super::Locator;
use crate::graph::DependencyGraph;

/// Everything `load` needs to know; the CLI fills it from flags and the
/// process environment, tests fill it directly.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files; empty means `COMPOSE_FILE` or discovery.
    pub files: Vec<PathBuf>,
    /// Where relative `-f` paths and discovery start (the cwd).
    pub working_dir: PathBuf,
    pub project_directory: Option<PathBuf>,
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// The caller's environment (the OS environment for the CLI).
    pub os_env: BTreeMap<String, String>,
    /// `false` for `berth config --no-interpolate`.
    pub no_interpolate: bool,
}

/// A loaded project with what the CLI and engine need around it.
#[derive(Debug)]
pub struct LoadedProject {
    pub project: Project,
    pub files: Vec<PathBuf>,
    pub project_dir: PathBuf,
    pub graph: DependencyGraph,
    pub warnings: Vec<String>,
    /// Every profile named by any service, enabled or not.
    pub profiles: BTreeSet<String>,
}

/// Includes and extends may nest; this bounds hostile recursion.
const MAX_DEPTH: usize = 32;

/// Loads a project as `docker compose` would.
pub fn load(options: &LoadOptions) -> Result<LoadedProject, LoadError> {
    let mut variables = Variables::from_os(options.os_env.clone());
    let working_dir = absolute(&options.working_dir, Path::new("/"));
    load_dotenv(options, &working_dir, &mut variables)?;

    let files = compose_files(options, &working_dir, &variables)?;
    let project_dir = match &options.project_directory {
        Some(dir) => absolute(dir, &working_dir),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| working_dir.clone()),
    };
    if options.env_files.is_empty() && project_dir != working_dir {
        let dotenv = project_dir.join(".env");
        if dotenv.is_file() {
            let pairs = environment::read_env_file(&dotenv, &variables, false)?;
            variables.add_defaults(pairs);
        }
    }

    let mut loader = DocumentLoader {
        interpolate: !options.no_interpolate,
        unset: BTreeSet::new(),
        depth: 0,
        parsed: HashMap::new(),
    };
    for file in &files {
        loader.preload(file)?;
    }
    let name = project_name(options, &files, &project_dir, &variables, &loader.parsed)?;
    variables.add_defaults([("COMPOSE_PROJECT_NAME".to_string(), name.clone())]);
    let profiles = match options.profiles.is_empty() {
        false => options.profiles.clone(),
        true => variables
            .get("COMPOSE_PROFILES")
            .map(|p| environment::split_list(&p, ','))
            .unwrap_or_default(),
    };

    let mut merged: Option<Value> = None;
    let mut source_map = SourceMap::default();
    for file in &files {
        let (document, map) = loader.load(file, &project_dir, &variables)?;
        source_map.overlay(map);
        merged = Some(match merged {
            None => document,
            Some(base) => merge_documents(base, document),
        });
    }
    let mut document = strip_tags(merged.unwrap_or_else(|| Value::Mapping(Mapping::new())));
    let primary = files.first().cloned().unwrap_or_default();
    let locator = Locator {
        map: source_map,
        primary_file: primary,
    };

    let extensions = extensions::split(&mut document);
    let file: ComposeFile = deserialize(document, &locator)?;

    let mut warnings: Vec<String> = loader
        .unset
        .iter()
        .map(|v| format!("The {v:?} variable is not set. Defaulting to a blank string."))
        .collect();
    if file.version.is_some() {
        warnings.push(format!(
            "{}: the attribute `version` is obsolete, it will be ignored",
            locator.describe(&YamlPath::root().key("version"))
        ));
    }

    let mut project = Project {
        name,
        services: file.services,
        networks: file.networks,
        volumes: file.volumes,
        configs: file.configs,
        secrets: file.secrets,
        models: file.models,
        extensions: extensions.top_level,
    };
    for (service, own) in extensions.services {
        if let Some(s) = project.services.get_mut(&service) {
            s.extensions = own;
        }
    }

    let context = ResolveContext {
        variables: &variables,
        active_profiles: &profiles,
        locator: &locator,
    };
    let resolved = resolve::resolve(&mut project, &context)?;
    warnings.extend(resolved.warnings);
    let graph = validate::validate(&project, &locator)?;
    warnings.extend(super::support::unsupported_keys(&project, &locator));

    Ok(LoadedProject {
        project,
        files,
        project_dir,
        graph,
        warnings,
        profiles: resolved.all_profiles,
    })
}

fn load_dotenv(options: &LoadOptions, working_dir: &Path, variables: &mut Variables) -> Result<(), LoadError> {
    if options.env_files.is_empty() {
        let dotenv = working_dir.join(".env");
        if dotenv.is_file() {
            let pairs = environment::read_env_file(&dotenv, variables, false)?;
            variables.add_defaults(pairs);
        }
        return Ok(());
    }
    // Later --env-file files override earlier ones; the OS still wins.
    let mut combined: BTreeMap<String, String> = BTreeMap::new();
    for file in &options.env_files {
        let path = absolute(file, working_dir);
        combined.extend(environment::read_env_file(&path, variables, false)?);
    }
    variables.add_defaults(combined);
    Ok(())
}

fn compose_files(options: &LoadOptions, working_dir: &Path, variables: &Variables) -> Result<Vec<PathBuf>, LoadError> {
    if !options.files.is_empty() {
        return Ok(options.files.iter().map(|f| absolute(f, working_dir)).collect());
    }
    if let Some(list) = variables.get("COMPOSE_FILE") {
        let separator = variables
            .get("COMPOSE_PATH_SEPARATOR")
            .and_then(|s| s.chars().next())
            .unwrap_or(':');
        let files: Vec<PathBuf> = environment::split_list(&list, separator)
            .iter()
            .map(|f| absolute(Path::new(f), working_dir))
            .collect();
        if !files.is_empty() {
            return Ok(files);
        }
    }
    let base = environment::discover_file(working_dir)?;
    let mut files = vec![base.clone()];
    files.extend(environment::override_file(&base));
    Ok(files)
}

/// `-p` > `COMPOSE_PROJECT_NAME` > `name:` (last file wins) > directory.
fn project_name(
    options: &LoadOptions,
    files: &[PathBuf],
    project_dir: &Path,
    variables: &Variables,
    parsed: &HashMap<PathBuf, (String, Value)>,
) -> Result<String, LoadError> {
    if let Some(name) = &options.project_name {
        environment::check_explicit_project_name(name)?;
        return Ok(name.clone());
    }
    if let Some(name) = variables.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        environment::check_explicit_project_name(&name)?;
        return Ok(name);
    }
    let mut from_files = None;
    for file in files {
        let Some((_, value)) = parsed.get(file) else { continue };
        if let Some(raw) = value.get("name").and_then(Value::as_str) {
            let lookup = |n: &str| variables.get(n);
            let mut unset = BTreeSet::new();
            let name = super::interpolate::interpolate(raw, &lookup, &mut unset).map_err(|e| LoadError::Invalid {
                file: file.clone(),
                location: None,
                path: YamlPath::root().key("name"),
                message: e.to_string(),
            })?;
            from_files = Some(name);
        }
    }
    let name = match from_files {
        Some(n) => environment::normalize_project_name(&n),
        None => environment::normalize_project_name(
            &project_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        ),
    };
    if name.is_empty() {
        return Err(LoadError::Project(
            "project name is empty: set one with -p, COMPOSE_PROJECT_NAME or the top-level `name:`".into(),
        ));
    }
    Ok(name)
}

struct DocumentLoader {
    interpolate: bool,
    unset: BTreeSet<String>,
    depth: usize,
    /// The `-f` files, parsed once up front (the project name needs their
    /// `name:` before anything is interpolated).
    parsed: HashMap<PathBuf, (String, Value)>,
}

impl DocumentLoader {
    fn preload(&mut self, file: &Path) -> Result<(), LoadError> {
        let text = read(file)?;
        let value = parse_yaml(&text).map_err(|e| syntax_error(file, &e))?;
        self.parsed.insert(file.to_path_buf(), (text, value));
        Ok(())
    }

    /// Reads one file into a canonical document whose includes and extends
    /// are resolved and whose relative paths are absolute (against
    /// `base_dir`).
    fn load(&mut self, file: &Path, base_dir: &Path, variables: &Variables) -> Result<(Value, SourceMap), LoadError> {
        self.depth += 1;
        let result = self.load_inner(file, base_dir, variables);
        self.depth -= 1;
        result
    }

    fn load_inner(
        &mut self,
        file: &Path,
        base_dir: &Path,
        variables: &Variables,
    ) -> Result<(Value, SourceMap), LoadError> {
        let (mut document, locator) = self.read_document(file, variables)?;
        self.apply_extends(&mut document, &locator, file, variables)?;
        make_paths_absolute(&mut document, base_dir, variables);
        Ok((document, locator.map))
    }

    /// Reads, interpolates and canonicalizes one file and resolves its
    /// includes; its extends and relative paths are left as written.
    fn read_document(&mut self, file: &Path, variables: &Variables) -> Result<(Value, Locator), LoadError> {
        if self.depth > MAX_DEPTH {
            return Err(LoadError::Project(format!(
                "{}: include/extends nested more than {MAX_DEPTH} levels deep",
                file.display()
            )));
        }
        let (text, mut document) = match self.parsed.remove(file) {
            Some(parsed) => parsed,
            None => {
                let text = read(file)?;
                let document = parse_yaml(&text).map_err(|e| syntax_error(file, &e))?;
                (text, document)
            }
        };
        let map = SourceMap::index(&Arc::new(file.to_path_buf()), &text);
        let locator = Locator {
            map,
            primary_file: file.to_path_buf(),
        };
        if !document.is_mapping() {
            return Err(locator.invalid(&YamlPath::root(), "the top level of a compose file must be a mapping"));
        }
        if self.interpolate {
            let lookup = |n: &str| variables.get(n);
            interpolate_value(&mut document, &YamlPath::root(), &lookup, &mut self.unset)
                .map_err(|e| locator.invalid(&e.path, &e.source.to_string()))?;
        }
        canonicalize(&mut document);
        let mut map = locator.map;
        let file_dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.apply_includes(&mut document, &mut map, file, &file_dir, variables)?;
        let locator = Locator {
            map,
            primary_file: file.to_path_buf(),
        };
        Ok((document, locator))
    }

    fn apply_includes(
        &mut self,
        document: &mut Value,
        map: &mut SourceMap,
        file: &Path,
        file_dir: &Path,
        variables: &Variables,
    ) -> Result<(), LoadError> {
        let Some(includes) = document.as_mapping_mut().and_then(|m| m.remove("include")) else {
            return Ok(());
        };
        let locator = Locator {
            map: map.clone(),
            primary_file: file.to_path_buf(),
        };
        let includes: Vec<Include> = match includes {
            Value::Null => Vec::new(),
            value => serde_yaml::from_value(value)
                .map_err(|e| locator.invalid(&YamlPath::root().key("include"), &e.to_string()))?,
        };
        for (index, include) in includes.iter().enumerate() {
            let at = YamlPath::root().key("include").index(index);
            let paths: Vec<PathBuf> = include.path.iter().map(|p| absolute(Path::new(p), file_dir)).collect();
            let Some(first) = paths.first() else {
                return Err(locator.invalid(&at, "include entry has no path"));
            };
            let project_dir = match &include.project_directory {
                Some(dir) => absolute(Path::new(dir), file_dir),
                None => first.parent().unwrap_or(Path::new("/")).to_path_buf(),
            };
            // The included project has its own .env (or env_file), which the
            // including project's variables override.
            let mut child_variables = variables.clone();
            let env_files: Vec<PathBuf> = match include.env_file.is_empty() {
                true => vec![project_dir.join(".env")]
                    .into_iter()
                    .filter(|p| p.is_file())
                    .collect(),
                false => include
                    .env_file
                    .iter()
                    .map(|p| absolute(Path::new(p), file_dir))
                    .collect(),
            };
            for env_file in env_files {
                let pairs = environment::read_env_file(&env_file, variables, false)?;
                child_variables.add_defaults(pairs);
            }
            let mut included: Option<Value> = None;
            for path in &paths {
                let (doc, child_map) = self.load(path, &project_dir, &child_variables)?;
                map.overlay(child_map);
                included = Some(match included {
                    None => doc,
                    Some(base) => merge_documents(base, doc),
                });
            }
            if let Some(included) = included {
                add_included_resources(document, strip_tags(included), &locator, &at)?;
            }
        }
        Ok(())
    }

    /// Replaces each `extends` by the merge of the base service (resolved
    /// recursively) and the service's own keys.
    fn apply_extends(
        &mut self,
        document: &mut Value,
        locator: &Locator,
        file: &Path,
        variables: &Variables,
    ) -> Result<(), LoadError> {
        let names: Vec<String> = document
            .get("services")
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        for name in names {
            let mut chain = Vec::new();
            let resolved = self.extended_service(document, &name, locator, file, variables, &mut chain)?;
            if let Some(services) = document.get_mut("services").and_then(Value::as_mapping_mut) {
                services.insert(Value::String(name), resolved);
            }
        }
        Ok(())
    }

    fn extended_service(
        &mut self,
        document: &Value,
        name: &str,
        locator: &Locator,
        file: &Path,
        variables: &Variables,
        chain: &mut Vec<String>,
    ) -> Result<Value, LoadError> {
        let at = YamlPath::root().key("services").key(name);
        let link = format!("{}:{name}", file.display());
        if chain.contains(&link) {
            chain.push(link);
            return Err(locator.invalid(&at.key("extends"), &format!("circular extends: {}", chain.join(" → "))));
        }
        let Some(service) = document.get("services").and_then(|s| s.get(name)).cloned() else {
            return Err(locator.invalid(&at, &format!("cannot extend service {name:?}: no such service")));
        };
        let mut own = match service {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => return Ok(service),
        };
        let Some(extends) = own.remove("extends") else {
            return Ok(Value::Mapping(own));
        };
        chain.push(link);
        let base_name = extends
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let base_file = extends.get("file").and_then(Value::as_str).map(str::to_string);
        let base = match base_file {
            None => {
                if document
                    .get("services")
                    .and_then(|s| s.get(base_name.as_str()))
                    .is_none()
                {
                    return Err(locator.invalid(
                        &at.key("extends"),
                        &format!("cannot extend service {base_name:?}: no such service"),
                    ));
                }
                self.extended_service(document, &base_name, locator, file, variables, chain)?
            }
            Some(other) => {
                let other = absolute(Path::new(&other), file.parent().unwrap_or(Path::new("/")));
                self.depth += 1;
                let base = self.extended_service_in(&other, &base_name, variables, chain);
                self.depth -= 1;
                match base? {
                    Some(base) => base,
                    None => {
                        return Err(locator.invalid(
                            &at.key("extends"),
                            &format!(
                                "cannot extend service {base_name:?}: not defined in {}",
                                other.display()
                            ),
                        ))
                    }
                }
            }
        };
        chain.pop();
        Ok(merge_services(base, Value::Mapping(own)))
    }

    /// The service `name` of another file, its own extends resolved (only
    /// its own: the chain then catches cycles across files) and its relative
    /// paths made absolute against that file's directory. `None` when the
    /// file does not define it.
    fn extended_service_in(
        &mut self,
        file: &Path,
        name: &str,
        variables: &Variables,
        chain: &mut Vec<String>,
    ) -> Result<Option<Value>, LoadError> {
        let (document, locator) = self.read_document(file, variables)?;
        if document.get("services").and_then(|s| s.get(name)).is_none() {
            return Ok(None);
        }
        let service = self.extended_service(&document, name, &locator, file, variables, chain)?;
        let mut services = Mapping::new();
        services.insert(Value::String(name.to_string()), service);
        let mut wrapper = Mapping::new();
        wrapper.insert("services".into(), Value::Mapping(services));
        let mut wrapper = Value::Mapping(wrapper);
        let file_dir = file.parent().unwrap_or(Path::new("/"));
        make_paths_absolute(&mut wrapper, file_dir, variables);
        Ok(wrapper
            .get_mut("services")
            .and_then(|s| s.as_mapping_mut())
            .and_then(|s| s.remove(name)))
    }
}

/// Adds an included project's resources; a name defined on both sides is
/// a conflict, as in compose.
fn add_included_resources(
    document: &mut Value,
    included: Value,
    locator: &Locator,
    at: &YamlPath,
) -> Result<(), LoadError> {
    let Value::Mapping(included) = included else {
        return Ok(());
    };
    let Some(root) = document.as_mapping_mut() else {
        return Ok(());
    };
    for (section, entries) in included {
        let Some(section_name) = section.as_str().map(str::to_string) else {
            continue;
        };
        let Value::Mapping(entries) = entries else {
            continue;
        };
        let target = root
            .entry(section.clone())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if target.is_null() {
            *target = Value::Mapping(Mapping::new());
        }
        let Some(target) = target.as_mapping_mut() else {
            continue;
        };
        for (key, value) in entries {
            if let Some(existing) = target.get(&key) {
                if existing != &value {
                    let name = key.as_str().unwrap_or_default();
                    return Err(locator.invalid(
                        at,
                        &format!("{section_name}.{name} conflicts with the definition in an included file"),
                    ));
                }
                continue;
            }
            target.insert(key, value);
        }
    }
    Ok(())
}

/// Relative paths become absolute against the directory of the file that
/// wrote them (or the project directory for `-f` files), before merging, so
/// that merged and extended definitions keep pointing at the same files.
fn make_paths_absolute(document: &mut Value, base_dir: &Path, variables: &Variables) {
    let home = variables.get("HOME");
    let fix = |p: &str| -> String { absolute_str(p, base_dir, home.as_deref()) };
    if let Some(services) = document.get_mut("services").and_then(Value::as_mapping_mut) {
        for (_, service) in services.iter_mut() {
            let Some(service) = service.as_mapping_mut() else {
                continue;
            };
            if let Some(context) = service.get_mut("build").and_then(|b| b.get_mut("context")) {
                if let Some(c) = context.as_str().filter(|c| !is_remote_context(c)) {
                    *context = Value::String(fix(c));
                }
            }
            for key in ["env_file", "label_file"] {
                rewrite_path_list(service.get_mut(key), &fix);
            }
            if let Some(Value::Sequence(volumes)) = service.get_mut("volumes") {
                for volume in volumes.iter_mut() {
                    absolute_bind_source(volume, &fix);
                }
            }
            if let Some(Value::Sequence(rules)) = service.get_mut("develop").and_then(|d| d.get_mut("watch")) {
                for rule in rules {
                    if let Some(path) = rule.get_mut("path") {
                        if let Some(p) = path.as_str() {
                            *path = Value::String(fix(p));
                        }
                    }
                }
            }
        }
    }
    for section in ["configs", "secrets"] {
        if let Some(entries) = document.get_mut(section).and_then(Value::as_mapping_mut) {
            for (_, entry) in entries.iter_mut() {
                if let Some(file) = entry.get_mut("file") {
                    if let Some(p) = file.as_str() {
                        *file = Value::String(fix(p));
                    }
                }
            }
        }
    }
}

fn rewrite_path_list(value: Option<&mut Value>, fix: &dyn Fn(&str) -> String) {
    match value {
        Some(Value::String(p)) => *p = fix(p),
        Some(Value::Sequence(items)) => {
            for item in items {
                match item {
                    Value::String(p) => *p = fix(p),
                    Value::Mapping(m) => {
                        if let Some(Value::String(p)) = m.get_mut("path") {
                            *p = fix(p);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn absolute_bind_source(volume: &mut Value, fix: &dyn Fn(&str) -> String) {
    match volume {
        Value::String(spec) => {
            if let Ok(mut parsed) = parse_volume(spec) {
                if parsed.kind == VolumeType::Bind {
                    parsed.source = parsed.source.as_deref().map(fix);
                    if let Ok(long) = serde_yaml::to_value(&parsed) {
                        *volume = long;
                    }
                }
            }
        }
        Value::Mapping(m) => {
            let is_bind = m.get("type").and_then(Value::as_str) == Some("bind");
            if let (true, Some(Value::String(source))) = (is_bind, m.get_mut("source")) {
                *source = fix(source);
            }
        }
        _ => {}
    }
}

fn is_remote_context(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

fn absolute_str(path: &str, base: &Path, home: Option<&str>) -> String {
    if let (Some(rest), Some(home)) = (path.strip_prefix('~'), home) {
        if rest.is_empty() || rest.starts_with('/') {
            return clean_path(&format!("{home}{rest}"));
        }
    }
    if path.starts_with('/') {
        return clean_path(path);
    }
    clean_path(&format!("{}/{path}", base.display()))
}

fn absolute(path: &Path, base: &Path) -> PathBuf {
    PathBuf::from(absolute_str(&path.to_string_lossy(), base, None))
}

fn read(file: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        path: file.to_path_buf(),
        reason: source,
    })
}

fn syntax_error(file: &Path, error: &serde_yaml::Error) -> LoadError {
    LoadError::Syntax {
        file: file.to_path_buf(),
        location: syntax_error_location(file, error),
        message: error.to_string(),
    }
}

/// Deserializes the merged document, pointing a failure at its source.
fn deserialize(document: Value, locator: &Locator) -> Result<ComposeFile, LoadError> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = yaml_path(e.path());
        let message = super::suggest::improve_message(&e.inner().to_string());
        let message = strip_serde_yaml_location(&message);
        // An unknown key's own position is more useful than its parent's.
        let target = match super::suggest::unknown_field(&message) {
            Some(field) if path.last_key() != Some(field.as_str()) => path.key(field),
            _ => path,
        };
        locator.invalid(&target, &message)
    })
}

fn strip_serde_yaml_location(message: &str) -> String {
    // serde_yaml appends " at line X column Y" for positions inside the
    // value it was given, which are meaningless once re-serialized.
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

fn yaml_path(path: &serde_path_to_error::Path) -> YamlPath {
    use serde_path_to_error::Segment;
    YamlPath(
        path.iter()
            .filter_map(|segment| match segment {
                Segment::Seq { index } => Some(PathSegment::Index(*index)),
                Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// `yaml` loaded as project "demo" from a throwaway directory, for the unit
/// tests of what consumes a [`Project`].
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn demo_project(yaml: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        project_name: Some("demo".into()),
        ..LoadOptions::default()
    };
    load(&options).unwrap().project
}
