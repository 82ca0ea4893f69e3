//! A container's life as one explicit state machine.
//!
//! [`Status`] is where a container is; [`Lifecycle`] is what the engine persists about it
//! (status, pid, last exit, times); [`Lifecycle::apply`] is the one function that moves it,
//! and it refuses a [`Transition`] that is not legal from the current status with
//! [`IllegalTransition`] (a conflict, to the API). The Docker wire state (`State` in inspect:
//! a status string and four booleans) is derived from it, for queries only
//! ([`Lifecycle::to_wire`]).
//!
//! ```text
//!             start             pause
//!  Created ──────────▶ Running ◀──────▶ Paused
//!     ▲ │                │  ▲   unpause   │
//!     │ │ remove    exit │  │ start       │ exit
//!     │ ▼                ▼  │             │
//!  Removing ◀──────── Exited ◀────────────┘
//!     │   remove        │  ▲
//!     │ failed          │  │ cancel restart (stop, kill, rm, a failed start)
//!     ▼     schedule    ▼  │
//!    Dead   restart   Restarting ── start ──▶ Running
//! ```
//!
//! A failed start leaves a created or exited container where it was, with the error and exit
//! code of the failure recorded (as dockerd shows them).

use berth_api::{ContainerState, Health};
use serde::{Deserialize, Serialize};

use crate::util::ZERO_TIME;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or a start failed before it ran).
    Created,
    /// Its process runs.
    Running,
    /// Its processes are frozen.
    Paused,
    /// Exited, and its restart policy will start it again after a back-off.
    Restarting,
    /// Its process ended.
    Exited,
    /// Being removed.
    Removing,
    /// A removal failed half way; only another removal may proceed.
    Dead,
}

impl Status {
    /// Every status, for exhaustive tests.
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Exited,
        Status::Removing,
        Status::Dead,
    ];

    /// Docker's word for it (`State.Status`, `ps --filter status=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }

    /// Whether the container's process exists (running or frozen).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// A change to a container's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Its process was created and is about to run (pid known).
    Start { pid: i64, at: String },
    /// A start failed before the process ran: the error and Docker's exit code for it.
    StartFailed { exit_code: i64, error: String },
    /// `docker pause`.
    Pause,
    /// `docker unpause` (or a thaw before a signal).
    Unpause,
    /// The process ended.
    Exit {
        exit_code: i64,
        oom_killed: bool,
        at: String,
    },
    /// The restart policy will start it again.
    ScheduleRestart,
    /// A pending policy restart is called off (stop, kill, rm, or its start failed).
    CancelRestart,
    /// Removal begins.
    Remove,
    /// Removal failed part way.
    RemoveFailed,
}

impl Transition {
    /// A short name for messages.
    fn name(&self) -> &'static str {
        match self {
            Transition::Start { .. } => "start",
            Transition::StartFailed { .. } => "record a failed start of",
            Transition::Pause => "pause",
            Transition::Unpause => "unpause",
            Transition::Exit { .. } => "record the exit of",
            Transition::ScheduleRestart => "schedule a restart of",
            Transition::CancelRestart => "cancel the restart of",
            Transition::Remove => "remove",
            Transition::RemoveFailed => "record a failed removal of",
        }
    }
}

/// A transition that is not legal from the container's current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a container that is {}", .transition, .from.as_str())]
pub struct IllegalTransition {
    pub from: Status,
    pub transition: &'static str,
}

/// The persisted part of a container's state. The field names are those the records of
/// earlier releases used (the Docker wire names), so those records load unchanged; see
/// [`StoredLifecycle`] for how their status is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", from = "StoredLifecycle")]
pub struct Lifecycle {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::created()
    }
}

impl Lifecycle {
    /// A container that was just made.
    pub fn created() -> Self {
        Lifecycle {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }

    /// Whether `t` is legal from the current status.
    pub fn allows(&self, t: &Transition) -> bool {
        use Status::*;
        match t {
            Transition::Start { .. } => matches!(self.status, Created | Exited | Restarting),
            // A start that failed after the record said running (the shim reported no exit).
            Transition::StartFailed { .. } => {
                matches!(self.status, Created | Exited | Restarting | Running)
            }
            Transition::Pause => self.status == Running,
            Transition::Unpause => self.status == Paused,
            Transition::Exit { .. } => matches!(self.status, Running | Paused),
            Transition::ScheduleRestart => self.status == Exited,
            Transition::CancelRestart => self.status == Restarting,
            Transition::Remove => matches!(self.status, Created | Exited | Restarting | Dead),
            Transition::RemoveFailed => self.status == Removing,
        }
    }

    /// Applies `t`, or refuses it (leaving the state as it was) when it is not legal from here.
    pub fn apply(&mut self, t: Transition) -> Result<(), IllegalTransition> {
        if !self.allows(&t) {
            return Err(IllegalTransition {
                from: self.status,
                transition: t.name(),
            });
        }
        match t {
            Transition::Start { pid, at } => {
                *self = Lifecycle {
                    status: Status::Running,
                    pid,
                    started_at: at,
                    ..Lifecycle::created()
                };
            }
            Transition::StartFailed { exit_code, error } => {
                if matches!(self.status, Status::Running | Status::Restarting) {
                    self.status = Status::Exited;
                }
                self.pid = 0;
                self.exit_code = exit_code;
                self.error = error;
            }
            Transition::Pause => self.status = Status::Paused,
            Transition::Unpause => self.status = Status::Running,
            Transition::Exit {
                exit_code,
                oom_killed,
                at,
            } => {
                self.status = Status::Exited;
                self.pid = 0;
                self.exit_code = exit_code;
                self.oom_killed = oom_killed;
                self.finished_at = at;
            }
            Transition::ScheduleRestart => self.status = Status::Restarting,
            Transition::CancelRestart => self.status = Status::Exited,
            Transition::Remove => self.status = Status::Removing,
            Transition::RemoveFailed => self.status = Status::Dead,
        }
        Ok(())
    }

    /// Whether the container's process exists (running or frozen).
    pub fn running(&self) -> bool {
        self.status.is_running()
    }

    /// Whether its processes are frozen.
    pub fn paused(&self) -> bool {
        self.status == Status::Paused
    }

    /// Whether its restart policy waits to start it again.
    pub fn restarting(&self) -> bool {
        self.status == Status::Restarting
    }

    /// `State` as the Docker API shows it. `Running` is true for a paused container, and false
    /// while a restart policy waits (berth's behaviour so far; dockerd says true there).
    pub fn to_wire(&self) -> ContainerState {
        ContainerState {
            status: self.status.as_str().into(),
            running: self.status.is_running(),
            paused: self.status == Status::Paused,
            restarting: self.status == Status::Restarting,
            oom_killed: self.oom_killed,
            dead: self.status == Status::Dead,
            pid: self.pid,
            exit_code: self.exit_code,
            error: self.error.clone(),
            started_at: if self.started_at.is_empty() {
                ZERO_TIME.into()
            } else {
                self.started_at.clone()
            },
            finished_at: self.finished_at.clone(),
            health: self.health.clone(),
        }
    }
}

/// A record's state as any release wrote it: the current form, or the Docker wire state
/// earlier releases stored (a status string beside `Running`, `Paused`, `Restarting` and `Dead`
/// booleans). The booleans decide where the string is missing or unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StoredLifecycle {
    status: String,
    running: bool,
    paused: bool,
    restarting: bool,
    dead: bool,
    pid: i64,
    exit_code: i64,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    error: String,
    started_at: String,
    finished_at: String,
    health: Option<Health>,
}

impl From<StoredLifecycle> for Lifecycle {
    fn from(s: StoredLifecycle) -> Self {
        let by_flags = if s.dead {
            Status::Dead
        } else if s.paused && s.running {
            Status::Paused
        } else if s.running {
            Status::Running
        } else if s.restarting {
            Status::Restarting
        } else if s.started_at.is_empty() || s.started_at == ZERO_TIME {
            Status::Created
        } else {
            Status::Exited
        };
        let status = Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s.status)
            .unwrap_or(by_flags);
        let or_zero = |t: String| if t.is_empty() { ZERO_TIME.into() } else { t };
        Lifecycle {
            status,
            pid: s.pid,
            exit_code: s.exit_code,
            oom_killed: s.oom_killed,
            error: s.error,
            started_at: or_zero(s.started_at),
            finished_at: or_zero(s.finished_at),
            health: s.health,
        }
    }
}

#[cfg(test)]
mod tests;
