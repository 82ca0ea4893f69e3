//! Go `go-units` humanisation (durations, sizes), byte-size parsing, Go-style quoting.

use anyhow::{bail, Result};

pub use berth_sys::units::human_duration;

/// "N units ago" from a unix timestamp.
pub fn ago(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    format!("{} ago", human_duration(now - unix))
}

/// Go's `%.*g` formatting.
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let p = prec.max(1);
    let e = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.HumanSizeWithPrecision(size, 3)` (decimal units).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_g(size, 3), UNITS[i])
}

/// `units.RAMInBytes`: "64m", "1g", "512k", "100" (binary units;
/// [`berth_sys::units::ram_in_bytes`]).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    berth_sys::units::ram_in_bytes(s).map_err(anyhow::Error::msg)
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `formatter.Ellipsis`: truncates to `max` chars, the last one being "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A short (12-hex) ID without the `sha256:` prefix.
pub use berth_sys::ids::short_id;

/// Parses a Go duration ("10m", "1h30m", "1.5s", "300ms"; surrounding space ignored) into
/// whole nanoseconds ([`berth_sys::units::go_duration_nanos`]).
pub fn parse_go_duration_nanos(s: &str) -> Option<i64> {
    berth_sys::units::go_duration_nanos(s.trim()).ok()
}

/// [`parse_go_duration_nanos`] in seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    parse_go_duration_nanos(s).map(|n| n as f64 / 1e9)
}

/// `--since`/`--until` values: RFC3339 timestamps, unix timestamps, or durations relative to
/// now. Returns the API form ("seconds[.nanos]").
pub fn parse_timestamp(value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    if let Some(d) = parse_go_duration(v) {
        let now = chrono::Utc::now();
        let t = now.timestamp() as f64 + now.timestamp_subsec_nanos() as f64 / 1e9 - d;
        return Ok(format!("{}", t.floor() as i64));
    }
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(v.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(format!("{}", t.and_utc().timestamp()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(format!("{}", t.and_utc().timestamp()));
        }
    }
    bail!("invalid value for \"since\": failed to parse value as time or duration: \"{value}\"")
}

/// A unix timestamp shown like Go's `time.Time.String()` (in UTC).
pub fn go_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(856_000.0), "856kB");
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size(1_200_000_000.0), "1.2GB");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(4_265_432.0), "4.27MB");
    }

    #[test]
    fn g_format() {
        assert_eq!(fmt_g(999.7, 3), "1e+03");
        assert_eq!(fmt_g(12.0, 3), "12");
        assert_eq!(fmt_g(0.001234, 3), "0.00123");
    }

    #[test]
    fn ram() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 67108864);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("1GB").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("512k").unwrap(), 524288);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert!(ram_in_bytes("12x").is_err());
    }

    #[test]
    fn quote_and_ellipsis() {
        assert_eq!(go_quote("sh -c 'echo hi'"), "\"sh -c 'echo hi'\"");
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("short", 20), "short");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(600.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration(" 90s "), Some(90.0));
        // Whole nanoseconds, as Go's time.Duration: no float truncation to 1149999999.
        assert_eq!(parse_go_duration_nanos("1.15s"), Some(1_150_000_000));
        assert_eq!(parse_go_duration_nanos("--5s"), None);
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05Z").unwrap(),
            "1704164645.000000000"
        );
    }
}
