//! "Tags remember": the per-tag log of the images a tag pointed to, and the rollback stack.
//!
//! Every time a tag (never a digest reference) is pointed at a *different* image, the store
//! appends an entry {new image, previous image, time, how} to that tag's log, and pushes the new
//! image on the tag's rollback stack. `rollback` pops the stack: the tag goes back to the image
//! below, and a second rollback goes back one more version (it walks back along the history, it
//! does not toggle). A rollback is itself logged (how: `rollback`).
//!
//! Rules the store builds on this:
//! - Both lists are capped at [`MAX_ENTRIES`] (the oldest go first).
//! - A tag's log lives as long as the tag: removing the tag (`rmi NAME:TAG`, or deleting the
//!   image it points to) forgets its log.
//! - A tag *has history* once its log names more than one image; every image named in such a log
//!   is kept by `image prune` (also `-a`): see [`TagLog::protected_ids`].
//! - Removing a logged image by ID stays possible; its entries stay, and a rollback that would go
//!   to it fails clearly instead (the store checks the target exists).
//!
//! Persisted as `<image root>/taglog.json` (write-temp-then-rename), keyed by full reference.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::content::atomic_write;
use crate::{io_err, Result};

/// The most entries (and rollback steps) kept per tag.
pub const MAX_ENTRIES: usize = 50;

/// How a tag moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagMove {
    Build,
    Pull,
    Load,
    Tag,
    Commit,
    Import,
    Rollback,
}

impl TagMove {
    /// The lowercase name shown in logs (`build`, `pull`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TagMove::Build => "build",
            TagMove::Pull => "pull",
            TagMove::Load => "load",
            TagMove::Tag => "tag",
            TagMove::Commit => "commit",
            TagMove::Import => "import",
            TagMove::Rollback => "rollback",
        }
    }
}

/// One move of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLogEntry {
    /// The image the tag points to after the move.
    pub id: String,
    /// The image it pointed to before (`None`: the tag was created).
    pub previous: Option<String>,
    /// When, RFC 3339.
    pub time: String,
    pub how: TagMove,
}

/// One tag's log and rollback stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct TagHistory {
    /// Oldest first.
    entries: Vec<TagLogEntry>,
    /// The images a rollback walks back through; the last is the tag's current image.
    stack: Vec<String>,
}

impl TagHistory {
    fn has_history(&self) -> bool {
        let ids: BTreeSet<&String> = self.ids().collect();
        ids.len() > 1
    }

    fn ids(&self) -> impl Iterator<Item = &String> {
        self.entries
            .iter()
            .flat_map(|e| std::iter::once(&e.id).chain(e.previous.iter()))
            .chain(self.stack.iter())
    }

    fn push_entry(&mut self, entry: TagLogEntry) {
        self.entries.push(entry);
        trim_front(&mut self.entries);
    }
}

fn trim_front<T>(v: &mut Vec<T>) {
    if v.len() > MAX_ENTRIES {
        let extra = v.len() - MAX_ENTRIES;
        v.drain(..extra);
    }
}

/// Why a tag cannot be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackRefusal {
    /// The tag never pointed to another image (or every earlier one was rolled back past).
    NoEarlierImage,
}

/// The logs of all tags, keyed by full reference (`docker.io/library/busybox:latest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagLog {
    tags: BTreeMap<String, TagHistory>,
}

impl TagLog {
    /// Reads `path`; a missing file is an empty log, an unreadable one too (the log is an aid,
    /// it must never keep the daemon from starting).
    pub fn load(path: &Path) -> TagLog {
        fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the log to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| io_err("encode tag log", e.into()))?;
        atomic_write(path, &bytes)
    }

    /// Records that `tag` moved from `previous` to `id`. Nothing is recorded when the tag
    /// already pointed to `id`. Returns whether an entry was added.
    pub fn record(
        &mut self,
        tag: &str,
        previous: Option<&str>,
        id: &str,
        how: TagMove,
        time: &str,
    ) -> bool {
        if previous == Some(id) {
            return false;
        }
        let h = self.tags.entry(tag.to_string()).or_default();
        if how == TagMove::Rollback {
            if h.stack.last().map(String::as_str) == previous {
                h.stack.pop();
            }
            if h.stack.last().map(String::as_str) != Some(id) {
                h.stack.push(id.to_string());
            }
        } else {
            // A tag older than its log (or a log cut short) starts from the image it had.
            if let Some(p) = previous {
                if h.stack.last().map(String::as_str) != Some(p) {
                    h.stack.push(p.to_string());
                }
            }
            h.stack.push(id.to_string());
            trim_front(&mut h.stack);
        }
        h.push_entry(TagLogEntry {
            id: id.to_string(),
            previous: previous.map(String::from),
            time: time.to_string(),
            how,
        });
        true
    }

    /// The image a rollback of `tag` (now at `current`) goes to.
    pub fn rollback_target(
        &self,
        tag: &str,
        current: &str,
    ) -> std::result::Result<String, RollbackRefusal> {
        let Some(h) = self.tags.get(tag) else {
            return Err(RollbackRefusal::NoEarlierImage);
        };
        let mut stack = h.stack.as_slice();
        if stack.last().map(String::as_str) == Some(current) {
            stack = &stack[..stack.len() - 1];
        }
        stack
            .iter()
            .rev()
            .find(|id| id.as_str() != current)
            .cloned()
            .ok_or(RollbackRefusal::NoEarlierImage)
    }

    /// Forgets `tag`'s log (the tag was removed). Returns whether it had one.
    pub fn forget(&mut self, tag: &str) -> bool {
        self.tags.remove(tag).is_some()
    }

    /// `tag`'s entries, newest first.
    pub fn entries(&self, tag: &str) -> Vec<TagLogEntry> {
        self.tags
            .get(tag)
            .map(|h| h.entries.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The images `image prune` keeps: every image named in the log of a tag with history.
    pub fn protected_ids(&self) -> BTreeSet<String> {
        self.tags
            .values()
            .filter(|h| h.has_history())
            .flat_map(|h| h.ids().cloned())
            .collect()
    }

    /// Drops the logs of tags `exists` says are gone, and makes each stack end at the tag's
    /// current image (a crash between writing the tags and the log can leave them apart).
    pub fn reconcile(&mut self, current: &dyn Fn(&str) -> Option<String>) {
        self.tags.retain(|tag, h| match current(tag) {
            Some(id) => {
                if h.stack.last() != Some(&id) {
                    h.stack.push(id);
                    trim_front(&mut h.stack);
                }
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "docker.io/library/app:latest";

    fn moved(log: &mut TagLog, prev: Option<&str>, id: &str) -> bool {
        log.record(T, prev, id, TagMove::Build, "2026-01-01T00:00:00Z")
    }

    #[test]
    fn same_image_is_not_a_move() {
        let mut log = TagLog::default();
        assert!(moved(&mut log, None, "a"));
        assert!(!moved(&mut log, Some("a"), "a"));
        assert_eq!(log.entries(T).len(), 1);
    }

    #[test]
    fn entries_are_newest_first_with_previous() {
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        log.record(T, Some("a"), "b", TagMove::Tag, "2026-01-02T00:00:00Z");
        let e = log.entries(T);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].id, "b");
        assert_eq!(e[0].previous.as_deref(), Some("a"));
        assert_eq!(e[0].how, TagMove::Tag);
        assert_eq!(e[1].id, "a");
        assert_eq!(e[1].previous, None);
    }

    #[test]
    fn rollback_walks_back_not_toggles() {
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        moved(&mut log, Some("a"), "b");
        moved(&mut log, Some("b"), "c");
        assert_eq!(log.rollback_target(T, "c").unwrap(), "b");
        log.record(T, Some("c"), "b", TagMove::Rollback, "t");
        assert_eq!(log.rollback_target(T, "b").unwrap(), "a");
        log.record(T, Some("b"), "a", TagMove::Rollback, "t");
        assert_eq!(
            log.rollback_target(T, "a"),
            Err(RollbackRefusal::NoEarlierImage)
        );
        let hows: Vec<TagMove> = log.entries(T).iter().map(|e| e.how).collect();
        assert_eq!(
            hows,
            [
                TagMove::Rollback,
                TagMove::Rollback,
                TagMove::Build,
                TagMove::Build,
                TagMove::Build
            ]
        );
    }

    #[test]
    fn a_move_after_a_rollback_rolls_back_to_the_rolled_back_image() {
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        moved(&mut log, Some("a"), "b");
        log.record(T, Some("b"), "a", TagMove::Rollback, "t");
        moved(&mut log, Some("a"), "d");
        assert_eq!(log.rollback_target(T, "d").unwrap(), "a");
    }

    #[test]
    fn new_tag_has_nothing_to_roll_back_to() {
        let mut log = TagLog::default();
        assert_eq!(
            log.rollback_target(T, "a"),
            Err(RollbackRefusal::NoEarlierImage)
        );
        moved(&mut log, None, "a");
        assert_eq!(
            log.rollback_target(T, "a"),
            Err(RollbackRefusal::NoEarlierImage)
        );
    }

    #[test]
    fn tag_older_than_its_log_starts_from_its_image() {
        let mut log = TagLog::default();
        moved(&mut log, Some("old"), "new");
        assert_eq!(log.rollback_target(T, "new").unwrap(), "old");
    }

    #[test]
    fn logs_are_capped() {
        let mut log = TagLog::default();
        let mut prev: Option<String> = None;
        for i in 0..(MAX_ENTRIES + 10) {
            let id = format!("i{i}");
            moved(&mut log, prev.as_deref(), &id);
            prev = Some(id);
        }
        let e = log.entries(T);
        assert_eq!(e.len(), MAX_ENTRIES);
        assert_eq!(e[0].id, format!("i{}", MAX_ENTRIES + 9));
        assert_eq!(log.tags[T].stack.len(), MAX_ENTRIES);
    }

    #[test]
    fn protected_ids_need_history() {
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        log.record("docker.io/library/other:1", None, "x", TagMove::Pull, "t");
        assert!(log.protected_ids().is_empty());
        moved(&mut log, Some("a"), "b");
        let p: Vec<String> = log.protected_ids().into_iter().collect();
        assert_eq!(p, ["a", "b"]);
        log.record(T, Some("b"), "a", TagMove::Rollback, "t");
        // The image rolled back from stays kept: it is still in the log.
        assert!(log.protected_ids().contains("b"));
        assert!(log.forget(T));
        assert!(log.protected_ids().is_empty());
    }

    #[test]
    fn reconcile_drops_gone_tags_and_fixes_the_stack() {
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        log.record("docker.io/library/gone:1", None, "x", TagMove::Pull, "t");
        log.reconcile(&|t| (t == T).then(|| "z".to_string()));
        assert!(log.entries("docker.io/library/gone:1").is_empty());
        assert_eq!(log.rollback_target(T, "z").unwrap(), "a");
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taglog.json");
        let mut log = TagLog::default();
        moved(&mut log, None, "a");
        moved(&mut log, Some("a"), "b");
        log.save(&path).unwrap();
        assert_eq!(TagLog::load(&path), log);
        assert_eq!(TagLog::load(&dir.path().join("missing")), TagLog::default());
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(TagLog::load(&path), TagLog::default());
    }
}
