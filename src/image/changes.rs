//! `--change` instructions (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`,
//! `EXPOSE`, `LABEL`, `VOLUME`, `STOPSIGNAL`), applied to an image config
//! the way a Dockerfile would. Pure: no I/O.

use std::collections::HashMap;

use oci_spec::image::Config;

use super::ImageError;

const SUPPORTED: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Applies `changes` in order to `config`.
pub fn apply_changes(config: &mut Config, changes: &[String]) -> Result<(), ImageError> {
    let mut cmd_set = false;
    for change in changes {
        let invalid = |reason: String| ImageError::InvalidChange {
            change: change.clone(),
            reason,
        };
        let text = change.trim();
        let (instruction, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let words = || shell_words::split(rest).map_err(|e| invalid(e.to_string()));
        let nonempty = |what: &str| {
            if rest.is_empty() {
                Err(invalid(format!("{what} needs a value")))
            } else {
                Ok(rest.to_string())
            }
        };
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.set_cmd(Some(command(rest).map_err(invalid)?));
                cmd_set = true;
            }
            "ENTRYPOINT" => {
                config.set_entrypoint(Some(command(rest).map_err(invalid)?));
                // As in a Dockerfile: a new entrypoint drops the inherited
                // CMD unless this same set of changes gives one.
                if !cmd_set {
                    config.set_cmd(None);
                }
            }
            "ENV" => {
                let pairs = key_values(rest, &words()?).map_err(invalid)?;
                let mut env = config.env().clone().unwrap_or_default();
                for (key, value) in pairs {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                    env.push(format!("{key}={value}"));
                }
                config.set_env(Some(env));
            }
            "LABEL" => {
                let pairs = key_values(rest, &words()?).map_err(invalid)?;
                let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
                labels.extend(pairs);
                config.set_labels(Some(labels));
            }
            "WORKDIR" => {
                let dir = nonempty("WORKDIR")?;
                let dir = if dir.starts_with('/') {
                    dir
                } else {
                    let base = config.working_dir().clone().unwrap_or_else(|| "/".to_string());
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                config.set_working_dir(Some(dir));
            }
            "USER" => {
                config.set_user(Some(nonempty("USER")?));
            }
            "STOPSIGNAL" => {
                config.set_stop_signal(Some(nonempty("STOPSIGNAL")?));
            }
            "EXPOSE" => {
                let mut ports = config.exposed_ports().clone().unwrap_or_default();
                for port in words()? {
                    let port = normalize_port(&port).map_err(invalid)?;
                    if !ports.contains(&port) {
                        ports.push(port);
                    }
                }
                if ports.is_empty() {
                    return Err(invalid("EXPOSE needs at least one port".into()));
                }
                config.set_exposed_ports(Some(ports));
            }
            "VOLUME" => {
                let added = if rest.starts_with('[') {
                    json_array(rest).map_err(invalid)?
                } else {
                    words()?
                };
                if added.is_empty() {
                    return Err(invalid("VOLUME needs at least one path".into()));
                }
                let mut volumes = config.volumes().clone().unwrap_or_default();
                volumes.extend(added.into_iter().filter(|v| !v.is_empty()));
                volumes.dedup();
                config.set_volumes(Some(volumes));
            }
            other => {
                return Err(invalid(format!(
                    "unsupported instruction {other:?}; supported: {SUPPORTED}"
                )))
            }
        }
    }
    Ok(())
}

/// JSON-array form (`["/bin/sh", "-c"]`) or shell form (`echo hi`, run as
/// `/bin/sh -c "echo hi"`).
fn command(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        return json_array(rest);
    }
    if rest.is_empty() {
        return Err("needs a command".into());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn json_array(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|e| format!("not a JSON array of strings: {e}"))
}

/// `K=V K2="v 2"`, or the legacy single pair `K V…`.
fn key_values(rest: &str, words: &[String]) -> Result<Vec<(String, String)>, String> {
    let Some(first) = words.first() else {
        return Err("needs KEY=VALUE".into());
    };
    if !first.contains('=') {
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
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

fn normalize_port(port: &str) -> Result<String, String> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    let valid = number.parse::<u16>().is_ok_and(|p| p > 0) && matches!(protocol.as_str(), "tcp" | "udp" | "sctp");
    if valid {
        Ok(format!("{number}/{protocol}"))
    } else {
        Err(format!("invalid port {port:?}: expected PORT[/tcp|udp|sctp]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<Config, ImageError> {
        let mut config = Config::default();
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        apply_changes(&mut config, &changes).map(|()| config)
    }

    #[test]
    fn json_and_shell_forms() {
        let c = apply(&[r#"CMD ["/bin/sh"]"#, "ENTRYPOINT echo hi"]).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["/bin/sh"]);
        assert_eq!(c.entrypoint().clone().unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        let c = apply(&[r#"cmd ["a", "b c"]"#]).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["a", "b c"]);
    }

    #[test]
    fn entrypoint_alone_drops_inherited_cmd() {
        let mut config = Config::default();
        config.set_cmd(Some(vec!["old".into()]));
        apply_changes(&mut config, &[r#"ENTRYPOINT ["/app"]"#.to_string()]).unwrap();
        assert_eq!(config.cmd(), &None);
    }

    #[test]
    fn env_label_expose_workdir_user_volume() {
        let c = apply(&[
            "ENV A=1",
            r#"ENV B="x y" A=2"#,
            "ENV LEGACY some value",
            "LABEL org.example=yes",
            "EXPOSE 80 53/udp 80",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            r#"VOLUME ["/data"]"#,
            "STOPSIGNAL SIGTERM",
        ])
        .unwrap();
        assert_eq!(c.env().clone().unwrap(), vec!["B=x y", "A=2", "LEGACY=some value"]);
        assert_eq!(c.labels().clone().unwrap()["org.example"], "yes");
        assert_eq!(c.exposed_ports().clone().unwrap(), vec!["80/tcp", "53/udp"]);
        assert_eq!(c.working_dir().as_deref(), Some("/srv/app"));
        assert_eq!(c.user().as_deref(), Some("1000:1000"));
        assert_eq!(c.volumes().clone().unwrap(), vec!["/data"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGTERM"));
    }

    #[test]
    fn refuses_bad_changes() {
        for bad in [
            "RUN echo",
            "CMD [not json",
            "CMD",
            "ENV",
            "ENV =x",
            "EXPOSE 0",
            "EXPOSE 80/icmp",
            "USER",
            "ONBUILD RUN x",
        ] {
            let err = apply(&[bad]).unwrap_err();
            assert!(
                matches!(&err, ImageError::InvalidChange { change, .. } if change == bad),
                "{bad}: {err}"
            );
        }
    }
}
