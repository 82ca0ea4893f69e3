//! Go's formatting as dockerd's classic builder uses it in history entries: `%q` of strings and
//! string slices (`CMD ["/bin/sh" "-c" "echo hi"]`), `%v` of slices (`VOLUME [/data]`),
//! `time.Duration` printing and parsing (`HEALTHCHECK --interval=1m30s`).

/// `strconv.Quote`: a double-quoted Go string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// `fmt.Sprintf("%v", []string{...})`: `[a b]`.
pub fn value_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `%q` of an integer: Go prints it as a quoted rune (`'\x00'`, `'\x03'`, `'A'`).
pub fn quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some('\u{7}') => "'\\a'".into(),
        Some('\u{8}') => "'\\b'".into(),
        Some('\u{c}') => "'\\f'".into(),
        Some('\n') => "'\\n'".into(),
        Some('\r') => "'\\r'".into(),
        Some('\t') => "'\\t'".into(),
        Some('\u{b}') => "'\\v'".into(),
        Some(c) if (c as u32) < 0x20 || c as u32 == 0x7f => format!("'\\x{:02x}'", c as u32),
        Some(c) => format!("'{c}'"),
        None => format!("%!q(int={n})"),
    }
}

/// `time.Duration.String()` of nanoseconds: `0s`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`.
pub fn duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            return format!("{sign}{u}ns");
        } else if u < 1_000_000 {
            ("µs", 1_000u64)
        } else {
            ("ms", 1_000_000u64)
        };
        return format!("{sign}{}{unit}", fraction(u, div));
    }
    let secs_part = u % 60_000_000_000;
    let mins_total = u / 60_000_000_000;
    let secs = format!("{}s", fraction(secs_part, 1_000_000_000));
    if mins_total == 0 {
        return format!("{sign}{secs}");
    }
    let hours = mins_total / 60;
    let mins = mins_total % 60;
    if hours == 0 {
        format!("{sign}{mins}m{secs}")
    } else {
        format!("{sign}{hours}h{mins}m{secs}")
    }
}

/// `value / div` with the fractional part printed without trailing zeros.
fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let rest = value % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `time.ParseDuration` ([`berth_sys::units::go_duration_nanos`]) in nanoseconds, with Go's
/// error texts.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    use berth_sys::units::DurationError;
    berth_sys::units::go_duration_nanos(s).map_err(|e| match e {
        DurationError::Invalid => format!("time: invalid duration {}", quote(s)),
        DurationError::MissingUnit => format!("time: missing unit in duration {}", quote(s)),
        DurationError::UnknownUnit(u) => {
            format!("time: unknown unit {} in duration {}", quote(&u), quote(s))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(
            quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]),
            "[\"/bin/sh\" \"-c\" \"echo \\\"hi\\\"\"]"
        );
        assert_eq!(value_list(&["/a".into(), "/b".into()]), "[/a /b]");
        assert_eq!(quote_rune(0), "'\\x00'");
        assert_eq!(quote_rune(3), "'\\x03'");
        assert_eq!(quote_rune(9), "'\\t'");
        assert_eq!(quote_rune(65), "'A'");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(30_000_000_000), "30s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(500_000_000), "500ms");
        assert_eq!(duration(1_500), "1.5µs");
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("-2h").unwrap(), -7_200_000_000_000);
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
    }
}
