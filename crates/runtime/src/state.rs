//! `<root>/<id>/state.json`: what the runtime remembers about a container, and the status
//! derived from it (created while the exec FIFO exists, running, paused, stopped).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The state the runtime keeps for a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Container ID.
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), to tell pid reuse apart.
    pub start_time: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs directory.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// Annotations from config.json.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Cgroup directories the init was put in (one per v1 hierarchy, or the v2 one).
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// linux.cgroupsPath as used.
    #[serde(default)]
    pub cgroups_path: PathBuf,
    /// The config as created (used by exec, delete's hooks).
    pub config: oci_spec::runtime::Spec,
}

/// runc's `state` output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// Spec version.
    pub oci_version: String,
    /// Container ID.
    pub id: String,
    /// Init pid (0 when stopped).
    pub pid: i32,
    /// created | running | paused | stopped
    pub status: String,
    /// Bundle dir.
    pub bundle: String,
    /// Rootfs dir.
    pub rootfs: String,
    /// Creation time.
    pub created: String,
    /// Owner (always "" as in runc without rootless).
    pub owner: String,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// The container's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Init waits on the exec FIFO.
    Created,
    /// The process runs.
    Running,
    /// Frozen.
    Paused,
    /// Gone (or a zombie).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// Checks a container ID: runc's rule (letters, digits, `_+-.`, not `.`/`..`).
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    {
        return Err(Error::invalid(format!(
            "invalid container id format: {id:?}"
        )));
    }
    Ok(())
}

/// (state, start time) of a pid from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let st = f.first()?.chars().next()?;
    let start = f.get(19)?.parse().ok()?;
    Some((st, start))
}

/// Writes `data` to `path` atomically (temp file, rename). Not fsynced, as runc does not: the
/// state describes processes, which a host crash ends anyway (and the state root is normally
/// on tmpfs).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    berth_sys::write_atomic(path, data, berth_sys::Durability::Atomic)
        .map_err(|e| Error::io(path, e))
}

impl Saved {
    /// The state dir of `id` under `root`.
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// Loads `<root>/<id>/state.json`.
    pub fn load(root: &Path, id: &str) -> Result<Saved> {
        check_id(id)?;
        let p = Self::dir(root, id).join("state.json");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist),
            Err(e) => return Err(Error::io(p, e)),
        };
        serde_json::from_str(&text).map_err(|e| Error::invalid(format!("{}: {e}", p.display())))
    }

    /// Saves state.json atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let p = Self::dir(root, &self.id).join("state.json");
        let data = serde_json::to_vec(self).map_err(|e| Error::invalid(e.to_string()))?;
        write_atomic(&p, &data)
    }

    /// Whether the init still exists (and is not a zombie).
    pub fn alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((st, start)) => st != 'Z' && st != 'X' && start == self.start_time,
            None => false,
        }
    }

    /// The current status.
    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if Self::dir(root, &self.id).join("exec.fifo").exists() {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&self.cgroup_paths) {
            return Status::Paused;
        }
        Status::Running
    }

    /// runc's state JSON.
    pub fn oci(&self, root: &Path) -> OciState {
        let status = self.status(root);
        OciState {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.to_string(),
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs.display().to_string(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3").is_ok());
        assert!(check_id("../x").is_err());
        assert!(check_id("").is_err());
        assert!(check_id("..").is_err());
    }

    #[test]
    fn stat_of_self() {
        let (st, _) = proc_stat(std::process::id() as i32).unwrap();
        assert!(st == 'R' || st == 'S');
    }
}
