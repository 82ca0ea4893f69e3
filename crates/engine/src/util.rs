//! Small helpers: atomic file writes, IDs, names, times and Docker's human-readable durations.

use std::io::Write;
use std::path::Path;

use rand::Rng;

/// What [`write_atomic`] promises once it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Readers see the old or the new content, never a mix; a host crash may bring back the
    /// old content (no fsync).
    Atomic,
    /// As `Atomic`, and the new content survives a host crash (file and directory fsynced).
    Durable,
}

/// Writes `data` to `path` atomically: temp file, (fsync,) rename, (fsync of the directory).
pub fn write_atomic(path: &Path, data: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // A unique temporary name: concurrent writers of one file must not share it.
    let tmp = dir.join(format!(
        ".{}.{:08x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u32>()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durability == Durability::Durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durability == Durability::Durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A new 64-hex-digit ID.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// Now, RFC 3339 with nanoseconds in UTC (Docker's timestamp format).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The zero time as Docker prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses an RFC 3339 time to Unix seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
}

/// Go's `units.HumanDuration`, as `docker ps` prints ages.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let minutes = secs / 60;
    let hours = minutes / 60;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

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
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    n.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

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

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_succeed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rec.json");
        std::thread::scope(|s| {
            for i in 0..8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(p, format!("{i}").as_bytes(), Durability::Durable).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"one", Durability::Durable).unwrap();
        write_atomic(&p, b"two", Durability::Atomic).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
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
