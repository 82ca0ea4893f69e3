//! Root test: the `config.json` berth generates runs under the real runc, and from inside the
//! container the process sees Docker's default security (caps, seccomp, masked paths, PID 1).

use std::path::Path;
use std::process::Command;

use berth_api::{ContainerConfig, HostConfig};
use berth_engine::spec::{build, SpecInput};
use berth_engine::user::ResolvedUser;

fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("busybox-static must be installed (apt-get install busybox-static)");
    for a in ["sh", "cat", "echo", "hostname", "grep", "touch"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
}

fn run(host: HostConfig, script: &str) -> (i32, String) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let id = format!(
        "berth-spec-test-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    );
    let config = ContainerConfig {
        hostname: "spectest".into(),
        ..Default::default()
    };
    let none = |_: &str| None;
    let spec = build(&SpecInput {
        id: &id,
        netns_path: None,
        config: &config,
        host: &host,
        rootfs: &rootfs,
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        user: ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        },
        etc_files: vec![],
        volumes: vec![],
        init_path: None,
        default_ulimits: &[],
        rlimit_hard: &none,
        kernel: berth_engine::seccomp::host_kernel(),
        cap_bounding: berth_engine::defaults::host_bounding_set(),
    })
    .unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        berth_engine::spec::to_json(&spec),
    )
    .unwrap();
    let root = tmp.path().join("runc-root");
    let out = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["run", "--bundle"])
        .arg(tmp.path())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runc must be installed (apt-get install runc)");
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", &id])
        .output();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

#[test]
fn default_security_as_seen_from_inside() {
    let (code, out) = run(
        HostConfig::default(),
        "echo pid=$$; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; echo kcore=$(cat /proc/kcore | wc -c); hostname; touch /proc/sys/x 2>&1 || echo ro-ok",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pid=1"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("kcore=0"), "{out}");
    assert!(out.contains("spectest"), "{out}");
    assert!(out.contains("ro-ok"), "{out}");
}

#[test]
fn relaxed_security_and_limits() {
    let host = HostConfig {
        cap_drop: vec!["ALL".into()],
        security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
        pids_limit: Some(10),
        memory: 32 << 20,
        ..Default::default()
    };
    let (code, out) = run(
        host,
        "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; exit 3",
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}
