//! Docker's rule for object names (containers, networks, volumes): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
//! The callers differ only in the shortest name they accept and in their error messages, which
//! stay theirs. Also the registry domain a login's server address names, which the CLI (to key
//! its credentials) and the engine (to check them) must agree on.

/// Whether every character of `name` is allowed: the first alphanumeric (ASCII), the others
/// alphanumeric or one of `_.-`. The empty name has no valid first character.
pub fn has_valid_chars(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

/// Whether `name` has valid characters and at least `min_len` bytes (containers and volumes
/// want 2, networks 1).
pub fn is_valid(name: &str, min_len: usize) -> bool {
    name.len() >= min_len && has_valid_chars(name)
}

/// The registry domain of a login server address: `https://index.docker.io/v1/` → `docker.io`,
/// `http://127.0.0.1:5000/` → `127.0.0.1:5000`; Docker Hub's other names (and an empty
/// address) → `docker.io`.
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_domains() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("registry-1.docker.io"), "docker.io");
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain(" http://127.0.0.1:5000/ "), "127.0.0.1:5000");
        assert_eq!(login_domain("localhost:5000/v2/"), "localhost:5000");
    }

    #[test]
    fn docker_name_rule() {
        assert!(is_valid("web-1", 2));
        assert!(is_valid("a", 1));
        assert!(!is_valid("a", 2));
        assert!(!is_valid("", 0));
        assert!(!is_valid("-web", 1));
        assert!(!is_valid("_web", 1));
        assert!(!is_valid("we b", 1));
        assert!(!is_valid("wé", 1));
        assert!(has_valid_chars("x.y_z-0"));
        assert!(!has_valid_chars("x/y"));
    }
}
