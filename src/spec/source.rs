//! Reading one compose file: its YAML value and a source map from YAML
//! paths to file:line:col, so that every later stage can point errors at the
//! text the user wrote.
//!
//! serde_yaml gives values without positions, so the file is scanned a
//! second time with yaml-rust2's event parser, which reports a marker for
//! every key and item.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::YamlPath;

/// A place in a file, 1-based like editors show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Path → location of the key (for mapping entries) or of the item (for
/// sequence entries) that introduced it.
///
/// Indexing re-parses every file, so it is done lazily: a project that
/// loads without errors or located warnings never pays for it.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Files in overlay order: a later file's entries win.
    sources: Vec<(Arc<PathBuf>, Arc<str>)>,
    index: OnceLock<Index>,
}

#[derive(Debug, Clone, Default)]
struct Index {
    entries: HashMap<YamlPath, Location>,
    /// Sequence items by their text (and by the KEY of `KEY=VALUE`), so
    /// that `networks: [back]`, canonicalized to `networks: {back: }`, still
    /// locates `networks.back` at the item.
    items: HashMap<(YamlPath, String), Location>,
}

impl SourceMap {
    /// A source map of one document, indexed on first use. Best effort: a
    /// document that does not parse yields what was indexed before the
    /// error (serde_yaml reports the syntax error itself).
    pub fn index(file: &Arc<PathBuf>, text: &str) -> SourceMap {
        SourceMap {
            sources: vec![(file.clone(), Arc::from(text))],
            index: OnceLock::new(),
        }
    }

    fn built(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut index = Index::default();
            for (file, text) in &self.sources {
                let mut indexer = Indexer {
                    file: file.clone(),
                    stack: Vec::new(),
                    index: Index::default(),
                };
                let mut parser = Parser::new_from_str(text);
                // A parse error only stops indexing early; see above.
                let _ = parser.load(&mut indexer, false);
                index.entries.extend(indexer.index.entries);
                index.items.extend(indexer.index.items);
            }
            index
        })
    }

    /// The location of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &YamlPath) -> Option<&Location> {
        let index = self.built();
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(location) = index.entries.get(&p) {
                return Some(location);
            }
            if let (Some(key), Some(parent)) = (p.last_key(), p.parent()) {
                if let Some(location) = index.items.get(&(parent, key.to_string())) {
                    return Some(location);
                }
            }
            current = p.parent();
        }
        None
    }

    /// Adds `other`'s files, whose entries win over ours (a later file
    /// overrides).
    pub fn overlay(&mut self, other: SourceMap) {
        self.sources.extend(other.sources);
        self.index = OnceLock::new();
    }
}

impl Index {
    fn record(&mut self, path: YamlPath, location: Location) {
        self.entries.entry(path).or_insert(location);
    }

    fn record_item(&mut self, sequence: &YamlPath, text: &str, location: Location) {
        if let Some((key, _)) = text.split_once('=') {
            self.items
                .entry((sequence.clone(), key.to_string()))
                .or_insert_with(|| location.clone());
        }
        self.items
            .entry((sequence.clone(), text.to_string()))
            .or_insert(location);
    }
}

enum Frame {
    Mapping { path: YamlPath, key: Option<String> },
    Sequence { path: YamlPath, next: usize },
}

struct Indexer {
    file: Arc<PathBuf>,
    stack: Vec<Frame>,
    index: Index,
}

impl Indexer {
    fn location(&self, mark: &Marker) -> Location {
        Location {
            file: self.file.clone(),
            line: mark.line(),
            column: mark.col() + 1,
        }
    }

    /// Handles a scalar or alias; returns the path of a node that starts a
    /// collection when called from a collection start.
    fn node(&mut self, mark: &Marker, key_text: Option<String>) -> Option<YamlPath> {
        let location = self.location(mark);
        match self.stack.last_mut() {
            None => Some(YamlPath::root()),
            Some(Frame::Mapping { path, key }) => match key.take() {
                // This node is a value: its path was recorded with its key.
                Some(k) => Some(path.key(k)),
                // This node is a key.
                None => {
                    let k = key_text.unwrap_or_default();
                    let p = path.key(k.clone());
                    *key = Some(k);
                    self.index.record(p, location);
                    None
                }
            },
            Some(Frame::Sequence { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                if let Some(text) = &key_text {
                    self.index.record_item(path, text, location.clone());
                }
                self.index.record(p.clone(), location);
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => {
                self.node(&mark, Some(text));
            }
            Event::Alias(_) => {
                self.node(&mark, Some(String::new()));
            }
            Event::MappingStart(..) => {
                let path = self.node(&mark, None).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node(&mark, None).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Parses YAML text into a value, applying `<<` merge keys as compose does.
pub fn parse_yaml(text: &str) -> Result<Value, serde_yaml::Error> {
    let mut value: Value = serde_yaml::from_str(text)?;
    value.apply_merge()?;
    if value.is_null() {
        value = Value::Mapping(Default::default());
    }
    Ok(value)
}

/// The location serde_yaml reports for a syntax error.
pub fn syntax_error_location(file: &Path, error: &serde_yaml::Error) -> Option<Location> {
    error.location().map(|l| Location {
        file: Arc::new(file.to_path_buf()),
        line: l.line(),
        column: l.column(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(map: &SourceMap, path: &YamlPath) -> (usize, usize) {
        let l = map.locate(path).unwrap();
        (l.line, l.column)
    }

    #[test]
    fn locates_keys_and_items() {
        let text = "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n      - 443\n  db:\n    environment: {A: 1}\n";
        let map = SourceMap::index(&Arc::new(PathBuf::from("c.yaml")), text);
        let services = YamlPath::root().key("services");
        assert_eq!(loc(&map, &services), (1, 1));
        assert_eq!(loc(&map, &services.key("web").key("image")), (3, 5));
        assert_eq!(loc(&map, &services.key("web").key("ports").index(1)), (6, 9));
        assert_eq!(loc(&map, &services.key("db").key("environment").key("A")), (8, 19));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(loc(&map, &services.key("web").key("ports").index(7)), (4, 5));
    }

    #[test]
    fn merge_keys_are_applied() {
        let v = parse_yaml("x: &d {a: 1}\ny:\n  <<: *d\n  b: 2\n").unwrap();
        assert_eq!(v["y"]["a"], Value::from(1));
        assert!(parse_yaml("").unwrap().is_mapping());
    }
}
