//! The build cache index: cache key → image id, one JSON file
//! (`<data-root>/builder/cache.json`), rewritten atomically on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The persistent map of build cache entries.
pub struct BuildCache {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, String>>,
}

impl BuildCache {
    /// Opens (or starts empty) the index at `path`; a corrupt index is started afresh.
    pub fn open(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        BuildCache {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    pub fn put(&self, key: &str, image_id: &str) -> std::io::Result<()> {
        let mut m = self.lock();
        m.insert(key.to_string(), image_id.to_string());
        self.persist(&m)
    }

    /// Removes the entries `keep` refuses; returns how many went.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> std::io::Result<usize> {
        let mut m = self.lock();
        let before = m.len();
        m.retain(|_, id| keep(id));
        let removed = before - m.len();
        self.persist(&m)?;
        Ok(removed)
    }

    fn persist(&self, m: &BTreeMap<String, String>) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec(m)?;
        crate::util::write_atomic(&self.path, &bytes, crate::util::Durability::Durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_persist_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b/cache.json");
        let c = BuildCache::open(&path);
        c.put("k1", "sha256:a").unwrap();
        c.put("k2", "sha256:b").unwrap();
        let again = BuildCache::open(&path);
        assert_eq!(again.get("k1").as_deref(), Some("sha256:a"));
        assert_eq!(again.retain(|id| id == "sha256:b").unwrap(), 1);
        assert_eq!(BuildCache::open(&path).get("k1"), None);
    }
}
