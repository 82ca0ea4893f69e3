//! Small helpers: atomic file writes, IDs, names, times and Docker's human-readable durations.

use rand::Rng;

pub use berth_sys::fs::{write_atomic, Durability};

/// A new 64-hex-digit ID.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// Now, RFC 3339 with nine fraction digits in UTC (Docker's timestamp format).
pub use berth_sys::time::now_rfc3339;

/// The zero time as Docker prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses an RFC 3339 time to Unix seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
}

pub use berth_sys::units::human_duration;

const ADJECTIVES: &[&str] = &[
    "admiring", "amazing", "awesome", "bold", "brave", "busy", "clever", "cool", "crazy",
    "dazzling", "eager", "ecstatic", "elegant", "epic", "fervent", "focused", "friendly",
    "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind", "laughing", "lucid",
    "magical", "modest", "nice", "nifty", "peaceful", "quirky", "relaxed", "serene", "sharp",
    "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
];
const NAMES: &[&str] = &[
    "albattani",
    "archimedes",
    "babbage",
    "bell",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamport",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "poincare",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
    "yalow",
];

/// A Docker-style random name (`adjective_scientist`).
pub fn random_name() -> String {
    let mut r = rand::thread_rng();
    format!(
        "{}_{}",
        ADJECTIVES[r.gen_range(0..ADJECTIVES.len())],
        NAMES[r.gen_range(0..NAMES.len())]
    )
}

/// Whether `name` is a valid container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, optional leading `/`).
pub fn valid_name(name: &str) -> bool {
    berth_sys::names::is_valid(name.strip_prefix('/').unwrap_or(name), 2)
}

/// Signal name or number → number (`KILL`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            let rt = name.strip_prefix("RTMIN")?;
            let off: i32 = if rt.is_empty() {
                0
            } else {
                rt.strip_prefix('+')?.parse().ok()?
            };
            return (34 + off <= 64).then_some(34 + off);
        }
    };
    Some(n)
}

/// `label=key` or `label=key=value` against a label map.
pub fn label_matches(filter: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_signals() {
        assert!(valid_name("web-1"));
        assert!(valid_name("/web_1.x"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("a"));
        assert!(!valid_name("we b"));
        assert!(valid_name(&random_name()));
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("RTMIN+2"), Some(36));
        assert_eq!(parse_signal("BOGUS"), None);
        assert_eq!(parse_signal("99"), None);
    }
}

/// A duration as Go's `time.Duration.String()` writes it: `30s`, `1m30s`, `1.5s`, `500ms`.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return if ns.is_multiple_of(1_000_000) {
            format!("{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!("{}µs", ns / 1_000)
        } else {
            format!("{ns}ns")
        };
    }
    let total_secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, (total_secs % 3600) / 60, total_secs % 60);
    let mut secs = s.to_string();
    if frac != 0 {
        let f = format!("{frac:09}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&secs);
    out.push('s');
    out
}

#[cfg(test)]
mod go_duration_tests {
    use super::go_duration;
    use std::time::Duration;

    #[test]
    fn formats_like_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}

/// Paths that live work holds (a build's scratch or secret directory), shared with the guard
/// that removes each one, so that a sweep of what a dead daemon left spares them.
#[derive(Clone, Default)]
pub struct ActivePaths(
    std::sync::Arc<std::sync::Mutex<std::collections::HashSet<std::path::PathBuf>>>,
);

impl ActivePaths {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<std::path::PathBuf>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, path: std::path::PathBuf) {
        self.set().insert(path);
    }

    pub fn remove(&self, path: &std::path::Path) {
        self.set().remove(path);
    }

    pub fn contains(&self, path: &std::path::Path) -> bool {
        self.set().contains(path)
    }
}
