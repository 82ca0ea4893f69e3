//! RFC 3339 timestamps as Docker writes them, without a date library (the shim and the static
//! runtime stay small).

use std::time::{SystemTime, UNIX_EPOCH};

/// How many fraction digits a timestamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `2026-11-25T22:01:02Z` (volume `CreatedAt`, the runtime's log lines).
    Seconds,
    /// `2026-11-25T22:01:02.123456789Z`, always nine digits (records, events, json-file logs).
    Nanos,
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats seconds + nanoseconds since the Unix epoch as RFC 3339 in UTC (`Z`).
pub fn format_rfc3339(secs: i64, nanos: u32, precision: Precision) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    match precision {
        Precision::Seconds => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        Precision::Nanos => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z"),
    }
}

/// Now (CLOCK_REALTIME) as seconds and nanoseconds since the Unix epoch.
pub fn now_unix() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (mut s, mut n) = (-(d.as_secs() as i64), d.subsec_nanos());
            if n > 0 {
                s -= 1;
                n = 1_000_000_000 - n;
            }
            (s, n)
        }
    }
}

/// Now, RFC 3339 in UTC with nine fraction digits (Docker's timestamp format in records).
pub fn now_rfc3339() -> String {
    let (s, n) = now_unix();
    format_rfc3339(s, n, Precision::Nanos)
}

/// Now, RFC 3339 in UTC to the second.
pub fn now_rfc3339_secs() -> String {
    let (s, n) = now_unix();
    format_rfc3339(s, n, Precision::Seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let cases = [
            (0, 0, Precision::Nanos, "1970-01-01T00:00:00.000000000Z"),
            (
                1_700_000_000,
                5,
                Precision::Nanos,
                "2023-11-14T22:13:20.000000005Z",
            ),
            (951_782_400, 0, Precision::Seconds, "2000-02-29T00:00:00Z"),
            (
                -1,
                999_999_999,
                Precision::Nanos,
                "1969-12-31T23:59:59.999999999Z",
            ),
            (
                1_795_644_062,
                123_456_789,
                Precision::Nanos,
                "2026-11-25T22:01:02.123456789Z",
            ),
            (
                4_107_542_399,
                999_999_999,
                Precision::Nanos,
                "2100-02-28T23:59:59.999999999Z",
            ),
            (
                4_107_542_399,
                999_999_999,
                Precision::Seconds,
                "2100-02-28T23:59:59Z",
            ),
        ];
        for (secs, nanos, precision, want) in cases {
            assert_eq!(format_rfc3339(secs, nanos, precision), want);
        }
    }

    #[test]
    fn now_has_docker_shape() {
        let n = now_rfc3339();
        assert_eq!(n.len(), 30, "{n}");
        assert!(n.ends_with('Z') && n.as_bytes()[19] == b'.');
        let s = now_rfc3339_secs();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20"));
    }
}
