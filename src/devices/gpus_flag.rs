//! `container create/run --gpus`: docker's syntax (`opts/gpus.go`) turned
//! into the same [`DeviceRequest`] a compose `gpus:` entry becomes.
//!
//! The value is CSV: `all`, a count (`2`), `count=N|all`, `device=ID[,ID…]`,
//! `driver=NAME`, `capabilities=CAP[,CAP…]`. Docker wants list values
//! quoted (`--gpus '"device=0,1"'`); berth also takes them bare
//! (`--gpus device=0,1`): a bare field right after a list key continues
//! the list. Neither a count nor devices means one GPU, as in docker.

use crate::spec::model::{DeviceCount, DeviceRequest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --gpus {value:?}: {reason}; expected all, a count, or device=ID[,ID...] (docker syntax)")]
pub struct GpusFlagError {
    pub value: String,
    pub reason: String,
}

/// Parses one `--gpus` value.
pub fn parse_gpus_flag(value: &str) -> Result<DeviceRequest, GpusFlagError> {
    let fail = |reason: String| GpusFlagError {
        value: value.to_owned(),
        reason,
    };
    let mut request = DeviceRequest {
        capabilities: Vec::new(),
        count: None,
        device_ids: Vec::new(),
        driver: None,
        options: Default::default(),
    };
    let mut seen: Vec<&str> = Vec::new();
    // The list key a bare field continues.
    let mut list: Option<&'static str> = None;
    let mut capabilities: Option<Vec<String>> = None;
    let fields = csv_fields(value).map_err(fail)?;
    for field in &fields {
        let field = field.trim();
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => match list {
                Some("device") if !field.is_empty() => {
                    request.device_ids.push(field.to_owned());
                    continue;
                }
                Some(_) if !field.is_empty() => {
                    capabilities.get_or_insert_with(Vec::new).push(field.to_owned());
                    continue;
                }
                // A bare value is the count.
                _ => ("count", field),
            },
        };
        if seen.contains(&key) {
            return Err(fail(format!("{key} is given twice")));
        }
        seen.push(key);
        list = None;
        match key {
            "count" => request.count = Some(parse_count(val).map_err(fail)?),
            "device" => {
                request.device_ids = split_list(val);
                list = Some("device");
            }
            "capabilities" => {
                capabilities = Some(split_list(val));
                list = Some("capabilities");
            }
            "driver" => request.driver = Some(val.to_owned()).filter(|d| !d.is_empty()),
            "options" => return Err(fail("driver options are not supported".into())),
            other => return Err(fail(format!("unknown key {other:?}"))),
        }
    }
    if request.count.is_some() && !request.device_ids.is_empty() {
        return Err(fail("count and device are mutually exclusive".into()));
    }
    if request.count.is_none() && request.device_ids.is_empty() {
        request.count = Some(DeviceCount::Count(1));
    }
    // docker adds the generic `gpu` capability to whatever is asked.
    let mut caps = capabilities.unwrap_or_default();
    if !caps.iter().any(|c| c == "gpu") {
        caps.push("gpu".into());
    }
    request.capabilities = caps;
    Ok(request)
}

fn parse_count(value: &str) -> Result<DeviceCount, String> {
    match value {
        "all" | "-1" => Ok(DeviceCount::All),
        n => n
            .parse::<u64>()
            .map(DeviceCount::Count)
            .map_err(|_| format!("count {n:?} is not a number or all")),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One CSV record: commas separate fields outside double quotes; `""`
/// inside quotes is a quote.
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                push(&mut fields, '"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => push(&mut fields, c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    Ok(fields)
}

fn push(fields: &mut [String], c: char) {
    if let Some(last) = fields.last_mut() {
        last.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> DeviceRequest {
        parse_gpus_flag(value).unwrap()
    }

    #[test]
    fn all_and_counts() {
        let all = parse("all");
        assert_eq!(all.count, Some(DeviceCount::All));
        assert_eq!(all.capabilities, ["gpu"]);
        assert!(all.device_ids.is_empty() && all.driver.is_none());
        assert_eq!(parse("2").count, Some(DeviceCount::Count(2)));
        assert_eq!(parse("count=all").count, Some(DeviceCount::All));
        assert_eq!(parse("count=3").count, Some(DeviceCount::Count(3)));
    }

    #[test]
    fn devices_quoted_as_docker_wants_or_bare() {
        for value in ["device=0,1", "\"device=0,1\"", "device=0,1,driver=nvidia"] {
            let request = parse(value);
            assert_eq!(request.device_ids, ["0", "1"], "{value}");
            assert_eq!(request.count, None, "{value}");
        }
        assert_eq!(parse("device=0,1,driver=nvidia").driver.as_deref(), Some("nvidia"));
        let uuid = parse("device=GPU-0a0a0a0a-1111-2222-3333-444455556666");
        assert_eq!(uuid.device_ids, ["GPU-0a0a0a0a-1111-2222-3333-444455556666"]);
    }

    #[test]
    fn capabilities_keep_gpu() {
        let request = parse("\"capabilities=compute,utility\",count=1");
        assert_eq!(request.capabilities, ["compute", "utility", "gpu"]);
        assert_eq!(request.count, Some(DeviceCount::Count(1)));
        // Neither count nor devices: one GPU, as docker.
        assert_eq!(parse("driver=nvidia").count, Some(DeviceCount::Count(1)));
    }

    #[test]
    fn mistakes_are_named() {
        for (value, reason) in [
            ("lots", "count \"lots\" is not a number or all"),
            ("all,count=2", "count is given twice"),
            ("2,device=0", "mutually exclusive"),
            ("colour=red", "unknown key \"colour\""),
            ("\"device=0", "unterminated quote"),
            ("options=x=y", "not supported"),
        ] {
            let err = parse_gpus_flag(value).unwrap_err();
            assert!(err.reason.contains(reason), "{value}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid --gpus {value:?}")));
        }
    }
}
