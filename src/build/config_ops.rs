//! Metadata instructions (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME,
//! CMD, ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, SHELL, ONBUILD, MAINTAINER)
//! applied to an image config (docker/OCI JSON) as docker does, and the
//! history and rootfs bookkeeping of each step. Pure: no I/O.

use serde_json::{json, Map, Value};

use super::dockerfile::words::expand;
use super::dockerfile::{Command, Healthcheck, Kind};

/// The default `SHELL`.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// The stage's view of variables while expanding: ENV wins over ARG.
pub struct Vars<'a> {
    pub env: Vec<(String, String)>,
    pub args: &'a [(String, String)],
}

impl Vars<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .or_else(|| self.args.iter().rev().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone())
    }

    pub fn expand(&self, word: &str, escape: char) -> Result<String, String> {
        expand(word, escape, &|name| self.get(name))
    }
}

fn section(config: &mut Value) -> Result<&mut Map<String, Value>, String> {
    if !config.is_object() {
        *config = json!({});
    }
    if !config.get("config").is_some_and(Value::is_object) {
        config["config"] = json!({});
    }
    config
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| "the image config has no config object".to_string())
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `Env` of a config as pairs.
pub fn env_of(config: &Value) -> Vec<(String, String)> {
    string_list(config.get("config").and_then(|c| c.get("Env")))
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect()
}

pub fn string_of(config: &Value, key: &str) -> Option<String> {
    config
        .get("config")
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The base image's ONBUILD triggers.
pub fn onbuild_of(config: &Value) -> Vec<String> {
    string_list(config.get("config").and_then(|c| c.get("OnBuild")))
}

/// A stage's `SHELL` as stored in its config, or the default.
pub fn shell_of(config: &Value) -> Vec<String> {
    let shell = string_list(config.get("config").and_then(|c| c.get("Shell")));
    if shell.is_empty() {
        default_shell()
    } else {
        shell
    }
}

/// A command's argv: exec form as is, shell form through `shell`.
pub fn argv(command: &Command, shell: &[String]) -> Vec<String> {
    match command {
        Command::Exec(words) => words.clone(),
        Command::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
    }
}

/// Per-stage state the rules need: CMD given in this stage survives a
/// later ENTRYPOINT, an inherited one does not.
#[derive(Debug, Default)]
pub struct StageFlags {
    pub cmd_set: bool,
}

/// Applies one metadata instruction; returns its history line.
pub fn apply(
    config: &mut Value,
    kind: &Kind,
    vars: &Vars,
    escape: char,
    flags: &mut StageFlags,
) -> Result<String, String> {
    let ex = |word: &str| vars.expand(word, escape);
    if let Kind::Maintainer(name) = kind {
        let name = ex(name)?;
        config["author"] = json!(name);
        return Ok(format!("MAINTAINER {name}"));
    }
    let shell = shell_of(config);
    let section = section(config)?;
    let created_by = match kind {
        Kind::Env(pairs) => {
            let mut env = string_list(section.get("Env"));
            let mut shown = Vec::new();
            // Later pairs may use earlier ones of the same line, as docker.
            let mut scope = vars.env.clone();
            for (key, value) in pairs {
                let key = ex(key)?;
                let value = Vars {
                    env: scope.clone(),
                    args: vars.args,
                }
                .expand(value, escape)?;
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                env.push(format!("{key}={value}"));
                scope.push((key.clone(), value.clone()));
                shown.push(format!("{key}={value}"));
            }
            section.insert("Env".into(), json!(env));
            format!("ENV {}", shown.join(" "))
        }
        Kind::Label(pairs) => {
            let labels = section.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            let mut shown = Vec::new();
            for (key, value) in pairs {
                let (key, value) = (ex(key)?, ex(value)?);
                labels[&key] = json!(value);
                shown.push(format!("{key}={value}"));
            }
            format!("LABEL {}", shown.join(" "))
        }
        Kind::Workdir(dir) => {
            let dir = ex(dir)?;
            let current = section.get("WorkingDir").and_then(Value::as_str).unwrap_or("/");
            let joined = clean_path(&join_path(current, &dir));
            section.insert("WorkingDir".into(), json!(joined));
            format!("WORKDIR {joined}")
        }
        Kind::User(user) => {
            let user = ex(user)?;
            section.insert("User".into(), json!(user));
            format!("USER {user}")
        }
        Kind::StopSignal(signal) => {
            let signal = ex(signal)?;
            section.insert("StopSignal".into(), json!(signal));
            format!("STOPSIGNAL {signal}")
        }
        Kind::Expose(ports) => {
            let exposed = section.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !exposed.is_object() {
                *exposed = json!({});
            }
            let mut shown = Vec::new();
            for port in ports {
                for port in expose_ports(&ex(port)?)? {
                    exposed[&port] = json!({});
                    shown.push(port);
                }
            }
            format!("EXPOSE map[{}]", shown.join(" "))
        }
        Kind::Volume(paths) => {
            let volumes = section.entry("Volumes").or_insert_with(|| json!({}));
            if !volumes.is_object() {
                *volumes = json!({});
            }
            let mut shown = Vec::new();
            for path in paths {
                let path = ex(path)?;
                if path.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                volumes[&path] = json!({});
                shown.push(path);
            }
            format!("VOLUME [{}]", shown.join(" "))
        }
        Kind::Cmd(command) => {
            let args = argv(command, &shell);
            section.insert("Cmd".into(), json!(args));
            flags.cmd_set = true;
            format!("CMD {}", json!(args))
        }
        Kind::Entrypoint(command) => {
            let args = argv(command, &shell);
            section.insert("Entrypoint".into(), json!(args));
            // An inherited CMD is meant for the old entrypoint.
            if !flags.cmd_set {
                section.insert("Cmd".into(), Value::Null);
            }
            format!("ENTRYPOINT {}", json!(args))
        }
        Kind::Shell(words) => {
            section.insert("Shell".into(), json!(words));
            format!("SHELL {}", json!(words))
        }
        Kind::Healthcheck(check) => {
            let value = healthcheck(check)?;
            let shown = value["Test"].to_string();
            section.insert("Healthcheck".into(), value);
            format!("HEALTHCHECK {shown}")
        }
        Kind::Onbuild(trigger) => {
            let mut triggers = string_list(section.get("OnBuild"));
            triggers.push(trigger.clone());
            section.insert("OnBuild".into(), json!(triggers));
            format!("ONBUILD {trigger}")
        }
        _ => return Err("not a metadata instruction".into()),
    };
    Ok(created_by)
}

/// Adds a history line (and for a layer step, its diff id).
pub fn record_step(config: &mut Value, created_by: &str, diff_id: Option<&str>, now: &str) {
    let mut entry = json!({"created": now, "created_by": created_by, "comment": "berth build"});
    match diff_id {
        Some(diff_id) => {
            if !config["rootfs"].is_object() {
                config["rootfs"] = json!({"type": "layers", "diff_ids": []});
            }
            match config["rootfs"]["diff_ids"].as_array_mut() {
                Some(ids) => ids.push(json!(diff_id)),
                None => config["rootfs"]["diff_ids"] = json!([diff_id]),
            }
        }
        None => entry["empty_layer"] = json!(true),
    }
    match config["history"].as_array_mut() {
        Some(history) => history.push(entry),
        None => config["history"] = json!([entry]),
    }
    config["created"] = json!(now);
}

fn join_path(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    }
}

/// `/a/./b/../c/` → `/a/c`.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `80`, `53/udp`, `8000-8002/tcp` → normalized `PORT/proto` entries.
fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid EXPOSE protocol in {spec:?}: use tcp, udp or sctp"));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid EXPOSE port {spec:?}"))
    };
    let (low, high) = match ports.split_once('-') {
        Some((l, h)) => (parse(l)?, parse(h)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if low > high {
        return Err(format!("invalid EXPOSE range {spec:?}"));
    }
    Ok((low..=high).map(|p| format!("{p}/{protocol}")).collect())
}

fn healthcheck(check: &Healthcheck) -> Result<Value, String> {
    let Healthcheck::Check {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    } = check
    else {
        return Ok(json!({"Test": ["NONE"]}));
    };
    let test: Vec<String> = match test {
        Command::Exec(words) => ["CMD".to_string()].into_iter().chain(words.iter().cloned()).collect(),
        Command::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
    };
    let mut value = json!({"Test": test});
    for (key, given) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start_period),
        ("StartInterval", start_interval),
    ] {
        if let Some(text) = given {
            value[key] = json!(duration_nanos(text).ok_or_else(|| format!("invalid HEALTHCHECK duration {text:?}"))?);
        }
    }
    if let Some(text) = retries {
        let n: u32 = text
            .parse()
            .map_err(|_| format!("invalid HEALTHCHECK --retries {text:?}"))?;
        value["Retries"] = json!(n);
    }
    Ok(value)
}

/// Go's `time.ParseDuration` for the units a Dockerfile uses: `1m30s`,
/// `500ms`, `1.5h`.
pub fn duration_nanos(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::dockerfile::Dockerfile;

    fn kinds(text: &str) -> Vec<Kind> {
        Dockerfile::parse("Dockerfile", &format!("FROM a\n{text}"))
            .unwrap()
            .stages[0]
            .instructions
            .iter()
            .map(|i| i.kind.clone())
            .collect()
    }

    fn run(config: &mut Value, text: &str, args: &[(String, String)]) -> Vec<String> {
        let mut flags = StageFlags::default();
        let mut lines = Vec::new();
        for kind in kinds(text) {
            let vars = Vars {
                env: env_of(config),
                args,
            };
            lines.push(apply(config, &kind, &vars, '\\', &mut flags).unwrap());
        }
        lines
    }

    #[test]
    fn env_expands_and_replaces() {
        let mut c = json!({"config": {"Env": ["PATH=/bin", "A=old"]}});
        let args = vec![("V".to_string(), "1.2".to_string())];
        let lines = run(&mut c, "ENV A=new B=${A}-x\nENV C=\"$V $PATH\"\n", &args);
        assert_eq!(
            c["config"]["Env"],
            json!(["PATH=/bin", "A=new", "B=new-x", "C=1.2 /bin"])
        );
        assert_eq!(lines[0], "ENV A=new B=new-x");
    }

    #[test]
    fn workdir_user_labels_ports_volumes() {
        let mut c = json!({});
        run(
            &mut c,
            "WORKDIR /srv\nWORKDIR app/../web\nUSER app\nLABEL a=1 \"b c\"=\"d e\"\nEXPOSE 80 53/UDP 8000-8001\nVOLUME /data\nSTOPSIGNAL SIGINT\nMAINTAINER me\n",
            &[],
        );
        let s = &c["config"];
        assert_eq!(s["WorkingDir"], "/srv/web");
        assert_eq!(s["User"], "app");
        assert_eq!(s["Labels"], json!({"a": "1", "b c": "d e"}));
        assert_eq!(
            s["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(s["Volumes"], json!({"/data": {}}));
        assert_eq!(s["StopSignal"], "SIGINT");
        assert_eq!(c["author"], "me");
    }

    #[test]
    fn cmd_entrypoint_shell_rules() {
        let mut c = json!({"config": {"Cmd": ["inherited"]}});
        run(&mut c, "ENTRYPOINT [\"/app\"]\n", &[]);
        assert_eq!(c["config"]["Cmd"], Value::Null);
        let mut c = json!({});
        run(&mut c, "CMD x\nENTRYPOINT y\n", &[]);
        assert_eq!(c["config"]["Cmd"], json!(["/bin/sh", "-c", "x"]));
        let mut c = json!({});
        run(&mut c, "SHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nCMD echo hi\n", &[]);
        assert_eq!(c["config"]["Cmd"], json!(["/bin/bash", "-eu", "-c", "echo hi"]));
        assert_eq!(shell_of(&c), ["/bin/bash", "-eu", "-c"]);
    }

    #[test]
    fn healthcheck_and_onbuild_use_docker_keys() {
        let mut c = json!({});
        run(
            &mut c,
            "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD wget -q x\nONBUILD RUN echo hi\n",
            &[],
        );
        let h = &c["config"]["Healthcheck"];
        assert_eq!(h["Test"], json!(["CMD-SHELL", "wget -q x"]));
        assert_eq!(h["Interval"], json!(90_000_000_000_u64));
        assert_eq!(h["Timeout"], json!(500_000_000_u64));
        assert_eq!(h["Retries"], json!(2));
        assert_eq!(onbuild_of(&c), ["RUN echo hi"]);
        run(&mut c, "HEALTHCHECK NONE\n", &[]);
        assert_eq!(c["config"]["Healthcheck"]["Test"], json!(["NONE"]));
    }

    #[test]
    fn history_and_layers_are_recorded() {
        let mut c = json!({"rootfs": {"type": "layers", "diff_ids": []}});
        record_step(&mut c, "ENV A=1", None, "2024-01-01T00:00:00Z");
        record_step(&mut c, "RUN true", Some("sha256:ab"), "2024-01-01T00:00:01Z");
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:ab"]));
        assert_eq!(c["history"][0]["empty_layer"], json!(true));
        assert!(c["history"][1].get("empty_layer").is_none());
        assert_eq!(c["created"], "2024-01-01T00:00:01Z");
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = json!({});
        let mut flags = StageFlags::default();
        let vars = Vars { env: vec![], args: &[] };
        for bad in [
            "EXPOSE 0",
            "EXPOSE 80/icmp",
            "EXPOSE 90-80",
            "HEALTHCHECK --interval=soon CMD x",
        ] {
            let kind = kinds(bad).remove(0);
            assert!(apply(&mut c, &kind, &vars, '\\', &mut flags).is_err(), "{bad}");
        }
        assert_eq!(duration_nanos("1.5h"), Some(5_400_000_000_000));
        assert_eq!(duration_nanos("10"), None);
    }
}
