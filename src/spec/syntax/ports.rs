//! Service `ports:` and `expose:` short syntax, following compose-go's
//! `types.ParsePortConfig`, which delegates to docker's `nat.ParsePortSpecs`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{lenient, SyntaxError};

/// The long form of one published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Container port.
    #[serde(deserialize_with = "lenient::u16")]
    #[schemars(with = "lenient::IntOrString")]
    pub target: u16,
    /// Host port or range (`"8000-8010"`); `None` lets the engine pick an
    /// ephemeral port. A string because a range is allowed here even when
    /// the target is a single port.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<lenient::IntOrString>")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_protocol() -> String {
    "tcp".to_owned()
}

fn default_mode() -> String {
    "ingress".to_owned()
}

/// An inclusive port range; a single port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    fn len(self) -> u16 {
        self.end.saturating_sub(self.start)
    }

    fn is_single(self) -> bool {
        self.start == self.end
    }

    fn nth(self, i: u16) -> u16 {
        self.start.saturating_add(i)
    }
}

/// The pieces of a short port spec before ranges are expanded.
struct PortSpec<'a> {
    host_ip: Option<&'a str>,
    host: Option<PortRange>,
    container: PortRange,
    protocol: String,
}

fn port_error(spec: &str, why: impl std::fmt::Display) -> SyntaxError {
    SyntaxError::new(format!("invalid port {spec:?}: {why}"))
}

/// Parses one `ports:` short-syntax entry into one or more long-form ports.
///
/// Forms: `"3000"`, `"3000-3005"`, `"8000:8000"`, `"9090-9091:8080-8081"`,
/// `"8000-9000:80"`, `"127.0.0.1:8001:8001"`, `"127.0.0.1::80"`,
/// `"[::1]:6001:6001"`, `"::1:6000:6000"`, `"6060:6060/udp"`.
///
/// Ranges expand pairwise into one entry per port, as docker does. The one
/// exception (docker's "dynamic host port range") is a host range mapped to
/// a single container port: that stays one entry whose `published` is the
/// whole range, and the engine picks a free port from it.
pub fn parse_port(spec: &str) -> Result<Vec<PortConfig>, SyntaxError> {
    let parsed = split_port_spec(spec)?;
    let host_ip = parsed.host_ip.map(str::to_owned);
    let entry = |target: u16, published: Option<String>| PortConfig {
        name: None,
        target,
        published,
        host_ip: host_ip.clone(),
        protocol: parsed.protocol.clone(),
        app_protocol: None,
        mode: default_mode(),
    };
    let ports = match parsed.host {
        Some(host) if parsed.container.is_single() && !host.is_single() => {
            let published = format!("{}-{}", host.start, host.end);
            vec![entry(parsed.container.start, Some(published))]
        }
        host => (0..=parsed.container.len())
            .map(|i| entry(parsed.container.nth(i), host.map(|h| h.nth(i).to_string())))
            .collect(),
    };
    Ok(ports)
}

/// Splits `[[ip:]host:]container[/proto]` the way docker's `splitParts`
/// does: the last colon-separated part is the container port, the one
/// before it the host port, and everything before that the IP. That is why
/// an unbracketed IPv6 address such as `::1:6000:6000` still works.
fn split_port_spec(spec: &str) -> Result<PortSpec<'_>, SyntaxError> {
    let mut parts = spec.rsplitn(3, ':');
    let container = parts.next().unwrap_or("");
    let host = parts.next().unwrap_or("");
    let ip = parts.next().unwrap_or("");
    let (container, protocol) = split_protocol(spec, container)?;
    if container.is_empty() {
        return Err(port_error(spec, "no container port specified"));
    }
    Ok(PortSpec {
        host_ip: parse_host_ip(spec, ip)?,
        host: match host {
            "" => None,
            h => Some(parse_range(spec, "host port", h)?),
        },
        container: parse_checked_container(spec, container, host)?,
        protocol,
    })
}

/// Parses the container side and checks it against the host side: both
/// ranges must be the same length unless the container side is one port.
fn parse_checked_container(spec: &str, container: &str, host: &str) -> Result<PortRange, SyntaxError> {
    let range = parse_range(spec, "container port", container)?;
    if host.is_empty() || range.is_single() {
        return Ok(range);
    }
    let host_range = parse_range(spec, "host port", host)?;
    if host_range.len() != range.len() {
        return Err(port_error(
            spec,
            format!("host range {host:?} and container range {container:?} differ in size"),
        ));
    }
    Ok(range)
}

/// Splits `port[/proto]`; the protocol defaults to `tcp` and is lowercased.
/// A trailing `/` with no protocol means tcp, as in docker's `SplitProtoPort`.
fn split_protocol<'a>(spec: &str, container: &'a str) -> Result<(&'a str, String), SyntaxError> {
    let (port, proto) = match container.split_once('/') {
        Some((port, "")) => (port, "tcp".to_owned()),
        Some((port, proto)) => (port, proto.to_ascii_lowercase()),
        None => (container, "tcp".to_owned()),
    };
    match proto.as_str() {
        "tcp" | "udp" | "sctp" => Ok((port, proto)),
        _ => Err(port_error(
            spec,
            format!("protocol {proto:?} is not one of tcp, udp, sctp"),
        )),
    }
}

/// Validates the IP part, stripping the brackets of `[::1]`.
fn parse_host_ip<'a>(spec: &str, ip: &'a str) -> Result<Option<&'a str>, SyntaxError> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = match ip.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').unwrap_or(ip),
        None => ip,
    };
    match bare.parse::<IpAddr>() {
        Ok(_) => Ok(Some(bare)),
        Err(_) => Err(port_error(spec, format!("invalid IP address {ip:?}"))),
    }
}

/// Parses `"80"` or `"8000-8010"`.
fn parse_range(spec: &str, what: &str, text: &str) -> Result<PortRange, SyntaxError> {
    let (start, end) = match text.split_once('-') {
        Some((start, end)) => (start, end),
        None => (text, text),
    };
    let range = PortRange {
        start: parse_port_number(spec, what, start)?,
        end: parse_port_number(spec, what, end)?,
    };
    if range.end < range.start {
        return Err(port_error(spec, format!("{what} range {text:?} ends before it starts")));
    }
    Ok(range)
}

fn parse_port_number(spec: &str, what: &str, text: &str) -> Result<u16, SyntaxError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(port_error(spec, format!("{what} {text:?} is not a number")));
    }
    match text.parse::<u16>() {
        Ok(port) if port >= 1 => Ok(port),
        _ => Err(port_error(spec, format!("{what} {text} is out of range 1-65535"))),
    }
}

/// The identity of a port when merging compose files: two entries with the
/// same key are the same binding, and the later file's entry wins.
pub fn port_key(p: &PortConfig) -> String {
    format!(
        "{}:{}:{}/{}",
        p.host_ip.as_deref().unwrap_or(""),
        p.published.as_deref().unwrap_or(""),
        p.target,
        p.protocol
    )
}

/// Validates one `expose:` entry (`"3000"`, `"3000-3005"`, `"3000/udp"`).
///
/// Compose keeps `expose` entries as the strings the user wrote (they are
/// only passed through to the engine), so the entry comes back unchanged as
/// a single-element vector.
pub fn parse_expose(spec: &str) -> Result<Vec<String>, SyntaxError> {
    let (port, _protocol) = split_protocol(spec, spec)?;
    parse_range(spec, "port", port)?;
    Ok(vec![spec.to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn port(target: u16, published: Option<&str>) -> PortConfig {
        PortConfig {
            name: None,
            target,
            published: published.map(str::to_owned),
            host_ip: None,
            protocol: "tcp".to_owned(),
            app_protocol: None,
            mode: "ingress".to_owned(),
        }
    }

    fn with_ip(mut p: PortConfig, ip: &str) -> PortConfig {
        p.host_ip = Some(ip.to_owned());
        p
    }

    fn with_proto(mut p: PortConfig, proto: &str) -> PortConfig {
        p.protocol = proto.to_owned();
        p
    }

    #[test]
    fn container_only() {
        assert_eq!(parse_port("3000").unwrap(), vec![port(3000, None)]);
    }

    #[test]
    fn container_range() {
        let ports = parse_port("3000-3005").unwrap();
        let want: Vec<_> = (3000..=3005).map(|p| port(p, None)).collect();
        assert_eq!(ports, want);
    }

    #[test]
    fn host_and_container() {
        assert_eq!(parse_port("8000:8000").unwrap(), vec![port(8000, Some("8000"))]);
        assert_eq!(parse_port("80:8080").unwrap(), vec![port(8080, Some("80"))]);
    }

    #[test]
    fn pairwise_ranges() {
        assert_eq!(
            parse_port("9090-9091:8080-8081").unwrap(),
            vec![port(8080, Some("9090")), port(8081, Some("9091"))]
        );
    }

    #[test]
    fn host_range_to_single_container_port() {
        assert_eq!(parse_port("8000-9000:80").unwrap(), vec![port(80, Some("8000-9000"))]);
    }

    #[test]
    fn with_ipv4() {
        assert_eq!(
            parse_port("127.0.0.1:8001:8001").unwrap(),
            vec![with_ip(port(8001, Some("8001")), "127.0.0.1")]
        );
        let ports = parse_port("127.0.0.1:5000-5010:5000-5010").unwrap();
        assert_eq!(ports.len(), 11);
        assert_eq!(ports[10], with_ip(port(5010, Some("5010")), "127.0.0.1"));
    }

    #[test]
    fn ip_with_ephemeral_host_port() {
        assert_eq!(
            parse_port("127.0.0.1::80").unwrap(),
            vec![with_ip(port(80, None), "127.0.0.1")]
        );
    }

    #[test]
    fn with_ipv6() {
        assert_eq!(
            parse_port("[::1]:6001:6001").unwrap(),
            vec![with_ip(port(6001, Some("6001")), "::1")]
        );
        assert_eq!(
            parse_port("::1:6000:6000").unwrap(),
            vec![with_ip(port(6000, Some("6000")), "::1")]
        );
        assert_eq!(
            parse_port("[fe80::1]:80:80/udp").unwrap(),
            vec![with_proto(with_ip(port(80, Some("80")), "fe80::1"), "udp")]
        );
    }

    #[test]
    fn protocols() {
        assert_eq!(
            parse_port("6060:6060/udp").unwrap(),
            vec![with_proto(port(6060, Some("6060")), "udp")]
        );
        assert_eq!(
            parse_port("1234/sctp").unwrap(),
            vec![with_proto(port(1234, None), "sctp")]
        );
        assert_eq!(
            parse_port("1234/UDP").unwrap(),
            vec![with_proto(port(1234, None), "udp")]
        );
        assert_eq!(parse_port("1234/").unwrap(), vec![port(1234, None)]);
    }

    #[test]
    fn errors_name_the_spec() {
        for (spec, why) in [
            ("", "no container port"),
            ("80:", "no container port"),
            ("80:x", "container port \"x\" is not a number"),
            ("x:80", "host port \"x\" is not a number"),
            ("0", "out of range"),
            ("65536", "out of range"),
            ("80:0", "out of range"),
            ("99999999999999999999", "out of range"),
            ("80/icmp", "protocol \"icmp\""),
            ("80/tcp/x", "protocol \"tcp/x\""),
            ("3005-3000", "ends before it starts"),
            ("1-2-3", "is not a number"),
            ("8000-8001:80-82", "differ in size"),
            ("300.1.1.1:80:80", "invalid IP address"),
            ("[::1:80:80", "invalid IP address"),
            ("localhost:80:80", "invalid IP address"),
            ("-80", "is not a number"),
            ("+80", "is not a number"),
            ("８０", "is not a number"),
            ("é:ü:80", "invalid IP address"),
        ] {
            let err = parse_port(spec).unwrap_err().message;
            assert!(err.starts_with(&format!("invalid port {spec:?}: ")), "{err}");
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn error_message_format() {
        assert_eq!(
            parse_port("80:x").unwrap_err().to_string(),
            "invalid port \"80:x\": container port \"x\" is not a number"
        );
    }

    #[test]
    fn keys() {
        let p = &parse_port("127.0.0.1:8080:80/udp").unwrap()[0];
        assert_eq!(port_key(p), "127.0.0.1:8080:80/udp");
        assert_eq!(port_key(&port(80, None)), "::80/tcp");
        assert_eq!(port_key(&parse_port("[::1]:1:2").unwrap()[0]), "::1:1:2/tcp");
    }

    #[test]
    fn expose() {
        for spec in ["3000", "3000-3005", "3000/udp", "3000-3005/udp"] {
            assert_eq!(parse_expose(spec).unwrap(), vec![spec.to_owned()]);
        }
        for spec in ["", "x", "0", "70000", "3005-3000", "3000/icmp", "80:80"] {
            let err = parse_expose(spec).unwrap_err().message;
            assert!(err.contains(&format!("{spec:?}")), "{err}");
        }
    }

    #[test]
    fn short_form_round_trips_through_json() {
        for spec in ["3000-3002", "127.0.0.1:8000-9000:80/udp", "[::1]:6001:6001"] {
            for p in parse_port(spec).unwrap() {
                let value = serde_json::to_value(&p).unwrap();
                let back: PortConfig = serde_json::from_value(value).unwrap();
                assert_eq!(back, p);
            }
        }
    }

    #[test]
    fn serializes_minimally() {
        let value = serde_json::to_value(&parse_port("80").unwrap()[0]).unwrap();
        assert_eq!(value, json!({"target": 80, "protocol": "tcp", "mode": "ingress"}));
    }

    #[test]
    fn long_form_accepts_numeric_strings() {
        let p: PortConfig = serde_json::from_value(json!({
            "target": "80", "published": 8080, "host_ip": "0.0.0.0",
            "app_protocol": "http", "name": "web", "mode": "host"
        }))
        .unwrap();
        assert_eq!(p.target, 80);
        assert_eq!(p.published.as_deref(), Some("8080"));
        assert_eq!(p.protocol, "tcp");
        assert_eq!(p.mode, "host");
        let p: PortConfig = serde_json::from_value(json!({"target": 80, "published": "8000-8010"})).unwrap();
        assert_eq!(p.published.as_deref(), Some("8000-8010"));
    }

    #[test]
    fn long_form_rejects_unknown_and_bad_fields() {
        assert!(serde_json::from_value::<PortConfig>(json!({"target": 80, "x": 1})).is_err());
        assert!(serde_json::from_value::<PortConfig>(json!({"published": 80})).is_err());
        assert!(serde_json::from_value::<PortConfig>(json!({"target": "http"})).is_err());
    }

    #[test]
    fn schema_admits_strings_for_numbers() {
        let schema = serde_json::to_value(schemars::schema_for!(PortConfig)).unwrap();
        assert_eq!(schema["properties"]["target"]["type"], json!(["integer", "string"]));
        assert_eq!(schema["required"], json!(["target"]));
    }
}
