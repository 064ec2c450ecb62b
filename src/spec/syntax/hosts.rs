//! Service `extra_hosts:` entries (`"host:ip"` / `"host=ip"`), following
//! compose-go's `HostsList` decoding.

use std::net::IpAddr;

use super::SyntaxError;

/// The special value docker resolves to the host's gateway address.
const HOST_GATEWAY: &str = "host-gateway";

fn host_error(entry: &str, why: &str) -> SyntaxError {
    SyntaxError::new(format!("invalid extra host {entry:?}: {why}"))
}

/// Parses one `extra_hosts` entry into `(hostname, ip)`.
///
/// compose-go tries `=` first and then `:`, splitting at the first
/// occurrence. Because the hostname cannot contain a colon, splitting at the
/// first colon is what makes the legacy `host:::1` IPv6 form work. Brackets
/// around an IPv6 address (`host=[::1]`) are stripped, as compose-go does.
/// The IP may also be `host-gateway`.
pub fn parse_extra_host(entry: &str) -> Result<(String, String), SyntaxError> {
    let (host, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| host_error(entry, "expected \"host:ip\" or \"host=ip\""))?;
    if host.is_empty() {
        return Err(host_error(entry, "hostname is empty"));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(host_error(entry, &format!("hostname {host:?} contains whitespace")));
    }
    let ip = strip_brackets(ip);
    if ip != HOST_GATEWAY && ip.parse::<IpAddr>().is_err() {
        return Err(host_error(
            entry,
            &format!("{ip:?} is not an IP address or \"host-gateway\""),
        ));
    }
    Ok((host.to_owned(), ip.to_owned()))
}

fn strip_brackets(ip: &str) -> &str {
    ip.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(entry: &str) -> (String, String) {
        parse_extra_host(entry).unwrap()
    }

    fn pair(host: &str, ip: &str) -> (String, String) {
        (host.to_owned(), ip.to_owned())
    }

    #[test]
    fn ipv4_forms() {
        assert_eq!(ok("db:10.0.0.2"), pair("db", "10.0.0.2"));
        assert_eq!(ok("db=10.0.0.2"), pair("db", "10.0.0.2"));
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(ok("db:::1"), pair("db", "::1"));
        assert_eq!(ok("db=::1"), pair("db", "::1"));
        assert_eq!(ok("db:[::1]"), pair("db", "::1"));
        assert_eq!(ok("db=[::1]"), pair("db", "::1"));
        assert_eq!(ok("db:2001:db8::1"), pair("db", "2001:db8::1"));
        assert_eq!(ok("db=::ffff:10.0.0.1"), pair("db", "::ffff:10.0.0.1"));
    }

    #[test]
    fn host_gateway() {
        assert_eq!(
            ok("host.docker.internal:host-gateway"),
            pair("host.docker.internal", "host-gateway")
        );
        assert_eq!(
            ok("host.docker.internal=host-gateway"),
            pair("host.docker.internal", "host-gateway")
        );
    }

    #[test]
    fn errors_name_the_entry() {
        for (entry, why) in [
            ("", "expected"),
            ("db", "expected"),
            (":10.0.0.1", "hostname is empty"),
            ("=::1", "hostname is empty"),
            ("db:", "not an IP address"),
            ("db:example.com", "not an IP address"),
            ("db:300.0.0.1", "not an IP address"),
            ("db:[::1", "not an IP address"),
            ("db:fe80::1%eth0", "not an IP address"),
            ("my db:1.2.3.4", "whitespace"),
            ("é:ü", "not an IP address"),
        ] {
            let err = parse_extra_host(entry).unwrap_err().message;
            assert!(err.starts_with(&format!("invalid extra host {entry:?}: ")), "{err}");
            assert!(err.contains(why), "{entry}: {err}");
        }
    }
}
