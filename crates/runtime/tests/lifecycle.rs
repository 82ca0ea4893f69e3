//! create/start/state/kill/delete/list, exec, console sockets, pause/resume and bad input,
//! under berth-runtime, checked against runc where both apply.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

fn state(bin: &str, root: &Path, id: &str) -> Value {
    let o = rt(bin, root, &["state", id]);
    assert!(
        o.status.success(),
        "state: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn lifecycle_matches_runc() {
    let b = Bundle::new("sleep 1000");
    for bin in ["runc", BERTH] {
        let r = root();
        let id = format!("life-{}", if bin == "runc" { "runc" } else { "berth" });
        b.write(&format!("/berth-test/{id}"));
        let pidf = r.path().join("pid");
        let log = r.path().join("log.json");
        let o = rt(
            bin,
            r.path(),
            &[
                "--log",
                log.to_str().unwrap(),
                "--log-format",
                "json",
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                "--pid-file",
                pidf.to_str().unwrap(),
                &id,
            ],
        );
        assert!(
            o.status.success(),
            "{bin} create: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let st = state(bin, r.path(), &id);
        assert_eq!(st["status"], "created", "{bin}");
        assert_eq!(
            keys(&st),
            [
                "bundle",
                "created",
                "id",
                "ociVersion",
                "owner",
                "pid",
                "rootfs",
                "status"
            ]
        );
        let pid: i64 = std::fs::read_to_string(&pidf)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(st["pid"], pid);
        let l = text(&rt(bin, r.path(), &["list"]));
        assert!(
            l.starts_with("ID") && l.contains(&id) && l.contains("created"),
            "{l}"
        );
        assert!(rt(bin, r.path(), &["start", &id]).status.success());
        assert_eq!(state(bin, r.path(), &id)["status"], "running");
        // a second start fails, delete without force of a running one fails
        assert!(!rt(bin, r.path(), &["start", &id]).status.success());
        assert!(!rt(bin, r.path(), &["delete", &id]).status.success());
        // exec with --process, detached, with a pid file
        let pj = r.path().join("process.json");
        std::fs::write(&pj, json!({"args": ["sh", "-c", "echo exec-ok > /dev/shm/x; sleep 0.2"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
        let epid = r.path().join("exec.pid");
        let o = rt(
            bin,
            r.path(),
            &[
                "exec",
                "--detach",
                "--pid-file",
                epid.to_str().unwrap(),
                "--process",
                pj.to_str().unwrap(),
                &id,
            ],
        );
        assert!(
            o.status.success(),
            "{bin} exec: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(epid.exists());
        std::thread::sleep(Duration::from_millis(400));
        let o = rt(bin, r.path(), &["exec", &id, "cat", "/dev/shm/x"]);
        assert_eq!(
            text(&o),
            "exec-ok\n",
            "{bin}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = rt(bin, r.path(), &["exec", &id, "sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{bin}");
        // pause / resume
        assert!(
            rt(bin, r.path(), &["pause", &id]).status.success(),
            "{bin} pause"
        );
        assert_eq!(state(bin, r.path(), &id)["status"], "paused");
        assert!(
            rt(bin, r.path(), &["resume", &id]).status.success(),
            "{bin} resume"
        );
        assert_eq!(state(bin, r.path(), &id)["status"], "running");
        assert!(rt(bin, r.path(), &["kill", &id, "KILL"]).status.success());
        for _ in 0..200 {
            if state(bin, r.path(), &id)["status"] == "stopped" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(state(bin, r.path(), &id)["status"], "stopped", "{bin}");
        assert!(rt(bin, r.path(), &["delete", &id]).status.success());
        assert!(
            !cgroup_exists(&format!("/berth-test/{id}")),
            "{bin} left its cgroup"
        );
        assert!(!r.path().join(&id).exists());
    }
}

#[test]
fn delete_force_kills_a_running_container() {
    let b = Bundle::new("sleep 1000");
    let r = root();
    b.write("/berth-test/force");
    assert!(rt(
        BERTH,
        r.path(),
        &["create", "--bundle", b.path().to_str().unwrap(), "force"]
    )
    .status
    .success());
    assert!(rt(BERTH, r.path(), &["start", "force"]).status.success());
    let pid = state(BERTH, r.path(), "force")["pid"].as_i64().unwrap();
    let o = rt(BERTH, r.path(), &["delete", "--force", "force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(50));
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(st.is_empty() || st.contains(") Z"), "still running: {st}");
    assert!(list_dir(r.path()).is_empty());
    assert!(!cgroup_exists("/berth-test/force"));
}

fn log_msg(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let last = text.lines().last().unwrap_or("{}");
    let v: Value = serde_json::from_str(last).expect("log line is JSON");
    assert_eq!(v["level"], "error");
    assert!(v["time"].is_string());
    v["msg"].as_str().unwrap().to_string()
}

#[test]
fn missing_executable_fails_create_like_runc() {
    let mut b = Bundle::new("true");
    b.config["process"]["args"] = json!(["nosuchcmd"]);
    for bin in ["runc", BERTH] {
        let r = root();
        let id = format!("nocmd-{}", if bin == "runc" { "r" } else { "b" });
        b.write(&format!("/berth-test/{id}"));
        let log = tempfile::NamedTempFile::new().unwrap();
        let o = rt(
            bin,
            r.path(),
            &[
                "--log",
                log.path().to_str().unwrap(),
                "--log-format",
                "json",
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                &id,
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{bin}");
        let m = log_msg(log.path());
        assert!(
            m.contains(r#"exec: "nosuchcmd": executable file not found in $PATH"#),
            "{bin}: {m}"
        );
        if bin == BERTH {
            assert!(
                list_dir(r.path()).is_empty(),
                "left {:?}",
                list_dir(r.path())
            );
            assert!(!cgroup_exists(&format!("/berth-test/{id}")));
        }
    }
}

/// A change to a bundle's config.
type Edit = Box<dyn Fn(&mut Bundle)>;

#[test]
fn bad_input_names_the_field_and_leaves_nothing() {
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "unknown-ns",
            Box::new(|b: &mut Bundle| {
                b.config["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .insert(0, json!({"type": "bogus"}));
            }),
            "linux.namespaces[0].type",
        ),
        (
            "no-rootfs",
            Box::new(|b: &mut Bundle| b.config["root"]["path"] = json!("nope")),
            "root.path",
        ),
        (
            "rlimit",
            Box::new(|b: &mut Bundle| {
                b.config["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}]);
            }),
            "RLIMIT_NOFILE",
        ),
        (
            "bad-rlimit-name",
            Box::new(|b: &mut Bundle| {
                b.config["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
            }),
            "process.rlimits[0].type",
        ),
        (
            "bad-cwd",
            Box::new(|b: &mut Bundle| b.config["process"]["cwd"] = json!("/does/not/exist")),
            "cwd",
        ),
        (
            "bad-sysctl",
            Box::new(|b: &mut Bundle| b.config["linux"]["sysctl"] = json!({"kernel.nope": "1"})),
            "linux.sysctl",
        ),
    ];
    for (name, edit, want) in cases {
        let mut b = Bundle::new("true");
        edit(&mut b);
        let r = root();
        let id = format!("bad-{name}");
        b.write(&format!("/berth-test/{id}"));
        let log = tempfile::NamedTempFile::new().unwrap();
        let o = rt(
            BERTH,
            r.path(),
            &[
                "--log",
                log.path().to_str().unwrap(),
                "--log-format",
                "json",
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                &id,
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{name}");
        let m = log_msg(log.path());
        assert!(m.contains(want), "{name}: {m}");
        assert!(
            list_dir(r.path()).is_empty(),
            "{name}: left {:?}",
            list_dir(r.path())
        );
        assert!(
            !cgroup_exists(&format!("/berth-test/{id}")),
            "{name}: left the cgroup"
        );
    }
    // malformed JSON
    let b = Bundle::new("true");
    std::fs::write(b.path().join("config.json"), "{\"process\": [").unwrap();
    let r = root();
    let log = tempfile::NamedTempFile::new().unwrap();
    let o = rt(
        BERTH,
        r.path(),
        &[
            "--log",
            log.path().to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "bad-json",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(log_msg(log.path()).contains("malformed config.json"));
    assert!(list_dir(r.path()).is_empty());
}

/// Receives one fd over a console socket, then reads the terminal until `DONE`.
fn console_server(path: &Path) -> std::thread::JoinHandle<(String, usize, String)> {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg =
            recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let n = msg.bytes;
        let name = String::from_utf8_lossy(&buf[..n]).into_owned();
        // SAFETY: the fd was just received with SCM_RIGHTS and is owned by nobody else.
        #[allow(unsafe_code)]
        let master = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match std::io::Read::read(&mut f, &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    out.extend_from_slice(&chunk[..k]);
                    if String::from_utf8_lossy(&out).contains("DONE") {
                        break;
                    }
                }
            }
        }
        (name, fds.len(), String::from_utf8_lossy(&out).into_owned())
    })
}

#[test]
fn console_socket_for_create_and_exec() {
    let mut b = Bundle::new("tty; stty size; echo DONE; sleep 1000");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    let mut seen = Vec::new();
    for bin in ["runc", BERTH] {
        let r = root();
        let id = format!("tty-{}", if bin == "runc" { "r" } else { "b" });
        b.write(&format!("/berth-test/{id}"));
        let sock = r.path().join("console.sock");
        let h = console_server(&sock);
        let o = rt(
            bin,
            r.path(),
            &[
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                "--console-socket",
                sock.to_str().unwrap(),
                &id,
            ],
        );
        assert!(
            o.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(rt(bin, r.path(), &["start", &id]).status.success());
        let (name, nfds, out) = h.join().unwrap();
        assert_eq!((name.as_str(), nfds), ("/dev/ptmx", 1), "{bin}");
        // exec with a terminal too
        let sock2 = r.path().join("console2.sock");
        let h2 = console_server(&sock2);
        let pj = r.path().join("p.json");
        std::fs::write(&pj, json!({"terminal": true, "consoleSize": {"height": 10, "width": 20}, "args": ["sh", "-c", "tty; stty size; echo DONE"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
        let o = rt(
            bin,
            r.path(),
            &[
                "exec",
                "--detach",
                "--tty",
                "--console-socket",
                sock2.to_str().unwrap(),
                "--process",
                pj.to_str().unwrap(),
                &id,
            ],
        );
        assert!(
            o.status.success(),
            "{bin} exec tty: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (_, _, out2) = h2.join().unwrap();
        seen.push((out.replace('\r', ""), out2.replace('\r', "")));
        assert!(rt(bin, r.path(), &["delete", "--force", &id])
            .status
            .success());
    }
    assert_eq!(seen[0], seen[1], "runc vs berth terminal output");
    assert!(seen[1].0.contains("/dev/pts/0\n33 111\n"), "{:?}", seen[1]);
    assert!(seen[1].1.contains("10 20"), "{:?}", seen[1]);
}

#[test]
fn a_failed_mount_names_its_destination() {
    let mut b = Bundle::new("true");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data/x", "type": "nosuchfs", "source": "none"}));
    let r = root();
    b.write("/berth-test/badmount");
    let o = rt(
        BERTH,
        r.path(),
        &["run", "--bundle", b.path().to_str().unwrap(), "badmount"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("rootfs/data/x"), "{err}");
    assert!(!err.contains("/proc/self/fd"), "{err}");
    assert!(
        list_dir(r.path()).is_empty(),
        "left behind: {:?}",
        list_dir(r.path())
    );
    assert!(!cgroup_exists("/berth-test/badmount"));
}
