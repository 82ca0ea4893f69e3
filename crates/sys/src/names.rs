//! Docker's rule for object names (containers, networks, volumes): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
//! The callers differ only in the shortest name they accept and in their error messages, which
//! stay theirs.

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

#[cfg(test)]
mod tests {
    use super::*;

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
