//! Sizes and durations as users write them (`64m`, `1.5GB`, `1m30s`), parsed in one place.
//!
//! berth accepts sizes in more than one syntax, each matching the interface it answers for; the
//! differences are kept on purpose, since each is part of what that interface accepts and of
//! the error text it gives:
//!
//! - [`ram_in_bytes`]: Docker's `units.RAMInBytes` as the docker CLI applies it (`--memory`,
//!   `--shm-size`, `--tmpfs-size`): binary units `k m g t p`, with optional `i` and `b`.
//! - [`binary_size`]: the engine's sizes in container and daemon configuration (tmpfs
//!   `size=`, the daemon's `default-shm-size`): binary units `k m g t` keyed on the last
//!   letter, an optional `b` after it, one error text.
//! - [`whole_binary_size`]: a Dockerfile `RUN --mount=type=tmpfs,size=…`: a whole number with
//!   `k m g` (binary) and any trailing `b`s, as an unsigned count.
//! - [`from_human_size`]: Docker's `units.FromHumanSize`, decimal units (`k` = 1000): the
//!   json-file log driver's `max-size`.
//!
//! Durations:
//!
//! - [`go_duration_nanos`]: Go's `time.ParseDuration` (`300ms`, `-1.5h`, `2h45m`), the one
//!   syntax of every duration: the Dockerfile `HEALTHCHECK` flags, the CLI's `--health-*`,
//!   `--since` and `--until`, and the `until` filter of prunes.

/// Docker's `units.RAMInBytes`: `64m`, `1g`, `1GiB`, `512k`, `100`, `1.5g` (binary units
/// `k`, `m`, `g`, `t`, `p`, case-insensitive, optionally followed by `i` and `b`), in bytes,
/// truncated toward zero. Errors: `invalid size: '<s>'` when the number does not parse,
/// `invalid suffix: '<unit>'` for another unit.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(format!("invalid suffix: '{unit}'")),
    };
    Ok((n * mult) as i64)
}

/// The engine's sizes: `64m`, `1g`, `512k`, `100b`, `1024`, `10mb`, `1.5g` (binary units
/// `k`, `m`, `g`, `t` by the last letter, case-insensitive, optionally followed by `b`; a
/// lone `b` is bytes), in bytes, truncated toward zero. Any failure is
/// `invalid size: '<s>'`.
pub fn binary_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|x| x.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t)
        .to_string();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t.as_str(), 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    Ok((n * mul as f64) as i64)
}

/// A whole number of bytes with an optional binary unit: `64m`, `1g`, `1024`, `512k`, `2kb`
/// (`k`, `m`, `g`, case-insensitive; trailing `b`s ignored). Any failure is
/// `invalid size: <v>`.
pub fn whole_binary_size(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("invalid size: {v}"))
}

/// Docker's `units.FromHumanSize`: `10m`, `1.5MB`, `512k`, `100`, `2 GiB` (decimal units `k`,
/// `m`, `g`, `t`, `p`, case-insensitive, optionally followed by `i` and `b`), in bytes,
/// truncated toward zero; `None` when it does not parse.
pub fn from_human_size(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    Some((n * mul) as i64)
}

/// Why [`go_duration_nanos`] refused a duration; each caller words it (Go's texts are
/// `time: invalid duration "<s>"`, `time: missing unit in duration "<s>"` and
/// `time: unknown unit "<unit>" in duration "<s>"`, with Go's quoting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Empty, a sign alone, a number that does not parse, a unit with no number.
    Invalid,
    /// A number with no unit after it (other than a lone `0`).
    MissingUnit,
    /// A unit other than `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    UnknownUnit(String),
}

/// Go's `time.ParseDuration`: `300ms`, `-1.5h`, `2h45m`, `1m30s`, `0` (one optional sign,
/// then numbers each followed by a unit `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), in
/// nanoseconds rounded to the nearest one. No surrounding space is allowed.
pub fn go_duration_nanos(s: &str) -> Result<i64, DurationError> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationError::Invalid);
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| DurationError::Invalid)?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit),
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        total += number * scale;
    }
    let nanos = total.round() as i64;
    Ok(if neg { -nanos } else { nanos })
}

/// Go's `units.HumanDuration` for a number of seconds (hours rounded, as Go's
/// `d.Round(time.Hour)`): `docker ps` ages and statuses, and the CLI's tables.
pub fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        return "Less than a second".into();
    } else if s == 1 {
        return "1 second".into();
    } else if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = s / 60;
    if minutes == 1 {
        return "About a minute".into();
    } else if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // d.Round(time.Hour).Hours()
    let hours = (s + 1800) / 3600;
    if hours == 1 {
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
        format!("{} years", s / 3600 / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_as_go() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        // Go rounds the hours: 90 minutes is "2 hours" (the engine's copy said "About an hour").
        assert_eq!(human_duration(90 * 60), "2 hours");
        assert_eq!(human_duration(2 * 3600), "2 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(15 * 24 * 3600), "2 weeks");
        assert_eq!(human_duration(70 * 24 * 3600), "2 months");
        assert_eq!(human_duration(800 * 24 * 3600), "2 years");
    }

    #[test]
    fn ram_in_bytes_is_dockers() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 67108864);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("1GB").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("1GiB").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("512k").unwrap(), 524288);
        assert_eq!(ram_in_bytes("1p").unwrap(), 1 << 50);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes(" 100 ").unwrap(), 100);
        assert_eq!(ram_in_bytes("12x").unwrap_err(), "invalid suffix: 'x'");
        assert_eq!(ram_in_bytes("lots").unwrap_err(), "invalid size: 'lots'");
    }

    #[test]
    fn binary_size_by_last_letter() {
        assert_eq!(binary_size("64m").unwrap(), 64 << 20);
        assert_eq!(binary_size("1g").unwrap(), 1 << 30);
        assert_eq!(binary_size("1T").unwrap(), 1 << 40);
        assert_eq!(binary_size("1024").unwrap(), 1024);
        assert_eq!(binary_size("10mb").unwrap(), 10 << 20);
        assert_eq!(binary_size("100b").unwrap(), 100);
        assert_eq!(binary_size("1.5k").unwrap(), 1536);
        // Where it differs from RAMInBytes: no `p`, no `i`, one error text.
        assert_eq!(binary_size("1p").unwrap_err(), "invalid size: '1p'");
        assert_eq!(binary_size("1kib").unwrap_err(), "invalid size: '1kib'");
        assert_eq!(binary_size("lots").unwrap_err(), "invalid size: 'lots'");
    }

    #[test]
    fn whole_binary_size_is_whole() {
        assert_eq!(whole_binary_size("64m").unwrap(), 64 << 20);
        assert_eq!(whole_binary_size("1G").unwrap(), 1 << 30);
        assert_eq!(whole_binary_size("2kb").unwrap(), 2048);
        assert_eq!(whole_binary_size("1024").unwrap(), 1024);
        assert_eq!(whole_binary_size("1.5k").unwrap_err(), "invalid size: 1.5k");
        assert_eq!(whole_binary_size("-1").unwrap_err(), "invalid size: -1");
        assert_eq!(whole_binary_size("1t").unwrap_err(), "invalid size: 1t");
    }

    #[test]
    fn from_human_size_is_decimal() {
        assert_eq!(from_human_size("1.5MB"), Some(1_500_000));
        assert_eq!(from_human_size("10m"), Some(10_000_000));
        assert_eq!(from_human_size("512k"), Some(512_000));
        assert_eq!(from_human_size("2 GiB"), Some(2_000_000_000));
        assert_eq!(from_human_size("100"), Some(100));
        assert_eq!(from_human_size("1x"), None);
        assert_eq!(from_human_size("m"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration_nanos("1.15s"), Ok(1_150_000_000));
        assert_eq!(go_duration_nanos("500ms"), Ok(500_000_000));
        assert_eq!(go_duration_nanos("3µs"), Ok(3_000));
        assert_eq!(go_duration_nanos("3μs"), Ok(3_000));
        assert_eq!(go_duration_nanos("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(go_duration_nanos("0"), Ok(0));
        assert_eq!(go_duration_nanos("-2h"), Ok(-7_200_000_000_000));
        assert_eq!(go_duration_nanos("+5s"), Ok(5_000_000_000));
        assert_eq!(go_duration_nanos("10"), Err(DurationError::MissingUnit));
        assert_eq!(
            go_duration_nanos("3x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        for bad in ["", "-", "abc", "--5s", " 5s", "s"] {
            assert_eq!(
                go_duration_nanos(bad),
                Err(DurationError::Invalid),
                "{bad:?}"
            );
        }
    }
}
