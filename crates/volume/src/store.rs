//! The volume records on disk and the mount reference counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::Volume;
use serde::{Deserialize, Serialize};

use crate::{io_err, Mounter, Result, VolumeError};

/// Docker marks volumes made for `-v /path` and image `VOLUME`s with this label.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The options Docker's local driver takes.
const LOCAL_OPTIONS: [&str; 4] = ["type", "device", "o", "size"];

/// What `<name>/volume.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl VolumeRecord {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Whether the volume is a mount of `-o device` rather than a plain directory.
    fn mounted_device(&self) -> Option<(&str, &str, &str)> {
        let device = self.options.get("device")?;
        let fstype = self
            .options
            .get("type")
            .map(String::as_str)
            .unwrap_or("none");
        let o = self.options.get("o").map(String::as_str).unwrap_or("");
        Some((device, fstype, o))
    }
}

struct Inner {
    records: BTreeMap<String, VolumeRecord>,
    /// Users (container ids) holding a device volume mounted.
    mount_users: BTreeMap<String, BTreeSet<String>>,
}

/// All volumes under one root (`<data-root>/volumes`).
pub struct VolumeStore {
    root: PathBuf,
    mounter: Arc<dyn Mounter>,
    inner: Mutex<Inner>,
}

/// Whether `<dir>/_data` is on another file system than `dir` (a device still mounted there
/// must never be emptied by a clean-up).
fn data_is_a_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(dir),
        std::fs::symlink_metadata(dir.join("_data")),
    ) {
        (Ok(d), Ok(data)) => d.dev() != data.dev(),
        _ => false,
    }
}

impl VolumeStore {
    /// Opens (creating) the store and reads every record.
    pub fn open(root: &Path, mounter: Arc<dyn Mounter>) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io_err(format!("creating {}", root.display())))?;
        let mut records = BTreeMap::new();
        let dir = std::fs::read_dir(root).map_err(io_err(format!("reading {}", root.display())))?;
        for entry in dir.flatten() {
            let path = entry.path().join("volume.json");
            let Ok(text) = std::fs::read(&path) else {
                // No record at all: a create or a remove that a crash cut short (the record is
                // written last and removed first), so nothing of it was ever, or is still,
                // a volume.
                if entry.file_type().is_ok_and(|t| t.is_dir())
                    && std::fs::symlink_metadata(&path).is_err()
                    && !data_is_a_mount_point(&entry.path())
                {
                    tracing::info!(
                        "removing {}, left by an interrupted volume create or remove",
                        entry.path().display()
                    );
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                continue;
            };
            match serde_json::from_slice::<VolumeRecord>(&text) {
                Ok(r) => {
                    records.insert(r.name.clone(), r);
                }
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
        Ok(VolumeStore {
            root: root.to_path_buf(),
            mounter,
            inner: Mutex::new(Inner {
                records,
                mount_users: BTreeMap::new(),
            }),
        })
    }

    /// `<root>/<name>/_data`: where the volume's files are (or its device is mounted).
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (as Docker does); `false`
    /// in the answer means it already existed. `name` `None` makes an anonymous volume.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<(VolumeRecord, bool)> {
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(VolumeError::InvalidArgument(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let (name, labels) = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(n)?;
                (n.to_string(), labels)
            }
            None => {
                let mut l = labels;
                l.insert(ANONYMOUS_LABEL.into(), String::new());
                (random_name(), l)
            }
        };
        validate_options(&options)?;
        let mut inner = self.inner.lock().unwrap();
        if let Some(existing) = inner.records.get(&name) {
            return Ok((existing.clone(), false));
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver: driver.into(),
            created_at: berth_sys::time::now_rfc3339_secs(),
            labels,
            options,
        };
        let dir = self.root.join(&name);
        let data = dir.join("_data");
        std::fs::create_dir_all(&data).map_err(io_err(format!("creating {}", data.display())))?;
        if let Err(e) = write_record(&dir, &rec) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        inner.records.insert(name, rec.clone());
        Ok((rec, true))
    }

    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.inner
            .lock()
            .unwrap()
            .records
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.into()))
    }

    pub fn list(&self) -> Vec<VolumeRecord> {
        self.inner
            .lock()
            .unwrap()
            .records
            .values()
            .cloned()
            .collect()
    }

    /// The API view of a record.
    pub fn view(&self, rec: &VolumeRecord) -> Volume {
        Volume {
            name: rec.name.clone(),
            driver: rec.driver.clone(),
            mountpoint: self.data_path(&rec.name).to_string_lossy().into_owned(),
            created_at: rec.created_at.clone(),
            labels: rec.labels.clone(),
            scope: "local".into(),
            options: rec.options.clone(),
            usage_data: None,
        }
    }

    /// Deletes the volume and its data. Whether a container still uses it is for the caller
    /// to check first; a volume mounted right now is refused here.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        if !inner.records.contains_key(name) {
            return Err(VolumeError::NotFound(name.into()));
        }
        if inner.mount_users.get(name).is_some_and(|u| !u.is_empty()) {
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is in use"
            )));
        }
        let dir = self.root.join(name);
        // The record goes first: a crash part-way leaves a directory the store ignores,
        // never a record without its data.
        std::fs::remove_file(dir.join("volume.json"))
            .map_err(io_err(format!("removing volume {name}")))?;
        inner.records.remove(name);
        drop(inner);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("removing {}: {e}", dir.display());
        }
        Ok(())
    }

    /// Makes the volume ready for `user` and answers the host path to bind into the
    /// container. A device volume is mounted by its first user.
    pub fn mount(&self, name: &str, user: &str) -> Result<PathBuf> {
        let mut inner = self.inner.lock().unwrap();
        let rec = inner
            .records
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.into()))?;
        let data = self.data_path(name);
        if let Some((device, fstype, o)) = rec.mounted_device() {
            let users = inner.mount_users.entry(name.into()).or_default();
            if users.is_empty() && !self.mounter.is_mounted(&data) {
                std::fs::create_dir_all(&data)
                    .map_err(io_err(format!("creating {}", data.display())))?;
                self.mounter
                    .mount(device, &data, fstype, o)
                    .map_err(io_err(format!(
                        "error while mounting volume '{}'",
                        data.display()
                    )))?;
            }
            users.insert(user.into());
        }
        Ok(data)
    }

    /// Records that `user` holds the volume mounted already (after a daemon restart).
    pub fn adopt(&self, name: &str, user: &str) {
        let mut inner = self.inner.lock().unwrap();
        let device = inner
            .records
            .get(name)
            .is_some_and(|r| r.mounted_device().is_some());
        if device {
            inner
                .mount_users
                .entry(name.into())
                .or_default()
                .insert(user.into());
        }
    }

    /// `user` lets go of the volume; the last user of a device volume unmounts it.
    pub fn unmount(&self, name: &str, user: &str) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        let Some(users) = inner.mount_users.get_mut(name) else {
            return Ok(());
        };
        if users.remove(user) && users.is_empty() {
            inner.mount_users.remove(name);
            self.mounter
                .unmount(&self.data_path(name))
                .map_err(io_err(format!("unmounting volume {name}")))?;
        }
        Ok(())
    }

    /// Bytes used by the volume's files (hard links counted once).
    pub fn size(&self, name: &str) -> u64 {
        disk_usage(&self.data_path(name))
    }
}

/// Docker's rule for local volume names.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = berth_sys::names::has_valid_chars(name);
    if name.len() < 2 && ok {
        return Err(VolumeError::InvalidArgument(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        ));
    }
    if !ok {
        return Err(VolumeError::InvalidArgument(format!(
            "\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

fn validate_options(options: &BTreeMap<String, String>) -> Result<()> {
    for k in options.keys() {
        if !LOCAL_OPTIONS.contains(&k.as_str()) {
            return Err(VolumeError::InvalidArgument(format!(
                "invalid option key: \"{k}\""
            )));
        }
    }
    let has = |k: &str| options.get(k).is_some_and(|v| !v.is_empty());
    if has("type") && !has("device") {
        return Err(VolumeError::InvalidArgument(
            "missing device in volume options".into(),
        ));
    }
    if has("device") && !has("type") {
        return Err(VolumeError::InvalidArgument(
            "missing type in volume options".into(),
        ));
    }
    if options
        .get("type")
        .is_some_and(|t| t == "none" || t == "bind")
        || options
            .get("o")
            .is_some_and(|o| o.split(',').any(|x| x == "bind"))
    {
        let dev = &options["device"];
        if !Path::new(dev).is_absolute() || !Path::new(dev).exists() {
            return Err(VolumeError::InvalidArgument(format!(
                "failed to mount local volume: mount {dev}: no such file or directory"
            )));
        }
    }
    Ok(())
}

/// Volume records are durable (the design's list of fsynced records): temp file, fsync,
/// rename, fsync of the directory.
fn write_record(dir: &Path, rec: &VolumeRecord) -> Result<()> {
    let body = serde_json::to_vec_pretty(rec).expect("volume records serialise");
    let path = dir.join("volume.json");
    berth_sys::write_atomic(&path, &body, berth_sys::Durability::Durable)
        .map_err(io_err(format!("writing {}", path.display())))
}

fn random_name() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Sum of the sizes of the files under `path`, each inode once; symlinks not followed.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            total += md.len();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeMounter {
        calls: Mutex<Vec<String>>,
    }

    impl Mounter for FakeMounter {
        fn mount(&self, d: &str, t: &Path, f: &str, o: &str) -> std::io::Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("mount {d} {} {f} {o}", t.display()));
            Ok(())
        }
        fn is_mounted(&self, _t: &Path) -> bool {
            false
        }
        fn unmount(&self, t: &Path) -> std::io::Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("umount {}", t.display()));
            Ok(())
        }
    }

    fn store() -> (tempfile::TempDir, Arc<FakeMounter>, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(FakeMounter::default());
        let s = VolumeStore::open(dir.path(), m.clone()).unwrap();
        (dir, m, s)
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn create_get_list_remove_and_reopen() {
        let (dir, m, s) = store();
        let (v, made) = s
            .create(Some("data"), "", opts(&[("a", "b")]), BTreeMap::new())
            .unwrap();
        assert!(made);
        assert_eq!(v.driver, "local");
        assert!(s.data_path("data").is_dir());
        let (_, again) = s
            .create(Some("data"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(
            !again,
            "creating an existing name answers the existing volume"
        );
        std::fs::write(s.data_path("data").join("f"), b"12345").unwrap();
        assert_eq!(s.size("data"), 5);
        let reopened = VolumeStore::open(dir.path(), m).unwrap();
        assert_eq!(reopened.get("data").unwrap().labels["a"], "b");
        reopened.remove("data").unwrap();
        assert!(!dir.path().join("data").exists());
        assert!(matches!(
            reopened.get("data"),
            Err(VolumeError::NotFound(_))
        ));
        assert_eq!(
            reopened.remove("data").unwrap_err().to_string(),
            "get data: no such volume"
        );
    }

    #[test]
    fn a_directory_without_a_record_is_swept_at_open_and_a_kept_one_is_not() {
        let (dir, m, s) = store();
        s.create(Some("kept"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        // What a crash leaves: a create before its record, a remove after its record went.
        std::fs::create_dir_all(dir.path().join("half/_data/sub")).unwrap();
        std::fs::write(dir.path().join("half/_data/sub/f"), b"x").unwrap();
        // An unreadable record is not "no record": that directory is kept.
        std::fs::create_dir_all(dir.path().join("garbled/_data")).unwrap();
        std::fs::write(dir.path().join("garbled/volume.json"), b"{").unwrap();
        let reopened = VolumeStore::open(dir.path(), m).unwrap();
        assert!(!dir.path().join("half").exists());
        assert!(dir.path().join("garbled/_data").is_dir());
        assert!(reopened.get("kept").is_ok());
        assert!(s.data_path("kept").is_dir());
    }

    #[test]
    fn anonymous_volumes_get_a_random_name_and_the_label() {
        let (_d, _m, s) = store();
        let (v, _) = s
            .create(None, "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(v.name.len(), 64);
        assert!(v.anonymous());
    }

    #[test]
    fn names_options_and_drivers_are_checked_with_dockers_words() {
        let (d, _m, s) = store();
        let e = s
            .create(Some("a"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let e = s
            .create(Some("../x"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("includes invalid characters"), "{e}");
        let e = s
            .create(Some("ok"), "nfsplugin", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert!(
            e.to_string().contains("plugin \"nfsplugin\" not found"),
            "{e}"
        );
        let e = s
            .create(Some("ok"), "", BTreeMap::new(), opts(&[("foo", "1")]))
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid option key: \"foo\"");
        let e = s
            .create(Some("ok"), "", BTreeMap::new(), opts(&[("type", "tmpfs")]))
            .unwrap_err();
        assert_eq!(e.to_string(), "missing device in volume options");
        let e = s
            .create(
                Some("ok"),
                "",
                BTreeMap::new(),
                opts(&[
                    ("type", "none"),
                    ("device", "/nonexistent/x"),
                    ("o", "bind"),
                ]),
            )
            .unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
        assert!(s.list().is_empty(), "nothing was made");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn device_volumes_mount_for_the_first_user_and_unmount_after_the_last() {
        let (_d, m, s) = store();
        s.create(
            Some("tmp"),
            "local",
            BTreeMap::new(),
            opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
        )
        .unwrap();
        s.create(Some("plain"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        s.mount("tmp", "c1").unwrap();
        s.mount("tmp", "c2").unwrap();
        s.mount("plain", "c1").unwrap();
        assert_eq!(m.calls.lock().unwrap().len(), 1);
        assert!(matches!(s.remove("tmp"), Err(VolumeError::Conflict(_))));
        s.unmount("tmp", "c1").unwrap();
        assert_eq!(m.calls.lock().unwrap().len(), 1);
        s.unmount("tmp", "c2").unwrap();
        let calls = m.calls.lock().unwrap().clone();
        assert!(calls[0].starts_with("mount tmpfs ") && calls[0].ends_with(" tmpfs size=1m"));
        assert!(calls[1].starts_with("umount "));
        s.remove("tmp").unwrap();
    }
}
