//! The json-file log format, byte for byte as Docker's json-file driver writes it: one record a
//! line, `{"log":"…","stream":"stdout","time":"2026-11-25T22:01:02.123456789Z"}`. Also the
//! RFC 3339 timestamps (UTC, nine fraction digits) used there and in `exit.json`.

/// Longest record written without a newline: a longer partial line is cut into pieces this big.
pub const MAX_LINE: usize = 16 * 1024;

/// The current time (CLOCK_REALTIME) as RFC 3339 UTC with nanoseconds.
pub use berth_sys::time::now_rfc3339;

/// Appends `s` as a JSON string (with quotes), escaping as Docker's json-file driver does:
/// `\"`, `\\`, `\n`, `\r`, other control characters and `<`, `>`, `&` as `\u00XX`, U+2028 and
/// U+2029 as `\u2028`/`\u2029`, and each byte of invalid UTF-8 as `\ufffd`.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0..=0x1f | b'<' | b'>' | b'&' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        // A non-ASCII lead byte: find the one valid character of 2 to 4 bytes starting here.
        let ch = (2..=4)
            .filter(|&k| i + k <= s.len())
            .find_map(|k| std::str::from_utf8(&s[i..i + k]).ok());
        match ch {
            Some("\u{2028}") => out.extend_from_slice(b"\\u2028"),
            Some("\u{2029}") => out.extend_from_slice(b"\\u2029"),
            Some(c) => out.extend_from_slice(c.as_bytes()),
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                continue;
            }
        }
        i += ch.map_or(1, str::len);
    }
    out.push(b'"');
}

/// Appends one json-file record (with its trailing newline) for `line` of stream `stream`.
pub fn record_into(out: &mut Vec<u8>, line: &[u8], stream: &str, time: &str) {
    out.extend_from_slice(b"{\"log\":");
    escape_into(out, line);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Cuts a byte stream into log records: every line with its `\n`, and pieces of
/// [`MAX_LINE`] bytes of a line that grows longer than that without one.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`, calling `emit` for each complete record.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let (line, rest) = data.split_at(nl + 1);
                    if self.partial.is_empty() {
                        Self::emit_long(line, &mut emit);
                    } else {
                        self.partial.extend_from_slice(line);
                        Self::emit_long(&self.partial, &mut emit);
                        self.partial.clear();
                    }
                    data = rest;
                }
                None => {
                    self.partial.extend_from_slice(data);
                    while self.partial.len() >= MAX_LINE {
                        emit(&self.partial[..MAX_LINE]);
                        self.partial.drain(..MAX_LINE);
                    }
                    data = &[];
                }
            }
        }
        if self.partial.capacity() > 2 * MAX_LINE && self.partial.is_empty() {
            self.partial = Vec::new();
        }
    }

    /// Emits a complete line (ending in `\n`) in pieces of at most [`MAX_LINE`] bytes.
    fn emit_long(mut line: &[u8], emit: &mut impl FnMut(&[u8])) {
        while line.len() > MAX_LINE {
            emit(&line[..MAX_LINE]);
            line = &line[MAX_LINE..];
        }
        emit(line);
    }

    /// At the end of the stream: emits what is left of a line without a newline.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial.clear();
        }
    }
}

/// Extracts the value of the string field `"key"` from one line of flat JSON (runc's logrus
/// log lines), decoding its escapes. `None` when absent or malformed.
pub fn json_string_field(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let start = line.find(&pat)? + pat.len();
    let rest = line[start..].trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let mut cp = u32::from_str_radix(&hex, 16).ok()?;
                    if (0xd800..0xdc00).contains(&cp) {
                        // A surrogate pair: `\uD83D\uDE00`.
                        let tail: String = chars.by_ref().take(6).collect();
                        let lo = tail
                            .strip_prefix("\\u")
                            .and_then(|h| u32::from_str_radix(h, 16).ok());
                        cp = match lo {
                            Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                            }
                            _ => 0xfffd,
                        };
                    }
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_docker() {
        assert_eq!(esc(b"hi\n"), r#""hi\n""#);
        assert_eq!(esc(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(esc(b"\t\r\x01\x1f"), r#""\u0009\r\u0001\u001f""#);
        assert_eq!(esc(b"<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(esc("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(esc("x\u{2028}y\u{2029}".as_bytes()), r#""x\u2028y\u2029""#);
        // Each invalid byte becomes one replacement character, like Go's utf8.DecodeRune.
        assert_eq!(esc(b"a\xffb"), r#""a\ufffdb""#);
        assert_eq!(esc(b"\xe2\x82"), r#""\ufffd\ufffd""#);
        assert_eq!(esc(b"\xe2\x82\xacz\xc3"), "\"€z\\ufffd\"");
        assert_eq!(esc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#); // a surrogate is invalid
    }

    #[test]
    fn record_line() {
        let mut v = Vec::new();
        record_into(&mut v, b"hi\n", "stdout", "2026-11-25T22:01:02.000000001Z");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-25T22:01:02.000000001Z\"}\n"
        );
    }

    #[test]
    fn now_is_rfc3339_with_nanoseconds() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 30, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines() {
        assert_eq!(split(&[b"a\nb\n"]), vec![b"a\n".to_vec(), b"b\n".to_vec()]);
        assert_eq!(
            split(&[b"ab", b"c\nd", b"e\n\n"]),
            vec![b"abc\n".to_vec(), b"de\n".to_vec(), b"\n".to_vec()]
        );
        assert_eq!(
            split(&[b"x\npartial"]),
            vec![b"x\n".to_vec(), b"partial".to_vec()]
        );
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn splits_long_lines() {
        let long = vec![b'a'; MAX_LINE * 2 + 10];
        let out = split(&[&long]);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, MAX_LINE, 10]
        );
        let mut with_nl = vec![b'b'; MAX_LINE + 3];
        with_nl.push(b'\n');
        let out = split(&[&with_nl[..100], &with_nl[100..]]);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, 4]
        );
        assert_eq!(out[1], b"bbb\n");
    }

    #[test]
    fn parses_runc_log_msg() {
        let line = r#"{"level":"error","msg":"runc create failed: exec: \"nosuchcmd\": executable file not found in $PATH","time":"2026-11-25T22:00:00Z"}"#;
        assert_eq!(json_string_field(line, "level").as_deref(), Some("error"));
        assert_eq!(
            json_string_field(line, "msg").as_deref(),
            Some(r#"runc create failed: exec: "nosuchcmd": executable file not found in $PATH"#)
        );
        assert_eq!(
            json_string_field(r#"{"msg":"a\u00e9\n\ud83d\ude00"}"#, "msg").as_deref(),
            Some("aé\n😀")
        );
        assert_eq!(json_string_field(r#"{"msg":"unterminated"#, "msg"), None);
        assert_eq!(json_string_field(r#"{"level":"info"}"#, "msg"), None);
    }
}
