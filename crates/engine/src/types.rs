//! Options and streams of engine operations.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Docker-style filters: `{"status": ["running"], "label": ["a=b"]}`.
pub type Filters = BTreeMap<String, Vec<String>>;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
}

/// A chunk of a container's (or exec's) output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stream: StreamKind,
    pub data: Bytes,
}

/// Input to a container's stdin or tty. Dropping the sender closes stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Data(Bytes),
    /// Terminal size: rows (height), cols (width).
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The client typed the detach keys: the session ends, the process's stdin stays open.
    Detach,
}

/// An attached session: output until the process ends (the receiver then yields `None`),
/// and stdin when it was asked for and the process has it open.
#[derive(Debug)]
pub struct IoSession {
    pub tty: bool,
    pub output: mpsc::Receiver<Output>,
    pub input: Option<mpsc::Sender<Input>>,
    /// The key sequence that detaches, when the input is a terminal's (dockerd scans only a
    /// TTY's stdin: without one, stdin is a byte stream passed on untouched).
    pub detach_keys: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the log first.
    pub logs: bool,
    /// Stream live output.
    pub stream: bool,
    /// The `detachKeys` query parameter (Docker's syntax; empty: ctrl-p,ctrl-q).
    pub detach_keys: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// `-n`: the last N created (all states).
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub timestamps: bool,
    /// `None`: all lines.
    pub tail: Option<usize>,
}

/// One line (or tty chunk) of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: StreamKind,
    /// RFC 3339 with nanoseconds, as in the json-file log.
    pub time: String,
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(format!("invalid condition: \"{other}\"")),
        }
    }
}

/// `docker rm` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    pub force: bool,
    pub volumes: bool,
    pub link: bool,
}
