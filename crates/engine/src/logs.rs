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
    // Rotated files first, oldest (highest number) first.
    let mut older = Vec::new();
    for n in 1.. {
        let p = numbered(path, n);
        if !p.exists() {
            break;
        }
        older.push(p);
    }
    let mut out = Vec::new();
    for p in older.iter().rev() {
        out.extend(read_from(p, 0, o)?.0);
    }
    let (live, offset) = read_from(path, 0, o)?;
    out.extend(live);
    if let Some(t) = o.tail {
        let skip = out.len().saturating_sub(t);
        out.drain(..skip);
    }
    Ok((out, offset))
}

/// Reads complete lines appended after `offset`; returns them and the new offset.
fn numbered(path: &Path, n: u32) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    s.into()
}

/// The log options of the `json-file` and `local` drivers, checked with Docker's words:
/// `Some((max-size bytes, max-file))` when the log rotates.
pub fn rotation(cfg: &berth_api::LogConfig) -> Result<Option<(u64, u32)>, String> {
    let (allowed, default_size, default_files): (&[&str], i64, u32) = match cfg.kind.as_str() {
        "json-file" | "" => (
            &[
                "max-file",
                "max-size",
                "compress",
                "labels",
                "labels-regex",
                "env",
                "env-regex",
                "tag",
            ],
            -1,
            1,
        ),
        "local" => (&["max-file", "max-size", "compress"], 20_000_000, 5),
        _ => return Ok(None),
    };
    for k in cfg.config.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(if cfg.kind == "local" {
                format!("unknown log opt {k:?} for log driver \"local\"")
            } else {
                format!("unknown log opt '{k}' for json-file log driver")
            });
        }
    }
    let size = match cfg.config.get("max-size").map(String::as_str) {
        None => default_size,
        Some("-1") => -1,
        Some(s) => match berth_sys::units::from_human_size(s) {
            Some(n) if n > 0 => n,
            _ => return Err("max-size must be a positive number".into()),
        },
    };
    let files = match cfg.config.get("max-file") {
        None => default_files,
        Some(f) => match f.parse::<i64>() {
            Ok(n) if n >= 1 => n as u32,
            Ok(_) => return Err("max-file cannot be less than 1".into()),
            Err(_) => return Err(format!("invalid max-file: {f}")),
        },
    };
    if size < 0 {
        return Ok(None);
    }
    Ok(Some((size as u64, files)))
}

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
    // The file was rotated since `offset` was taken: start the new one from its beginning.
    let offset = if f.metadata()?.len() < offset {
        0
    } else {
        offset
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
    #[test]
    fn log_options_as_docker_checks_them() {
        let cfg = |kind: &str, kv: &[(&str, &str)]| berth_api::LogConfig {
            kind: kind.into(),
            config: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(rotation(&cfg("json-file", &[])).unwrap(), None);
        assert_eq!(
            rotation(&cfg("json-file", &[("max-size", "10k"), ("max-file", "3")])).unwrap(),
            Some((10_000, 3))
        );
        assert_eq!(rotation(&cfg("local", &[])).unwrap(), Some((20_000_000, 5)));
        assert_eq!(
            rotation(&cfg("json-file", &[("max-sise", "1")])).unwrap_err(),
            "unknown log opt 'max-sise' for json-file log driver"
        );
        assert!(rotation(&cfg("json-file", &[("max-file", "0")])).is_err());
        assert!(rotation(&cfg("json-file", &[("max-size", "lots")])).is_err());
        assert_eq!(berth_sys::units::from_human_size("1.5MB"), Some(1_500_000));
    }

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
