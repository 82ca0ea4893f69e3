//! A fake [`BuildBackend`] for the driver tests: images are in-memory file maps, every call is
//! recorded, RUN understands a few commands (`touch PATH`, `write PATH TEXT`, `exit N`,
//! `false`), and image ids are fresh for every commit (as real timestamps make them), so only
//! the cache makes a rebuild produce the same ids.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_api::{ContainerConfig, StrList};
use berth_build::backend::*;
use berth_build::BackendError;

/// One file of a fake image: `None` content means a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    pub content: Option<Vec<u8>>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeImage {
    pub parent: Option<String>,
    pub config: ContainerConfig,
    pub author: String,
    /// (created_by, empty_layer)
    pub history: Vec<(String, bool)>,
    pub files: BTreeMap<String, FakeFile>,
}

#[derive(Default)]
pub struct FakeBackend {
    pub images: Mutex<BTreeMap<String, FakeImage>>,
    pub names: Mutex<BTreeMap<String, String>>,
    pub calls: Mutex<Vec<String>>,
    pub cache: Mutex<BTreeMap<String, String>>,
    pub runs: Mutex<Vec<RunRequest>>,
    pub copies: Mutex<Vec<CopyRequest>>,
    counter: Mutex<u64>,
    mounts: Mutex<Vec<tempfile::TempDir>>,
}

fn dir() -> FakeFile {
    FakeFile {
        content: None,
        mode: None,
        owner: None,
    }
}

impl FakeBackend {
    /// A backend that knows `busybox` (Cmd `sh`, PATH, /bin/sh, /etc) and `alpine:3`.
    pub fn new() -> Self {
        let b = FakeBackend::default();
        let mut files = BTreeMap::new();
        files.insert("/bin".to_string(), dir());
        files.insert("/etc".to_string(), dir());
        files.insert(
            "/etc/os-release".to_string(),
            FakeFile {
                content: Some(b"busybox\n".to_vec()),
                mode: Some(0o644),
                owner: None,
            },
        );
        let config = ContainerConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: StrList(vec!["sh".into()]),
            ..Default::default()
        };
        b.add_base("busybox:latest", config.clone(), files.clone());
        let mut alpine = files;
        alpine.insert(
            "/etc/os-release".to_string(),
            FakeFile {
                content: Some(b"alpine\n".to_vec()),
                mode: Some(0o644),
                owner: Some("0:0".into()),
            },
        );
        b.add_base("alpine:3", config, alpine);
        b
    }

    pub fn add_base(
        &self,
        name: &str,
        config: ContainerConfig,
        files: BTreeMap<String, FakeFile>,
    ) -> String {
        let id = self.fresh_id();
        self.images.lock().unwrap().insert(
            id.clone(),
            FakeImage {
                parent: None,
                config,
                author: String::new(),
                history: vec![("base".into(), false)],
                files,
            },
        );
        self.names
            .lock()
            .unwrap()
            .insert(name.to_string(), id.clone());
        id
    }

    fn fresh_id(&self) -> String {
        let mut c = self.counter.lock().unwrap();
        *c += 1;
        format!("sha256:{:064x}", *c)
    }

    pub fn image(&self, id: &str) -> FakeImage {
        self.images.lock().unwrap()[id].clone()
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
        self.runs.lock().unwrap().clear();
        self.copies.lock().unwrap().clear();
    }

    /// Calls that executed a step (run, copy, commit).
    pub fn executed(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("run ") || c.starts_with("copy ") || c.starts_with("commit "))
            .collect()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn child(
        &self,
        commit: &StepCommit,
        files: BTreeMap<String, FakeFile>,
        changed: bool,
    ) -> String {
        let id = self.fresh_id();
        let mut history = match &commit.parent {
            Some(p) => self.image(p).history,
            None => Vec::new(),
        };
        history.push((commit.created_by.clone(), !changed));
        self.images.lock().unwrap().insert(
            id.clone(),
            FakeImage {
                parent: commit.parent.clone(),
                config: commit.config.clone(),
                author: commit.author.clone(),
                history,
                files,
            },
        );
        id
    }

    fn files_of(&self, parent: &Option<String>) -> BTreeMap<String, FakeFile> {
        parent
            .as_ref()
            .map(|p| self.image(p).files)
            .unwrap_or_default()
    }
}

fn ensure_parents(files: &mut BTreeMap<String, FakeFile>, path: &str) {
    let mut cur = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        cur.push('/');
        cur.push_str(p);
        files.entry(cur.clone()).or_insert_with(dir);
    }
}

impl BuildBackend for FakeBackend {
    fn resolve_image(
        &self,
        reference: &str,
        _platform: Option<&str>,
        pull: bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<ImageInfo, BackendError> {
        let name = if reference.contains(':') || reference.starts_with("sha256:") {
            reference.to_string()
        } else {
            format!("{reference}:latest")
        };
        self.record(format!("resolve {name} pull={pull}"));
        if pull {
            log(&format!("pulling {name}"));
        }
        let id = if self.images.lock().unwrap().contains_key(reference) {
            reference.to_string()
        } else {
            self.names
                .lock()
                .unwrap()
                .get(&name)
                .cloned()
                .ok_or_else(|| BackendError::NotFound(format!("pull access denied for {reference}, repository does not exist or may require 'docker login'")))?
        };
        Ok(ImageInfo {
            id: id.clone(),
            config: self.image(&id).config,
        })
    }

    fn run(
        &self,
        req: &RunRequest,
        observer: &mut dyn RunObserver,
    ) -> Result<String, BackendError> {
        self.record(format!("run {}", req.argv.join(" ")));
        self.runs.lock().unwrap().push(req.clone());
        let cid = format!(
            "{:064x}",
            0xc0ffee_u64 + self.runs.lock().unwrap().len() as u64
        );
        observer.started(&cid);
        let script = req.argv.last().cloned().unwrap_or_default();
        let mut files = self.files_of(&req.commit.parent);
        let mut changed = false;
        for cmd in script.split("&&").map(str::trim) {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            match words.as_slice() {
                ["false"] => return Err(BackendError::ExitCode(1)),
                ["exit", n] => {
                    let code: i64 = n.parse().unwrap_or(1);
                    if code != 0 {
                        return Err(BackendError::ExitCode(code));
                    }
                }
                ["touch", path] | ["mkdir", "-p", path] | ["mkdir", path] => {
                    ensure_parents(&mut files, path);
                    let f = if words[0] == "touch" {
                        FakeFile {
                            content: Some(Vec::new()),
                            mode: None,
                            owner: None,
                        }
                    } else {
                        dir()
                    };
                    files.insert(path.to_string(), f);
                    changed = true;
                }
                ["write", path, rest @ ..] => {
                    ensure_parents(&mut files, path);
                    files.insert(
                        path.to_string(),
                        FakeFile {
                            content: Some(rest.join(" ").into_bytes()),
                            mode: None,
                            owner: None,
                        },
                    );
                    changed = true;
                }
                _ => {}
            }
        }
        observer.output(format!("ran: {script}\n").as_bytes());
        Ok(self.child(&req.commit, files, changed))
    }

    fn copy(&self, req: &CopyRequest) -> Result<String, BackendError> {
        let dests: Vec<&str> = req.entries.iter().map(|e| e.dest.as_str()).collect();
        self.record(format!("copy {}", dests.join(" ")));
        self.copies.lock().unwrap().push(req.clone());
        let mut files = self.files_of(&req.commit.parent);
        for e in &req.entries {
            ensure_parents(&mut files, &e.dest);
            let content = match &e.source {
                CopySource::File(p) => {
                    Some(std::fs::read(p).map_err(|e| BackendError::Other(e.to_string()))?)
                }
                CopySource::Bytes { content, .. } => Some(content.clone()),
                CopySource::Symlink(p) => {
                    Some(format!("-> {}", std::fs::read_link(p).unwrap().display()).into_bytes())
                }
                CopySource::Archive(_) => Some(b"<extracted archive>".to_vec()),
                CopySource::Dir(_) => None,
            };
            files.insert(
                e.dest.clone(),
                FakeFile {
                    content,
                    mode: req.chmod,
                    owner: req.chown.clone(),
                },
            );
        }
        Ok(self.child(&req.commit, files, !req.entries.is_empty()))
    }

    fn commit(&self, req: &CommitRequest) -> Result<String, BackendError> {
        self.record(format!("commit {}", req.commit.created_by));
        let mut files = self.files_of(&req.commit.parent);
        let mut changed = false;
        if let Some(d) = &req.ensure_dir {
            if !files.contains_key(d) && d != "/" {
                ensure_parents(&mut files, d);
                files.insert(d.clone(), dir());
                changed = true;
            }
        }
        Ok(self.child(&req.commit, files, changed))
    }

    fn path_is_dir(&self, image_id: &str, path: &str) -> Result<bool, BackendError> {
        Ok(path == "/"
            || self
                .image(image_id)
                .files
                .get(path)
                .is_some_and(|f| f.content.is_none()))
    }

    fn mount_image(&self, image_id: &str) -> Result<PathBuf, BackendError> {
        self.record(format!("mount {image_id}"));
        let tmp = tempfile::tempdir().unwrap();
        for (path, f) in self.image(image_id).files {
            let host = tmp.path().join(path.trim_start_matches('/'));
            match &f.content {
                None => std::fs::create_dir_all(&host).unwrap(),
                Some(c) => {
                    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
                    std::fs::write(&host, c).unwrap();
                }
            }
        }
        let path = tmp.path().to_path_buf();
        self.mounts.lock().unwrap().push(tmp);
        Ok(path)
    }

    fn release_image(&self, image_id: &str, path: &Path) {
        self.record(format!("release {image_id}"));
        self.mounts.lock().unwrap().retain(|t| t.path() != path);
    }

    fn fetch_url(&self, url: &str, dest: &Path) -> Result<(), BackendError> {
        self.record(format!("fetch {url}"));
        std::fs::write(dest, format!("downloaded from {url}\n"))
            .map_err(|e| BackendError::Other(e.to_string()))
    }

    fn cache_get(&self, key: &str) -> Result<Option<String>, BackendError> {
        Ok(self.cache.lock().unwrap().get(key).cloned())
    }

    fn cache_put(&self, key: &str, image_id: &str) -> Result<(), BackendError> {
        self.cache
            .lock()
            .unwrap()
            .insert(key.to_string(), image_id.to_string());
        Ok(())
    }

    fn tag(&self, image_id: &str, reference: &str) -> Result<(), BackendError> {
        self.record(format!("tag {reference}"));
        self.names
            .lock()
            .unwrap()
            .insert(reference.to_string(), image_id.to_string());
        Ok(())
    }
}
