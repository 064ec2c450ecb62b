//! `x-*` extension keys.
//!
//! The typed model rejects unknown keys, so extensions are split off the
//! document before it is deserialized: kept at the top level and on
//! services (so `berth config` prints them back), dropped elsewhere. Keys of
//! free-form mappings (labels, environment, …) are user data, never
//! extensions.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// Keys whose mapping value holds user data, not model fields.
const FREE_FORM: &[&str] = &[
    "labels",
    "annotations",
    "environment",
    "args",
    "additional_contexts",
    "driver_opts",
    "options",
    "sysctls",
    "extra_hosts",
    "ulimits",
    "aux_addresses",
    "storage_opt",
    "depends_on",
    "models",
    "services",
    "networks",
    "volumes",
    "configs",
    "secrets",
];

/// What was split off: top-level and per-service extensions.
#[derive(Debug, Default)]
pub struct Extensions {
    pub top_level: BTreeMap<String, Value>,
    pub services: BTreeMap<String, BTreeMap<String, Value>>,
}

fn is_extension(key: &Value) -> bool {
    key.as_str().is_some_and(|k| k.starts_with("x-"))
}

/// Removes every `x-*` key from model mappings of `document`.
pub fn split(document: &mut Value) -> Extensions {
    let mut extensions = Extensions::default();
    if let Value::Mapping(root) = document {
        extensions.top_level = take_extensions(root);
        if let Some(Value::Mapping(services)) = root.get_mut("services") {
            for (name, service) in services.iter_mut() {
                if let (Some(name), Value::Mapping(map)) = (name.as_str(), service) {
                    let own = take_extensions(map);
                    if !own.is_empty() {
                        extensions.services.insert(name.to_string(), own);
                    }
                }
            }
        }
        for (key, value) in root.iter_mut() {
            strip_below(key.as_str().unwrap_or_default(), value);
        }
    }
    extensions
}

fn take_extensions(map: &mut Mapping) -> BTreeMap<String, Value> {
    let keys: Vec<Value> = map.keys().filter(|k| is_extension(k)).cloned().collect();
    keys.into_iter()
        .filter_map(|k| {
            let value = map.remove(&k)?;
            Some((k.as_str()?.to_string(), value))
        })
        .collect()
}

/// Walks a value reached through `key`, stripping extensions from model
/// mappings. The children of a free-form mapping are model values again
/// (`services.web`, `networks.front`), so the walk continues below them.
fn strip_below(key: &str, value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            let free_form = FREE_FORM.contains(&key);
            if !free_form {
                take_extensions(map);
            }
            for (k, v) in map.iter_mut() {
                let child_key = if free_form { "" } else { k.as_str().unwrap_or_default() };
                strip_below(child_key, v);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                strip_below("", item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_extensions_but_keeps_user_data() {
        let mut doc: Value = serde_yaml::from_str(
            "x-common: &c {a: 1}\nservices:\n  x-svc: {image: a}\n  web:\n    x-note: hi\n    labels: {x-keep: yes}\n    environment: {x-env: 1}\n    deploy: {x-deep: 1, replicas: 2}\n    ports: [{target: 80, x-p: 1}]\n",
        )
        .unwrap();
        let ext = split(&mut doc);
        assert!(ext.top_level.contains_key("x-common"));
        assert!(ext.services["web"].contains_key("x-note"));
        let web = &doc["services"]["web"];
        assert!(web.get("x-note").is_none());
        assert!(web["labels"].get("x-keep").is_some());
        assert!(web["environment"].get("x-env").is_some());
        assert!(web["deploy"].get("x-deep").is_none());
        assert!(web["ports"][0].get("x-p").is_none());
        // A service may be named x-something: only top-level keys are extensions there.
        assert!(doc["services"].get("x-svc").is_some());
    }
}
