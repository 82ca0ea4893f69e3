//! Root tests of device control on cgroup v2: a program compiled from device rules is attached
//! to a fresh cgroup in the host's v2 hierarchy (pure v2, or the `unified` mount of a hybrid
//! host), a shell joins it and tries devices. EPERM must come from the filter only: every
//! probe also runs outside the cgroup as a control. The last test runs a whole container with
//! berth-runtime in a mount namespace whose only cgroup mount is the v2 hierarchy, so the
//! runtime takes its pure-v2 path even on a hybrid host. Needs root and a kernel with
//! CONFIG_CGROUP_BPF (and runc, busybox and `unshare` for the last test); without them the
//! tests fail saying so.

mod common;

use berth_runtime::cgroup_devices;
use berth_runtime::cgroups::{self, Layout, Manager};
use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder,
};
use std::path::{Path, PathBuf};
use std::process::Command;

const EPERM_TEXT: &str = "Operation not permitted";

fn v2_mount() -> PathBuf {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "these tests must run as root (they load BPF programs and create cgroups)"
    );
    match cgroups::detect() {
        Layout::V2(m) => m,
        Layout::V1 {
            unified: Some(u), ..
        } => u,
        Layout::V1 { unified: None, .. } => {
            panic!("no cgroup v2 hierarchy is mounted: these tests need one")
        }
    }
}

/// A cgroup in the v2 hierarchy, removed on drop.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        let dir = v2_mount().join(format!("berth-test-devfilter-{}-{tag}", std::process::id()));
        if dir.exists() {
            let _ = std::fs::remove_dir(&dir);
        }
        std::fs::create_dir(&dir).unwrap();
        TestCgroup(dir)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // the probes have exited; the kernel may still count them for a moment
        let _ = cgroups::remove(std::slice::from_ref(&self.0));
    }
}

/// Runs each command with `sh` (inside `cgroup` when given) and reports "ok" or
/// "failed: <its stderr>" per command.
fn probe(cgroup: Option<&Path>, cmds: &[String]) -> Vec<String> {
    let mut script = String::new();
    if let Some(dir) = cgroup {
        script.push_str(&format!(
            "echo $$ > '{}' || exit 99\n",
            dir.join("cgroup.procs").display()
        ));
    }
    for c in cmds {
        script.push_str(&format!(
            "if out=$({c} 2>&1 >/dev/null); then echo ok; else echo \"failed: $out\"; fi\n"
        ));
    }
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "probe script failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), cmds.len(), "{lines:?}");
    lines
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

fn deny_all() -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()
}

#[test]
fn filter_allows_null_and_denies_zero_and_its_mknod() {
    let cg = TestCgroup::new("null-zero");
    let tmp = tempfile::tempdir().unwrap();
    let rules = [
        deny_all(),
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        rule(false, LinuxDeviceType::C, Some(1), Some(5), "rwm"),
    ];
    cgroup_devices::apply(&cg.0, &rules).unwrap();
    assert_eq!(cgroup_devices::attached(&cg.0).unwrap().len(), 1);
    let t = tmp.path().display();
    let cmds = [
        "head -c 1 /dev/null".to_string(),
        "head -c 1 /dev/zero".to_string(),
        format!("mknod {t}/zero c 1 5"),
        format!("mknod {t}/null c 1 3"),
    ];
    // outside: everything works (the host's own rules allow it)
    assert_eq!(probe(None, &cmds), ["ok", "ok", "ok", "ok"]);
    std::fs::remove_file(tmp.path().join("zero")).unwrap();
    std::fs::remove_file(tmp.path().join("null")).unwrap();
    let inside = probe(Some(&cg.0), &cmds);
    assert_eq!(inside[0], "ok", "/dev/null: {inside:?}");
    assert!(inside[1].contains(EPERM_TEXT), "/dev/zero: {inside:?}");
    assert!(inside[2].contains(EPERM_TEXT), "mknod c 1 5: {inside:?}");
    assert_eq!(inside[3], "ok", "mknod c 1 3: {inside:?}");
    assert!(!tmp.path().join("zero").exists());
}

#[test]
fn default_rules_deny_block_devices_and_update_swaps_the_program() {
    let mount = v2_mount();
    let cg = TestCgroup::new("defaults");
    let name = cg.0.file_name().unwrap().to_owned();
    // the runtime's own path: a v2 manager with a spec's deny-all (the defaults follow it)
    let mgr = Manager::new(&Layout::V2(mount), &Path::new("/").join(&name), &[]);
    let res = LinuxResourcesBuilder::default()
        .devices(vec![deny_all()])
        .build()
        .unwrap();
    // (apply, not create: the directory exists, and create would also enable the root's
    // controllers for its children, a host-wide change a test should not make)
    mgr.apply(&res).unwrap();
    let ids = cgroup_devices::attached(&cg.0).unwrap();
    assert_eq!(ids.len(), 1);

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display();
    // nodes made outside: an sda-like block device and /dev/kmsg's numbers
    for (node, kind, maj, min) in [("sda", "b", "8", "0"), ("kmsg", "c", "1", "11")] {
        let st = Command::new("mknod")
            .arg(tmp.path().join(node))
            .args([kind, maj, min])
            .status()
            .unwrap();
        assert!(st.success(), "mknod {node}");
    }
    let cmds = [
        format!("head -c 1 {t}/sda"),
        format!("head -c 1 {t}/kmsg"),
        "head -c 1 /dev/zero".to_string(),
        "head -c 1 /dev/urandom".to_string(),
        format!("mknod {t}/sdb b 8 16"),
        format!("head -c 1 {t}/sdb"),
    ];
    let outside = probe(None, &cmds[..1]);
    assert!(!outside[0].contains(EPERM_TEXT), "control: {outside:?}");
    let inside = probe(Some(&cg.0), &cmds);
    assert!(inside[0].contains(EPERM_TEXT), "b 8:0: {inside:?}");
    assert!(inside[1].contains(EPERM_TEXT), "c 1:11: {inside:?}");
    assert_eq!(inside[2], "ok", "/dev/zero: {inside:?}");
    assert_eq!(inside[3], "ok", "/dev/urandom: {inside:?}");
    assert_eq!(
        inside[4], "ok",
        "mknod of any block device is allowed: {inside:?}"
    );
    assert!(inside[5].contains(EPERM_TEXT), "b 8:16: {inside:?}");

    // update: allow reading b 8:0; the old program goes, the new one takes over
    let res = LinuxResourcesBuilder::default()
        .devices(vec![
            deny_all(),
            rule(true, LinuxDeviceType::B, Some(8), Some(0), "r"),
        ])
        .build()
        .unwrap();
    mgr.apply(&res).unwrap();
    let new_ids = cgroup_devices::attached(&cg.0).unwrap();
    assert_eq!(new_ids.len(), 1, "{new_ids:?}");
    assert_ne!(new_ids, ids);
    let inside = probe(Some(&cg.0), &cmds[..2]);
    assert!(
        !inside[0].contains(EPERM_TEXT),
        "b 8:0 after update: {inside:?}"
    );
    assert!(
        inside[1].contains(EPERM_TEXT),
        "c 1:11 after update: {inside:?}"
    );

    // bad rules are refused and change nothing
    let bad = LinuxResourcesBuilder::default()
        .devices(vec![rule(true, LinuxDeviceType::C, None, None, "rwx")])
        .build()
        .unwrap();
    let e = mgr.apply(&bad).unwrap_err();
    assert!(e.to_string().contains("invalid access"), "{e}");
    assert_eq!(cgroup_devices::attached(&cg.0).unwrap(), new_ids);
}

#[test]
fn a_program_the_verifier_refuses_fails_with_its_log() {
    v2_mount();
    // `exit` with r0 never written: the verifier must refuse it
    let exit_only = berth_runtime::devicefilter::Insn {
        code: berth_runtime::devicefilter::op::EXIT,
        dst: 0,
        src: 0,
        off: 0,
        imm: 0,
    };
    let e = cgroup_devices::load(&berth_runtime::devicefilter::encode(&[exit_only])).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("verifier log"), "{text}");
    assert!(text.contains("R0"), "{text}");
}

/// Controllers the runtime enables in the v2 root for its cgroup: disabled again on drop, so
/// the test leaves the host as it found it.
struct RestoreSubtreeControl {
    file: PathBuf,
    before: String,
}

impl Drop for RestoreSubtreeControl {
    fn drop(&mut self) {
        let now = std::fs::read_to_string(&self.file).unwrap_or_default();
        let before: Vec<&str> = self.before.split_whitespace().collect();
        for c in now.split_whitespace().filter(|c| !before.contains(c)) {
            let _ = std::fs::write(&self.file, format!("-{c}"));
        }
    }
}

#[test]
fn runtime_on_a_pure_v2_layout_enforces_the_default_rules() {
    let mount = v2_mount();
    let b = common::Bundle::new(
        "head -c 1 /dev/null && echo null-ok; \
         mknod /tmp/sda b 8 0 && echo mknod-ok; head -c 1 /tmp/sda; \
         mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem; \
         head -c 1 /dev/zero > /dev/null && echo zero-ok",
    );
    let mut b = b;
    b.config["root"]["readonly"] = serde_json::Value::Bool(false);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_MKNOD".into());
    }
    let id = format!("berth-test-devfilter-{}-e2e", std::process::id());
    b.write(&format!("/{id}"));
    let _restore = RestoreSubtreeControl {
        file: mount.join("cgroup.subtree_control"),
        before: std::fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap(),
    };
    let _cleanup = TestCgroup(mount.join(&id));
    let state = tempfile::tempdir().unwrap();
    let script = format!(
        "for d in /sys/fs/cgroup/*; do umount -l \"$d\" 2>/dev/null; done; \
         umount -l /sys/fs/cgroup 2>/dev/null; \
         mount -t cgroup2 none /sys/fs/cgroup || exit 97; \
         grep -q ' - cgroup ' /proc/self/mountinfo && exit 98; \
         exec '{}' --root '{}' run --bundle '{}' {id}",
        common::BERTH,
        state.path().display(),
        b.path().display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) is needed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(97), "mount cgroup2: {stderr}");
    assert_ne!(
        out.status.code(),
        Some(98),
        "a v1 hierarchy is still mounted"
    );
    for want in ["null-ok", "mknod-ok", "zero-ok"] {
        assert!(stdout.contains(want), "{want}: {stdout} / {stderr}");
    }
    assert!(
        stderr.contains("/tmp/sda: Operation not permitted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/tmp/mem: Operation not permitted"),
        "{stderr}"
    );
}
