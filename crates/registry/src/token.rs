//! Lifetimes of the Authorization a client holds: a Bearer token lives `expires_in` seconds
//! (60 when the token server does not say, per the token spec) and is fetched again shortly
//! before that passes; Basic credentials never expire.

use std::time::{Duration, Instant};

/// The token spec's lifetime of a token whose answer has no `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The `Authorization` header in use and when to fetch a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub header: String,
    /// `None`: valid for as long as the client lives (Basic).
    pub refresh_at: Option<Instant>,
}

impl Authorization {
    /// Basic credentials (or anything else that does not expire).
    pub fn lasting(header: String) -> Authorization {
        Authorization {
            header,
            refresh_at: None,
        }
    }

    /// A Bearer token received at `received` that lives `lifetime`.
    pub fn bearer(token: &str, received: Instant, lifetime: Duration) -> Authorization {
        Authorization {
            header: format!("Bearer {token}"),
            refresh_at: Some(received + refresh_after(lifetime)),
        }
    }

    /// Whether the header may still be sent at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|t| now < t)
    }
}

/// How long after receiving a token berth fetches the next one: a tenth of its lifetime early
/// (at most 30 s early), so that a request sent just before the deadline still carries a
/// valid token when it arrives.
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 10).min(Duration::from_secs(30))
}

/// The lifetime a token server's answer gives (`expires_in`, seconds); the token spec's 60 s
/// when it is missing, zero, negative or not a number.
pub fn token_lifetime(body: &[u8]) -> Duration {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return DEFAULT_TOKEN_LIFETIME,
    };
    match v.get("expires_in").and_then(serde_json::Value::as_f64) {
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s.min(1e9)),
        _ => DEFAULT_TOKEN_LIFETIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_from_token_answers() {
        assert_eq!(
            token_lifetime(br#"{"token":"t","expires_in":300}"#),
            Duration::from_secs(300)
        );
        assert_eq!(
            token_lifetime(br#"{"token":"t","expires_in":2.5}"#),
            Duration::from_millis(2500)
        );
        assert_eq!(token_lifetime(br#"{"token":"t"}"#), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(
            token_lifetime(br#"{"token":"t","expires_in":0}"#),
            DEFAULT_TOKEN_LIFETIME
        );
        assert_eq!(
            token_lifetime(br#"{"token":"t","expires_in":"x"}"#),
            DEFAULT_TOKEN_LIFETIME
        );
        assert_eq!(token_lifetime(b"nonsense"), DEFAULT_TOKEN_LIFETIME);
    }

    #[test]
    fn refreshed_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(54)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(3)),
            Duration::from_millis(2700)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3570)
        );
        let t0 = Instant::now();
        let a = Authorization::bearer("abc", t0, Duration::from_secs(10));
        assert_eq!(a.header, "Bearer abc");
        assert!(a.is_fresh(t0 + Duration::from_secs(8)));
        assert!(!a.is_fresh(t0 + Duration::from_secs(9)));
        let b = Authorization::lasting("Basic x".into());
        assert!(b.is_fresh(t0 + Duration::from_secs(1 << 30)));
    }

    use crate::fake_registry::{FakeConfig, FakeRegistry};
    use crate::options::{RegistryOptions, UploadPolicy};
    use crate::RegistryClient;
    use std::io::Read;

    /// A blob source that takes `pause` per 100 bytes, so that an upload outlives tokens.
    struct SlowSource {
        data: std::io::Cursor<Vec<u8>>,
        pause: Duration,
    }

    impl Read for SlowSource {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.pause);
            let n = buf.len().min(100);
            self.data.read(&mut buf[..n])
        }
    }

    fn slow_chunked_upload(fake: &FakeRegistry) -> Vec<u8> {
        let opts = RegistryOptions {
            upload: UploadPolicy {
                chunked_threshold: 200,
                chunk_size: 200,
            },
            ..Default::default()
        };
        let c = RegistryClient::connect(&opts, &fake.host, "a/b", None, &["pull", "push"], false)
            .unwrap();
        let data: Vec<u8> = (0..2000u32).map(|i| (i % 253) as u8).collect();
        let digest = crate::verify::sha256_digest(&data);
        let src = SlowSource {
            data: std::io::Cursor::new(data.clone()),
            pause: Duration::from_millis(70),
        };
        let mut finish = || Ok(digest.clone());
        let got = c.upload_blob_streamed(Box::new(src), &mut finish).unwrap();
        assert_eq!(got, digest);
        assert_eq!(fake.blob(&digest).as_deref(), Some(&data[..]));
        // A later GET still works, on whichever token is current.
        std::thread::sleep(Duration::from_millis(400));
        let mut body = Vec::new();
        c.get_blob(&digest).unwrap().read_to_end(&mut body).unwrap();
        assert_eq!(body, data);
        data
    }

    fn stale_token_refusals(fake: &FakeRegistry) -> usize {
        fake.seen()
            .iter()
            .filter(|r| r.status == 401 && r.headers.contains_key("authorization"))
            .count()
    }

    #[test]
    fn token_revoked_mid_upload_is_fetched_again_on_401() {
        // Tokens claim 300 s but the registry stops taking them after 300 ms.
        let fake = FakeRegistry::start(FakeConfig {
            token_expires_in: Some(300.0),
            token_valid_for: Some(Duration::from_millis(300)),
            ..Default::default()
        });
        slow_chunked_upload(&fake);
        assert!(fake.tokens_issued() >= 3, "{}", fake.tokens_issued());
        assert!(stale_token_refusals(&fake) >= 2);
    }

    #[test]
    fn token_is_renewed_before_it_expires() {
        // Tokens live 0.5 s (taken until 0.8 s): renewed in time, nothing is refused.
        let fake = FakeRegistry::start(FakeConfig {
            token_expires_in: Some(0.5),
            token_valid_for: Some(Duration::from_millis(800)),
            ..Default::default()
        });
        slow_chunked_upload(&fake);
        assert!(fake.tokens_issued() >= 3, "{}", fake.tokens_issued());
        assert_eq!(stale_token_refusals(&fake), 0, "{:?}", fake.seen());
    }
}
