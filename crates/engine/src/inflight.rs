//! Operations in flight, recorded so that a daemon killed in the middle of one finishes or
//! undoes it when it opens again.
//!
//! An operation that leaves visible state behind while it runs — a container frozen by a
//! commit, a build step's container — writes an entry under `<data-root>/inflight/` (durably)
//! before it makes that state, and removes the entry when it has undone it. At open,
//! `recovery::finish_interrupted` takes each entry a dead daemon left to its end: it thaws
//! the container a commit froze and removes the container a build step made.

use std::path::{Path, PathBuf};

use berth_sys::fs::{write_atomic, Durability};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::{EngineError, Result};

/// What an entry says was under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Operation {
    /// `docker commit` froze `container` (its id) while reading its writable layer.
    CommitPause { container: String },
    /// A build's RUN step creates, runs and removes the container named `name`.
    BuildStep { name: String },
}

/// An entry on disk; removing it (drop) says the operation ended and undid what it made.
#[must_use = "the entry is removed when dropped"]
pub(crate) struct InFlight {
    path: PathBuf,
    /// Set by [`InFlight::leave`]: the entry stays for the next open.
    left: bool,
}

impl InFlight {
    /// Leaves the entry for the next open to finish (the operation could not undo its state).
    pub(crate) fn leave(mut self) {
        self.left = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.left {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The directory of entries under the data root.
fn dir(data_root: &Path) -> PathBuf {
    data_root.join("inflight")
}

/// Records `op` durably before the caller makes the state it names.
pub(crate) fn begin(ctx: &Context, op: Operation) -> Result<InFlight> {
    let dir = dir(&ctx.config.data_root);
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::Internal(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{}.json", crate::util::new_id()));
    let data = serde_json::to_vec(&op).map_err(|e| EngineError::Internal(e.to_string()))?;
    write_atomic(&path, &data, Durability::Durable)
        .map_err(|e| EngineError::Internal(format!("writing {}: {e}", path.display())))?;
    Ok(InFlight { path, left: false })
}

/// The entries a dead daemon left, oldest first; unreadable ones are returned as `None` (and
/// removed by the recovery).
pub(crate) fn leftovers(data_root: &Path) -> Vec<(PathBuf, Option<Operation>)> {
    let Ok(rd) = std::fs::read_dir(dir(data_root)) else {
        return Vec::new();
    };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|(_, p)| {
            let op = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            (p, op)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_in_a_stable_form() {
        let op = Operation::CommitPause {
            container: "abc".into(),
        };
        let s = serde_json::to_string(&op).unwrap();
        assert_eq!(s, r#"{"op":"commit_pause","container":"abc"}"#);
        assert_eq!(serde_json::from_str::<Operation>(&s).unwrap(), op);
        let op = Operation::BuildStep { name: "x_y".into() };
        let s = serde_json::to_string(&op).unwrap();
        assert_eq!(s, r#"{"op":"build_step","name":"x_y"}"#);
    }

    #[test]
    fn leftovers_are_read_oldest_first_and_garbage_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let d = dir(root.path());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.json"), br#"{"op":"build_step","name":"one"}"#).unwrap();
        std::fs::write(d.join("b.json"), b"not json").unwrap();
        let got = leftovers(root.path());
        assert_eq!(got.len(), 2);
        let ops: Vec<_> = got.into_iter().map(|(_, o)| o).collect();
        assert!(ops.contains(&Some(Operation::BuildStep { name: "one".into() })));
        assert!(ops.contains(&None));
        assert!(leftovers(&root.path().join("none")).is_empty());
    }
}
