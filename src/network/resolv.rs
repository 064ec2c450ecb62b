//! The container's resolv.conf: the host's, with `--dns`, `--dns-search`
//! and `--dns-option` replacing the matching parts when given (docker's
//! rule). Pure.

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
}
