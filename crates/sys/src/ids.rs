//! Identifiers as Docker shows them.

/// The 12-hex-digit short form of an ID or digest, `sha256:` dropped (`sha256:4f0a…` and
/// `4f0a…` both give `4f0a…`, 12 characters). Shorter IDs come back whole.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids() {
        let hex = "0123456789abcdef0123";
        assert_eq!(short_id(hex), "0123456789ab");
        assert_eq!(short_id(&format!("sha256:{hex}")), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
    }
}
