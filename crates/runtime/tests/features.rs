//! Hooks, user namespaces, `--no-pivot`, `update`, leaked fds: runc vs berth-runtime.

mod common;
use common::*;
use serde_json::{json, Value};

#[test]
fn hooks_get_the_state_on_stdin() {
    let mut b = Bundle::new("ls /hookdir/ 2>/dev/null | sort");
    let mut outs = Vec::new();
    for bin in ["runc", BERTH] {
        let out = tempfile::tempdir().unwrap();
        let o = out.path().display().to_string();
        let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {o}/{name}.json")]});
        let inside = json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/start.json"]});
        b.config["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [inside],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        });
        b.config["root"]["readonly"] = json!(false);
        let r = root();
        let id = format!("hooks-{}", if bin == "runc" { "r" } else { "b" });
        b.write(&format!("/berth-test/{id}"));
        let res = rt(
            bin,
            r.path(),
            &["run", "--bundle", b.path().to_str().unwrap(), &id],
        );
        assert!(
            res.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let mut seen = Vec::new();
        for name in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            let t = std::fs::read_to_string(out.path().join(format!("{name}.json")))
                .unwrap_or_else(|_| panic!("{bin}: {name} hook did not run"));
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["id"], id.as_str(), "{bin} {name}");
            seen.push((
                name,
                v["status"].clone(),
                v["pid"].as_i64().unwrap_or(0) > 0,
            ));
        }
        let st: Value = serde_json::from_str(
            &std::fs::read_to_string(b.path().join("rootfs/tmp/start.json")).unwrap(),
        )
        .unwrap();
        seen.push((
            "startContainer",
            st["status"].clone(),
            st["pid"].as_i64().unwrap_or(0) > 0,
        ));
        let _ = std::fs::remove_file(b.path().join("rootfs/tmp/start.json"));
        outs.push(seen);
    }
    assert_eq!(outs[0], outs[1], "runc vs berth hook states");
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new("true");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let r = root();
    b.write("/berth-test/badhook");
    let o = rt(
        BERTH,
        r.path(),
        &["create", "--bundle", b.path().to_str().unwrap(), "badhook"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("createRuntime hook #0"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(list_dir(r.path()).is_empty());
    assert!(!cgroup_exists("/berth-test/badhook"));
}

#[test]
fn user_namespace() {
    let mut b = Bundle::new(
        "id; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status; \
         ls /dev | wc -l; cat /dev/null && echo devnull-ok; hostname",
    );
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let o = run_both(&b, "userns");
    assert_same(&o);
    assert!(
        text(&o.1).contains("0     100000      65536"),
        "{}",
        text(&o.1)
    );
}

#[test]
fn no_pivot_and_fds() {
    let b = Bundle::new(
        "ls /proc/self/fd | sort; readlink /proc/self/cwd; cat /proc/self/mountinfo | wc -l",
    );
    let r = root();
    b.write("/berth-test/runc-nopivot");
    let o1 = rt(
        "runc",
        r.path(),
        &[
            "run",
            "--no-pivot",
            "--bundle",
            b.path().to_str().unwrap(),
            "runc-nopivot",
        ],
    );
    b.write("/berth-test/berth-nopivot");
    let o2 = rt(
        BERTH,
        r.path(),
        &[
            "run",
            "--no-pivot",
            "--bundle",
            b.path().to_str().unwrap(),
            "berth-nopivot",
        ],
    );
    assert_same(&(o1, o2));
}

#[test]
fn update_changes_the_cgroup() {
    let b = Bundle::new("sleep 1000");
    for bin in ["runc", BERTH] {
        let r = root();
        let id = format!("upd-{}", if bin == "runc" { "r" } else { "b" });
        b.write(&format!("/berth-test/{id}"));
        assert!(rt(
            bin,
            r.path(),
            &["create", "--bundle", b.path().to_str().unwrap(), &id]
        )
        .status
        .success());
        let o = rt(
            bin,
            r.path(),
            &["update", "--memory", "100000000", "--pids-limit", "50", &id],
        );
        assert!(
            o.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let cg = format!("/berth-test/{id}");
        let m = std::fs::read_to_string(cgroup_limit_file(
            &cg,
            "memory/memory.limit_in_bytes",
            "memory.max",
        ))
        .unwrap();
        let p =
            std::fs::read_to_string(cgroup_limit_file(&cg, "pids/pids.max", "pids.max")).unwrap();
        assert_eq!((m.trim(), p.trim()), ("99999744", "50"), "{bin}");
        assert!(rt(bin, r.path(), &["delete", "--force", &id])
            .status
            .success());
    }
}

#[test]
fn domainname_is_set() {
    // runc 1.1 ignores `domainname` (added to the spec later); berth sets it
    let mut b = Bundle::new("cat /proc/sys/kernel/domainname");
    b.config["domainname"] = json!("example.org");
    let r = root();
    b.write("/berth-test/domain");
    let o = rt(
        BERTH,
        r.path(),
        &["run", "--bundle", b.path().to_str().unwrap(), "domain"],
    );
    assert_eq!(
        text(&o),
        "example.org\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
