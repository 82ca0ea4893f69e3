//! The container's init and exec'd processes end up in every hierarchy of the container's cgroup
//! (the init joins v1 hierarchies itself and is born in the v2 one), as under runc.

mod common;
use common::*;

/// `/proc/<pid>/cgroup` lines whose path is not `want`.
fn outside(pid: &str, want: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with(&format!(":{want}")))
        .map(str::to_string)
        .collect()
}

#[test]
fn init_and_exec_join_every_hierarchy() {
    let b = Bundle::new("sleep 1000");
    for bin in ["runc", BERTH] {
        let r = root();
        let id = format!("join-{}", if bin == "runc" { "runc" } else { "berth" });
        let cg = format!("/berth-test/{id}");
        b.write(&cg);
        let pid = create_with_pid(bin, r.path(), &b, &id);
        let init_outside = outside(&pid, &cg);
        let s = rt(bin, r.path(), &["start", &id]);
        assert!(s.status.success(), "{bin} start");
        let epid = r.path().join("exec.pid");
        let e = rt(
            bin,
            r.path(),
            &[
                "exec",
                "-d",
                "--pid-file",
                epid.to_str().unwrap(),
                &id,
                "sleep",
                "1000",
            ],
        );
        let exec_outside = if e.status.success() {
            outside(std::fs::read_to_string(&epid).unwrap().trim(), &cg)
        } else {
            vec![format!(
                "exec failed: {}",
                String::from_utf8_lossy(&e.stderr)
            )]
        };
        let d = rt(bin, r.path(), &["delete", "--force", &id]);
        assert!(d.status.success(), "{bin} delete");
        assert!(
            init_outside.is_empty(),
            "{bin}: init outside {cg}: {init_outside:?}"
        );
        assert!(
            exec_outside.is_empty(),
            "{bin}: exec outside {cg}: {exec_outside:?}"
        );
        assert!(!cgroup_exists(&cg), "{bin} left {cg}");
    }
}
