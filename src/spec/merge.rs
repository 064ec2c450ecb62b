//! Merging compose documents (`-f a.yaml -f b.yaml`, `extends`), following
//! the Compose Specification's merge rules (13-merge.md) as compose-go
//! implements them (override/merge.go, override/uncity.go):
//!
//! - mappings merge key by key, the later document winning;
//! - `list_or_dict` keys (environment, labels, …) are read as mappings
//!   first, so `[A=1]` and `{A: 2}` merge to `{A: 2}`;
//! - `command`, `entrypoint`, `healthcheck.test` and each ulimit are replaced;
//! - other sequences are appended, then de-duplicated by identity (ports by
//!   ip/published/target/protocol, volumes and devices by target, secrets and
//!   configs by target, the rest by value), the later entry winning;
//! - `!reset` removes a value, `!override` replaces it whole.
//!
//! Documents are first put in a merge-ready shape by [`canonicalize`].

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::model::forms::split_key_value;
use super::model::scalar::scalar_to_string;
use super::syntax::ports::{parse_port, port_key};
use super::syntax::volumes::parse_volume;

/// Keys of a service whose `list_or_dict` value merges as a mapping.
const MAPPING_KEYS: &[&str] = &["environment", "labels", "annotations", "sysctls", "storage_opt"];
/// The same inside `build` and `deploy`.
const NESTED_MAPPING_KEYS: &[(&str, &str)] = &[
    ("build", "args"),
    ("build", "labels"),
    ("build", "additional_contexts"),
    ("deploy", "labels"),
];
/// Keys whose later value replaces the earlier one whole.
const REPLACED_KEYS: &[&str] = &["command", "entrypoint"];

/// Rewrites a document's services into the shape merging expects: the
/// dual forms that merge as mappings become mappings, `build: dir` and
/// `extends: name` become their long forms.
pub fn canonicalize(document: &mut Value) {
    let Some(services) = document.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, service) in services.iter_mut() {
        if let Some(service) = service.as_mapping_mut() {
            canonicalize_service(service);
        }
    }
}

fn canonicalize_service(service: &mut Mapping) {
    for key in MAPPING_KEYS {
        if let Some(v) = service.get_mut(*key) {
            list_to_mapping(v);
        }
    }
    for (outer, inner) in NESTED_MAPPING_KEYS {
        if let Some(v) = service.get_mut(*outer).and_then(|o| o.get_mut(*inner)) {
            list_to_mapping(v);
        }
    }
    if let Some(build) = service.get_mut("build") {
        if let Value::String(context) = build {
            let mut long = Mapping::new();
            long.insert("context".into(), Value::String(std::mem::take(context)));
            *build = Value::Mapping(long);
        }
    }
    if let Some(extends) = service.get_mut("extends") {
        if let Value::String(name) = extends {
            let mut long = Mapping::new();
            long.insert("service".into(), Value::String(std::mem::take(name)));
            *extends = Value::Mapping(long);
        }
    }
    for key in ["depends_on", "networks"] {
        if let Some(v) = service.get_mut(key) {
            names_to_mapping(v);
        }
    }
}

/// `[A=1, B]` → `{A: "1", B: null}`; a mapping is left alone.
fn list_to_mapping(value: &mut Value) {
    if let Value::Sequence(items) = value {
        let mut map = Mapping::new();
        for item in items.iter() {
            match scalar_to_string(item) {
                Some(text) => {
                    let (k, v) = split_key_value(&text);
                    map.insert(Value::String(k), v.map(Value::String).unwrap_or(Value::Null));
                }
                // Not a KEY=VALUE item: leave the list for the typed model
                // to reject with a precise message.
                None => return,
            }
        }
        *value = Value::Mapping(map);
    }
}

/// `[a, b]` → `{a: null, b: null}` (depends_on, service networks).
fn names_to_mapping(value: &mut Value) {
    if let Value::Sequence(items) = value {
        if items.iter().all(Value::is_string) {
            let map = items.iter().map(|name| (name.clone(), Value::Null)).collect();
            *value = Value::Mapping(map);
        }
    }
}

/// Merges `over` onto `base` (both canonicalized documents).
pub fn merge_documents(base: Value, over: Value) -> Value {
    merge_at(base, over, &[]).unwrap_or(Value::Null)
}

/// Merges two service definitions (for `extends`).
pub fn merge_services(base: Value, over: Value) -> Value {
    merge_at(base, over, &["services", "*"]).unwrap_or(Value::Null)
}

/// `None` means the key is removed (`!reset`).
fn merge_at(base: Value, over: Value, pattern: &[&str]) -> Option<Value> {
    let over = match over {
        Value::Tagged(tagged) => match tag_name(&tagged.tag).as_str() {
            "reset" => return None,
            "override" => return Some(strip_tags(tagged.value)),
            _ => Value::Tagged(tagged),
        },
        other => other,
    };
    let replaced = matches!(pattern, ["services", "*", key] if REPLACED_KEYS.contains(key))
        || matches!(pattern, ["services", "*", "healthcheck", "test"])
        || matches!(pattern, ["services", "*", "ulimits", _]);
    if replaced {
        return Some(strip_tags(over));
    }
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => Some(Value::Mapping(merge_mappings(base, over, pattern))),
        (Value::Sequence(mut base), Value::Sequence(over)) => {
            base.extend(over.into_iter().map(strip_tags));
            Some(Value::Sequence(dedupe(base, pattern)))
        }
        (_, over) => Some(strip_tags(over)),
    }
}

fn merge_mappings(mut base: Mapping, over: Mapping, pattern: &[&str]) -> Mapping {
    for (key, value) in over {
        let name = scalar_to_string(&key).unwrap_or_default();
        let mut child: Vec<&str> = pattern.to_vec();
        child.push(pattern_segment(pattern, &name));
        match base.remove(&key) {
            Some(existing) => {
                if let Some(merged) = merge_at(existing, value, &child) {
                    base.insert(key, merged);
                }
            }
            None => {
                if !is_reset(&value) {
                    base.insert(key, strip_tags(value));
                }
            }
        }
    }
    base
}

/// Names (services, networks, …) become `*` in the pattern so the rules
/// above can match any of them.
fn pattern_segment<'a>(pattern: &[&str], key: &'a str) -> &'a str {
    let is_name = matches!(
        pattern,
        ["services" | "networks" | "volumes" | "configs" | "secrets" | "models"]
            | ["services", "*", "ulimits" | "depends_on" | "networks"]
    );
    if is_name {
        "*"
    } else {
        key
    }
}

/// Keeps the last of the entries sharing an identity, at the position of
/// the first, so that overriding a port or volume does not reorder them.
fn dedupe(items: Vec<Value>, pattern: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut keys: Vec<Option<String>> = Vec::with_capacity(items.len());
    for item in items {
        let key = identity(&item, pattern);
        match key
            .as_ref()
            .and_then(|k| keys.iter().position(|existing| existing.as_ref() == Some(k)))
        {
            Some(index) => out[index] = item,
            None => {
                keys.push(key);
                out.push(item);
            }
        }
    }
    out
}

fn identity(item: &Value, pattern: &[&str]) -> Option<String> {
    let field = |name: &str| item.get(name).and_then(scalar_to_string);
    match pattern {
        ["services", "*", "ports"] => match item {
            Value::Mapping(_) => Some(format!(
                "{}:{}:{}/{}",
                field("host_ip").unwrap_or_default(),
                field("published").unwrap_or_default(),
                field("target").unwrap_or_default(),
                field("protocol").unwrap_or_else(|| "tcp".into())
            )),
            other => scalar_to_string(other)
                .and_then(|s| parse_port(&s).ok())
                .and_then(|ports| (ports.len() == 1).then(|| port_key(&ports[0]))),
        },
        ["services", "*", "volumes"] => match item {
            Value::Mapping(_) => field("target"),
            Value::String(s) => parse_volume(s).ok().map(|v| v.target),
            _ => None,
        },
        ["services", "*", "devices"] => match item {
            Value::Mapping(_) => field("target").or_else(|| field("source")),
            Value::String(s) => {
                let mut parts = s.split(':');
                let source = parts.next();
                parts
                    .next()
                    .filter(|p| p.starts_with('/'))
                    .or(source)
                    .map(str::to_string)
            }
            _ => None,
        },
        ["services", "*", kind @ ("secrets" | "configs")] => match item {
            Value::Mapping(_) => field("target").or_else(|| {
                field("source").map(|s| {
                    if *kind == "secrets" {
                        format!("/run/secrets/{s}")
                    } else {
                        format!("/{s}")
                    }
                })
            }),
            Value::String(s) => Some(if *kind == "secrets" {
                format!("/run/secrets/{s}")
            } else {
                format!("/{s}")
            }),
            _ => None,
        },
        ["services", "*", "env_file"] => match item {
            Value::Mapping(_) => field("path"),
            other => scalar_to_string(other),
        },
        // Plain string lists (cap_add, dns, expose, profiles, aliases, …).
        _ => scalar_to_string(item),
    }
}

fn tag_name(tag: &Tag) -> String {
    tag.to_string().trim_start_matches('!').to_string()
}

fn is_reset(value: &Value) -> bool {
    matches!(value, Value::Tagged(t) if tag_name(&t.tag) == "reset")
}

/// Removes `!reset` entries and unwraps `!override` values, recursively;
/// used on the first document (nothing to merge with) and on merged values.
pub fn strip_tags(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = *tagged;
            match tag_name(&tag).as_str() {
                "reset" => Value::Null,
                "override" => strip_tags(value),
                _ => Value::Tagged(Box::new(TaggedValue {
                    tag,
                    value: strip_tags(value),
                })),
            }
        }
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .filter(|(_, v)| !is_reset(v))
                .map(|(k, v)| (k, strip_tags(v)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(items.into_iter().filter(|v| !is_reset(v)).map(strip_tags).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        let mut v: Value = serde_yaml::from_str(text).unwrap();
        canonicalize(&mut v);
        v
    }

    fn merged(a: &str, b: &str) -> Value {
        merge_documents(doc(a), doc(b))
    }

    #[test]
    fn scalars_override_and_mappings_merge() {
        let m = merged(
            "services: {web: {image: a, restart: always}}",
            "services: {web: {image: b}, db: {image: pg}}",
        );
        assert_eq!(m["services"]["web"]["image"], Value::from("b"));
        assert_eq!(m["services"]["web"]["restart"], Value::from("always"));
        assert_eq!(m["services"]["db"]["image"], Value::from("pg"));
    }

    #[test]
    fn environment_list_and_map_merge_by_key() {
        let m = merged(
            "services: {web: {environment: [A=1, B=2]}}",
            "services: {web: {environment: {B: 3, C: null}}}",
        );
        let env = &m["services"]["web"]["environment"];
        assert_eq!(env["A"], Value::from("1"));
        assert_eq!(env["B"], Value::from(3));
        assert!(env["C"].is_null());
    }

    #[test]
    fn command_and_healthcheck_test_are_replaced() {
        let m = merged(
            "services: {web: {command: [a, b], healthcheck: {test: [CMD, x], retries: 3}}}",
            "services: {web: {command: [c], healthcheck: {test: [CMD, y]}}}",
        );
        assert_eq!(m["services"]["web"]["command"], doc("[c]"));
        assert_eq!(m["services"]["web"]["healthcheck"]["test"], doc("[CMD, y]"));
        assert_eq!(m["services"]["web"]["healthcheck"]["retries"], Value::from(3));
    }

    #[test]
    fn ports_and_volumes_are_unique_by_identity() {
        let m = merged(
            "services: {web: {ports: ['8080:80', '443:443'], volumes: ['./a:/data', 'logs:/logs']}}",
            "services: {web: {ports: ['8080:80', '9000:9000'], volumes: ['./b:/data:ro']}}",
        );
        assert_eq!(
            m["services"]["web"]["ports"],
            doc("['8080:80', '443:443', '9000:9000']")
        );
        assert_eq!(m["services"]["web"]["volumes"], doc("['./b:/data:ro', 'logs:/logs']"));
    }

    #[test]
    fn string_lists_are_unioned() {
        let m = merged(
            "services: {web: {cap_add: [NET_ADMIN], dns: [1.1.1.1]}}",
            "services: {web: {cap_add: [NET_ADMIN, SYS_TIME]}}",
        );
        assert_eq!(m["services"]["web"]["cap_add"], doc("[NET_ADMIN, SYS_TIME]"));
    }

    #[test]
    fn depends_on_and_networks_lists_merge_as_mappings() {
        let m = merged(
            "services: {web: {depends_on: [db], networks: [front]}}",
            "services: {web: {depends_on: {cache: {condition: service_healthy}}, networks: {back: {aliases: [w]}}}}",
        );
        let web = &m["services"]["web"];
        assert!(web["depends_on"]["db"].is_null());
        assert_eq!(web["depends_on"]["cache"]["condition"], Value::from("service_healthy"));
        assert!(web["networks"]["front"].is_null());
        assert_eq!(web["networks"]["back"]["aliases"], doc("[w]"));
    }

    #[test]
    fn reset_and_override_tags() {
        let m = merged(
            "services: {web: {ports: ['80:80'], environment: {A: 1, B: 2}, dns: [a]}}",
            "services: {web: {ports: !reset [], environment: !override {C: 3}, dns: !reset null}}",
        );
        let web = &m["services"]["web"];
        assert!(web.get("ports").is_none());
        assert!(web.get("dns").is_none());
        assert_eq!(web["environment"], doc("{C: 3}"));
    }

    #[test]
    fn build_string_becomes_context() {
        let m = merged(
            "services: {web: {build: ./app}}",
            "services: {web: {build: {target: dev}}}",
        );
        assert_eq!(m["services"]["web"]["build"], doc("{context: ./app, target: dev}"));
    }

    #[test]
    fn strip_tags_cleans_a_single_document() {
        let v = strip_tags(doc("services: {web: {image: !override a, ports: !reset []}}"));
        assert_eq!(v["services"]["web"]["image"], Value::from("a"));
        assert!(v["services"]["web"].get("ports").is_none());
    }
}
