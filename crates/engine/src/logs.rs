//! Reading a container's json-file log (`{"log":…,"stream":…,"time":…}` per line, as the shim
//! writes it): filtering by stream, time and tail, and following a growing file.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;

use crate::util::parse_time;
use crate::{LogEntry, LogsOptions, StreamKind};

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

/// Parses one json-file line.
pub fn parse_line(line: &str) -> Option<LogEntry> {
    let l: Line = serde_json::from_str(line).ok()?;
    let stream = match l.stream.as_str() {
        "stderr" => StreamKind::Stderr,
        _ => StreamKind::Stdout,
    };
    Some(LogEntry {
        stream,
        time: l.time,
        data: Bytes::from(l.log),
    })
}

/// Whether `e` passes the stream and time filters.
pub fn wanted(e: &LogEntry, o: &LogsOptions) -> bool {
    let stream_ok = match e.stream {
        StreamKind::Stdout => o.stdout,
        StreamKind::Stderr => o.stderr,
        StreamKind::Stdin => false,
    };
    if !stream_ok {
        return false;
    }
    if o.since.is_some() || o.until.is_some() {
        let t = parse_time(&e.time).unwrap_or(0.0);
        if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
            return false;
        }
    }
    true
}

/// Reads the whole log (filters and tail applied); returns the entries and the byte offset of
/// the end of the last complete line, where following continues.
pub fn read_all(path: &Path, o: &LogsOptions) -> std::io::Result<(Vec<LogEntry>, u64)> {
    let (mut out, offset) = read_from(path, 0, o)?;
    if let Some(t) = o.tail {
        let skip = out.len().saturating_sub(t);
        out.drain(..skip);
    }
    Ok((out, offset))
}

/// Reads complete lines appended after `offset`; returns them and the new offset.
pub fn read_from(
    path: &Path,
    offset: u64,
    o: &LogsOptions,
) -> std::io::Result<(Vec<LogEntry>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut off = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        off += n as u64;
        if let Some(e) = parse_line(line.trim_end_matches('\n')) {
            if wanted(&e, o) {
                out.push(e);
            }
        }
    }
    Ok((out, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_tail_and_follow_offsets() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        std::fs::write(
            &p,
            concat!(
                "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:01.000000000Z\"}\n",
                "{\"log\":\"b\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:02.000000000Z\"}\n",
                "{\"log\":\"c\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:03.000000000Z\"}\n",
                "{\"log\":\"partial"
            ),
        )
        .unwrap();
        let all = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (e, off) = read_all(&p, &all).unwrap();
        assert_eq!(
            e.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
            vec!["a\n", "b\n", "c\n"]
        );
        let (e, _) = read_all(
            &p,
            &LogsOptions {
                stdout: true,
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(e[0].data, "c\n");
        let since = parse_time("2026-01-01T00:00:02Z").unwrap();
        let (e, _) = read_all(
            &p,
            &LogsOptions {
                since: Some(since),
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:04Z\"}\n")
            .unwrap();
        let (e, off2) = read_from(&p, off, &all).unwrap();
        assert_eq!(e[0].data, "partial");
        assert!(off2 > off);
    }
}
