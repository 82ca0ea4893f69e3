//! The per-container `/etc/resolv.conf`, from the host's with Docker's rules: `--dns`,
//! `--dns-search` and `--dns-option` replace the host's entries; loopback nameservers (which
//! cannot work from another network namespace) are dropped; on user networks the embedded DNS
//! server at 127.0.0.11 is the only nameserver.

/// What the container asked for.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// Builds resolv.conf text from the host's `host` text.
pub fn resolv_conf(host: &str, want: &DnsSettings<'_>, embedded: bool) -> String {
    let field = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| {
                l.strip_prefix(key)
                    .filter(|r| r.starts_with(char::is_whitespace))
            })
            .flat_map(|r| r.split_whitespace().map(String::from).collect::<Vec<_>>())
            .collect()
    };
    let servers: Vec<String> = if embedded {
        vec!["127.0.0.11".into()]
    } else if !want.servers.is_empty() {
        want.servers.to_vec()
    } else {
        field("nameserver")
            .into_iter()
            .filter(|s| !s.starts_with("127.") && s != "::1")
            .collect()
    };
    let search: Vec<String> = if want.search.is_empty() {
        field("search")
    } else {
        want.search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect()
    };
    let mut options: Vec<String> = if want.options.is_empty() {
        field("options")
    } else {
        want.options.to_vec()
    };
    if embedded && !options.iter().any(|o| o.starts_with("ndots:")) {
        options.push("ndots:0".into());
    }
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";

    #[test]
    fn host_entries_without_loopback() {
        assert_eq!(
            resolv_conf(HOST, &DnsSettings::default(), false),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
    }

    #[test]
    fn flags_replace_host_entries() {
        let servers = vec!["1.1.1.1".to_string()];
        let search = vec!["a.test".to_string(), "b.test".to_string()];
        let options = vec!["ndots:2".to_string()];
        let w = DnsSettings {
            servers: &servers,
            search: &search,
            options: &options,
        };
        assert_eq!(
            resolv_conf(HOST, &w, false),
            "nameserver 1.1.1.1\nsearch a.test b.test\noptions ndots:2\n"
        );
        let dot = vec![".".to_string()];
        assert!(!resolv_conf(
            HOST,
            &DnsSettings {
                search: &dot,
                ..Default::default()
            },
            false
        )
        .contains("search"));
    }

    #[test]
    fn embedded_server_on_user_networks() {
        assert_eq!(
            resolv_conf(HOST, &DnsSettings::default(), true),
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n"
        );
    }
}
