//! The container's resolv.conf: the host's, with `--dns`, `--dns-search`
//! and `--dns-option` replacing the matching parts when given (docker's
//! rule). Pure.
//!
//! A container the engine's DNS server serves (see `network::dns`) names
//! only its network's gateway ([`render_served`]); the server forwards
//! what it does not know to the container's `--dns` servers, else to the
//! host's, as docker's embedded DNS does.

use std::net::Ipv4Addr;

/// Renders resolv.conf from the host's text and the container's options.
pub fn render(host: &str, dns: &[String], search: &[String], options: &[String]) -> String {
    let kept = |keyword: &str, replaced: bool| -> Vec<String> {
        if replaced {
            return Vec::new();
        }
        host.lines()
            .filter(|l| l.split_whitespace().next() == Some(keyword))
            .map(str::to_string)
            .collect()
    };
    let mut lines = kept("nameserver", !dns.is_empty());
    lines.extend(dns.iter().map(|d| format!("nameserver {d}")));
    let mut searches = kept("search", !search.is_empty());
    if !search.is_empty() {
        searches.push(format!("search {}", search.join(" ")));
    }
    lines.extend(searches);
    let mut opts = kept("options", !options.is_empty());
    if !options.is_empty() {
        opts.push(format!("options {}", options.join(" ")));
    }
    lines.extend(opts);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// resolv.conf for a container whose names the engine serves on
/// `gateway`: that is the one nameserver; search and options as [`render`]
/// gives them.
pub fn render_served(host: &str, gateway: Ipv4Addr, search: &[String], options: &[String]) -> String {
    render(host, &[gateway.to_string()], search, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# comment\nnameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n";

    #[test]
    fn host_values_are_kept_without_options() {
        assert_eq!(
            render(HOST, &[], &[], &[]),
            "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn given_values_replace_their_part_only() {
        let text = render(HOST, &["1.1.1.1".into(), "9.9.9.9".into()], &[], &["timeout:1".into()]);
        assert_eq!(
            text,
            "nameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch corp.example\noptions timeout:1\n"
        );
        let text = render(HOST, &[], &["a.test".into(), "b.test".into()], &[]);
        assert_eq!(text, "nameserver 10.0.0.2\nsearch a.test b.test\noptions ndots:2\n");
    }

    #[test]
    fn a_served_container_names_only_the_gateway() {
        let gateway = Ipv4Addr::new(10, 208, 1, 1);
        assert_eq!(
            render_served(HOST, gateway, &[], &[]),
            "nameserver 10.208.1.1\nsearch corp.example\noptions ndots:2\n"
        );
        assert_eq!(
            render_served(HOST, gateway, &["a.test".into()], &["ndots:1".into()]),
            "nameserver 10.208.1.1\nsearch a.test\noptions ndots:1\n"
        );
    }
}
