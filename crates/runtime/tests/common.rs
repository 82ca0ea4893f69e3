//! Shared helpers: a busybox bundle in a tempdir and the two runtimes (runc, the reference,
//! and berth-runtime) run on it. The tests need root, runc and busybox: without them they
//! fail with a message saying what is missing.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// Fails the test clearly when the environment can't run it.
pub fn require() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "these tests must run as root (they create namespaces, mounts and cgroups)"
    );
    assert!(
        Command::new("runc").arg("--version").output().is_ok(),
        "runc (the reference runtime) is not installed: apt-get install runc"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
}

/// A bundle: tempdir with rootfs/ (busybox) and config.json.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// A bundle from `runc spec`, not a terminal, running `sh -c script`.
    pub fn new(script: &str) -> Bundle {
        require();
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for name in String::from_utf8_lossy(&list.stdout).lines() {
            if name != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(name));
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let st = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "runc spec failed");
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes config.json with a per-runtime cgroup path.
    pub fn write(&self, cgroup: &str) {
        let mut c = self.config.clone();
        c["linux"]["cgroupsPath"] = Value::String(cgroup.to_string());
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }
}

/// A state root in a tempdir.
pub fn root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Runs `<rt> --root R ARGS`. stdout/stderr go to files, not pipes: the container inherits
/// them (pass-through stdio) and may outlive the command.
pub fn rt(bin: &str, root: &Path, args: &[&str]) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `run` of the bundle under both runtimes: (runc's output, berth's output).
pub fn run_both(b: &Bundle, id: &str) -> (Output, Output) {
    let r = root();
    b.write(&format!("/berth-test/runc-{id}"));
    let o1 = rt(
        "runc",
        r.path(),
        &[
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            &format!("runc-{id}"),
        ],
    );
    b.write(&format!("/berth-test/berth-{id}"));
    let o2 = rt(
        BERTH,
        r.path(),
        &[
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            &format!("berth-{id}"),
        ],
    );
    assert!(
        !cgroup_exists(&format!("/berth-test/berth-{id}")),
        "berth left its cgroup behind"
    );
    assert!(
        list_dir(r.path()).is_empty(),
        "state left behind: {:?}",
        list_dir(r.path())
    );
    (o1, o2)
}

/// Asserts both runtimes printed the same and exited the same, showing both on failure.
pub fn assert_same(o: &(Output, Output)) {
    let (a, b) = o;
    assert_eq!(
        text(a),
        text(b),
        "runc vs berth stdout differ\nrunc stderr: {}\nberth stderr: {}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(a.status.code(), b.status.code(), "exit codes differ");
}

/// Entries of a directory; in a runtime root, berth-runtime's seccomp program cache
/// (`@seccomp-cache`, kept across containers on purpose) is left out.
pub fn list_dir(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "@seccomp-cache")
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a cgroup dir exists in any v1 hierarchy or v2.
pub fn cgroup_exists(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    list_dir(Path::new("/sys/fs/cgroup"))
        .iter()
        .any(|h| Path::new("/sys/fs/cgroup").join(h).join(rel).exists())
        || Path::new("/sys/fs/cgroup")
            .join(rel)
            .join("cgroup.procs")
            .exists()
}

/// Whether the host's cgroups are pure v2 (one cgroup2 mount at /sys/fs/cgroup) rather than
/// v1 or hybrid: the tests read a container's limits from different files then.
pub fn host_is_cgroup_v2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&"/sys/fs/cgroup")
                && f.iter()
                    .skip_while(|x| **x != "-")
                    .nth(1)
                    .is_some_and(|t| *t == "cgroup2")
        })
}

/// The file holding a cgroup's limit: `v1` (`memory/memory.limit_in_bytes`) on v1 and hybrid
/// hosts, `v2` (`memory.max`) on pure v2 hosts; `cgroup` is the cgroup's path.
pub fn cgroup_limit_file(cgroup: &str, v1: &str, v2: &str) -> PathBuf {
    let rel = cgroup.trim_start_matches('/');
    if host_is_cgroup_v2() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2)
    } else {
        let (controller, file) = v1.split_once('/').expect("v1 file is CONTROLLER/FILE");
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel)
            .join(file)
    }
}

pub fn tmp_path(d: &tempfile::TempDir, name: &str) -> PathBuf {
    d.path().join(name)
}

/// `<bin> --root R create --bundle B --pid-file R/pid ID`, asserted to succeed; returns the
/// init's pid as text.
pub fn create_with_pid(bin: &str, root: &Path, b: &Bundle, id: &str) -> String {
    let pidf = root.join("pid");
    let o = rt(
        bin,
        root,
        &[
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "--pid-file",
            pidf.to_str().unwrap(),
            id,
        ],
    );
    assert!(
        o.status.success(),
        "{bin} create: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(&pidf).unwrap().trim().to_string()
}
