//! The same busybox bundle under runc and under berth-runtime: what the process sees from
//! inside must be the same (root-only; fails, never skips, without root/runc/busybox).

mod common;
use common::*;
use serde_json::json;

const PROBE: &str = r#"
echo "hostname=$(hostname)"
id
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
echo "nofile=$(ulimit -n)"
echo "cwd=$(pwd) FOO=$FOO umask=$(umask)"
ls /dev
grep -E ' /(proc|sys|dev|dev/pts|dev/shm|dev/mqueue|sys/fs/cgroup) ' /proc/self/mountinfo | cut -d' ' -f5,6 | sort
echo "timer_list=$(wc -c < /proc/timer_list)"
touch /proc/sys/kernel/x 2>/dev/null && echo "procsys=rw" || echo "procsys=ro"
touch /newfile 2>/dev/null && echo "root=rw" || echo "root=ro"
for n in ipc mnt net pid uts; do [ "$(readlink /proc/self/ns/$n)" = "$(cat /hostns/$n)" ] && echo "$n=host" || echo "$n=new"; done
echo "pid=$$ oom=$(cat /proc/self/oom_score_adj)"
exit 3
"#;

fn host_ns(b: &Bundle) {
    let d = b.path().join("rootfs/hostns");
    std::fs::create_dir_all(&d).unwrap();
    for n in ["ipc", "mnt", "net", "pid", "uts"] {
        let l = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        std::fs::write(d.join(n), l.to_string_lossy().as_bytes()).unwrap();
    }
}

#[test]
fn default_spec_same_view_as_runc() {
    let b = Bundle::new(PROBE);
    host_ns(&b);
    let o = run_both(&b, "default");
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.contains("hostname=runc"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("timer_list=0"), "{out}");
    assert!(
        out.contains("procsys=ro") && out.contains("root=ro"),
        "{out}"
    );
    assert!(
        out.contains("pid=1 ") && out.contains("net=new") && out.contains("mnt=new"),
        "{out}"
    );
    assert_eq!(o.1.status.code(), Some(3));
}

#[test]
fn user_env_cwd_rlimits_caps() {
    let mut b = Bundle::new(PROBE);
    host_ns(&b);
    let p = &mut b.config["process"];
    p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
    p["cwd"] = json!("/tmp");
    p["env"] = json!(["PATH=/bin", "FOO=bar"]);
    p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 600}]);
    p["noNewPrivileges"] = json!(false);
    p["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    b.config["hostname"] = json!("probe");
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    let o = run_both(&b, "user");
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.contains("uid=1000 gid=1000 groups=10,20"), "{out}");
    assert!(
        out.contains("nofile=512") && out.contains("cwd=/tmp FOO=bar umask=0077"),
        "{out}"
    );
    assert!(out.contains("CapAmb:\t0000000000000020"), "{out}");
    assert!(
        out.contains("net=host") && out.contains("hostname=probe"),
        "{out}"
    );
}

#[test]
fn cgroup_resources() {
    // The same limits read from the v1 files on v1/hybrid hosts, the v2 files on pure v2 ones.
    let v2 = host_is_cgroup_v2();
    let script = if v2 {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max \
         /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.low; \
         head -c1 /dev/null && echo null-ok"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us; \
         cat /sys/fs/cgroup/devices/devices.list | sort; \
         head -c1 /dev/null && echo null-ok"
    };
    let mut b = Bundle::new(script);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "pids": {"limit": 32},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "devices": [{"allow": false, "access": "rwm"}]
    });
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    // `runc spec` lists the cgroup namespace itself on pure v2 hosts.
    if !namespaces.iter().any(|n| n["type"] == "cgroup") {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let o = run_both(&b, "cg");
    assert_same(&o);
    let out = text(&o.1);
    let want = if v2 {
        "67108864\n32\n20\n50000 100000\n33554432\n"
    } else {
        "67108864\n32\n512\n50000\n"
    };
    assert!(
        out.starts_with(want),
        "stdout: {out}\nrunc: {:?} {}\nberth: {:?} {}",
        o.0.status,
        String::from_utf8_lossy(&o.0.stderr),
        o.1.status,
        String::from_utf8_lossy(&o.1.stderr)
    );
    assert!(out.contains("null-ok"), "{out}");
}

#[test]
fn seccomp_profile() {
    let mut b = Bundle::new(
        "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo mkdir=$?; \
         chmod 600 /tmp 2>&1; echo chmod=$?; ls / >/dev/null; echo ls=$?",
    );
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["fchmodat", "chmod", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 384, "op": "SCMP_CMP_EQ"}]},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 384, "op": "SCMP_CMP_EQ"}]},
            {"names": ["nosuchsyscall"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    let o = run_both(&b, "seccomp");
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("mkdir=1"), "{out}");
}

/// `linux.devices` makes nodes, never device-cgroup rules: a FIFO (`p`) listed there used to be
/// written to `devices.allow` on cgroup v1 and failed the create (`Invalid argument`).
#[test]
fn linux_devices_make_nodes_not_cgroup_rules() {
    let mut b = Bundle::new(
        "ls -l /dev/pipe0 | cut -c1; ls -l /dev/fuse | cut -c1; \
         grep -c 10:229 /sys/fs/cgroup/devices/devices.list 2>/dev/null; echo done",
    );
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/pipe0", "type": "p", "fileMode": 420, "uid": 0, "gid": 0},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
    b.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    if !namespaces.iter().any(|n| n["type"] == "cgroup") {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let o = run_both(&b, "devnodes");
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.starts_with("p\nc\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn masked_readonly_sysctl_devices() {
    let mut b = Bundle::new(
        "cat /proc/sys/net/ipv4/ip_forward; ls -l /dev/fuse | cut -c1-10; \
         cat /proc/timer_list | wc -c; ls /proc/acpi 2>&1 | wc -l; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq=rw || echo sysrq=ro",
    );
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    let o = run_both(&b, "masked");
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.starts_with("1\ncrw-rw-rw-\n0\n"), "{out}");
    assert!(out.contains("sysrq=ro"), "{out}");
}

/// runc's version as (major, minor), from `runc --version`.
fn runc_version() -> (u32, u32) {
    let o = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    let v = t.split_whitespace().nth(2).unwrap_or("0.0");
    let mut n = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// The optional (propagation) fields of `/` in the container's mountinfo, peer group numbers
/// taken out: "" for private, "shared", "master", "shared master", "unbindable".
const ROOT_PROPAGATION: &str = "awk '$5==\"/\"' /proc/self/mountinfo | sed 's/ - .*//' \
    | cut -d' ' -f7- | sed 's/:[0-9]*//g' | sed 's/^/root=[/; s/$/]/'; echo ok";

/// `linux.rootfsPropagation` shared used to fail create with `pivot_root: Invalid argument`
/// (the rootfs was bound under a shared `/`). Now the rootfs' parent mount is made private
/// before the bind and the propagation applied to the new `/` after pivot_root, as runc ≥ 1.4
/// does; runc < 1.4 runs too but leaves the new `/` private.
#[test]
fn rootfs_propagation_shared_runs_like_runc() {
    for prop in ["shared", "rshared", "slave", "private", "rprivate"] {
        let mut b = Bundle::new(ROOT_PROPAGATION);
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        let o = run_both(&b, &format!("prop-{prop}"));
        let (runc, berth) = (text(&o.0), text(&o.1));
        assert!(
            o.0.status.success() && o.1.status.success(),
            "{prop}: runc {:?} {} / berth {:?} {}",
            o.0.status,
            String::from_utf8_lossy(&o.0.stderr),
            o.1.status,
            String::from_utf8_lossy(&o.1.stderr)
        );
        let shared = prop.ends_with("shared");
        if shared {
            assert!(berth.starts_with("root=[shared]\n"), "{prop}: {berth}");
        }
        if !shared || runc_version() >= (1, 4) {
            assert_same(&o);
        } else {
            assert!(runc.starts_with("root=[]\n"), "{prop}: runc {runc}");
        }
        assert!(berth.ends_with("ok\n"), "{berth}");
    }
}

/// Host mounts under `dir` (this test process's mount namespace).
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{} ", dir.display());
    let sub = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|m| (m.to_string(), l)))
        .filter(|(m, _)| format!("{m} ") == prefix || m.starts_with(&sub))
        .map(|(m, _)| m)
        .collect()
}

/// No mount namespace in `linux.namespaces`: the container shares the host's (the spec says a
/// runtime MUST inherit what is not listed); it used to be refused ("a mount namespace is
/// required"). runc mounts the spec's mounts under the rootfs in the host's namespace and
/// chroots; so does berth. runc is run inside `unshare -m` because it also makes the host's
/// `/` rslave and leaves its mounts behind; berth does neither (checked here). Masked or
/// read-only paths need a mount namespace: both refuse them.
#[test]
fn no_mount_namespace_shares_the_hosts() {
    let mut b = Bundle::new("");
    let rootfs = b.path().join("rootfs");
    // the mount namespace the runtime ran in, written by the command line that starts it
    let script =
        "[ \"$(readlink /proc/self/ns/mnt)\" = \"$(cat /runtime-mnt)\" ] && echo mnt=inherited; \
                  ls /; ls /dev | grep -c null; touch /x && echo root=rw; echo pid=$$";
    b.config["process"]["args"] = json!(["sh", "-c", script]);
    b.config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    let run = |b: &Bundle, bin: &str, id: &str, own_mntns: bool| {
        let r = root();
        b.write(&format!("/berth-test/{id}"));
        let mut c = std::process::Command::new(if own_mntns { "unshare" } else { "sh" });
        if own_mntns {
            c.args(["-m", "sh"]);
        }
        let o = c
            .arg("-c")
            .arg("readlink /proc/self/ns/mnt > \"$0\"; exec \"$@\"")
            .arg(rootfs.join("runtime-mnt"))
            .arg(bin)
            .arg("--root")
            .arg(r.path())
            .args(["run", "--bundle", b.path().to_str().unwrap(), id])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_file(rootfs.join("x"));
        o
    };
    let runc = run(&b, "runc", "runc-nomnt", true);
    let berth = run(&b, BERTH, "berth-nomnt", false);
    assert!(
        mounts_under(&rootfs).is_empty(),
        "berth left mounts behind: {:?}",
        mounts_under(&rootfs)
    );
    let o = (runc, berth);
    assert_same(&o);
    let out = text(&o.1);
    assert!(out.starts_with("mnt=inherited\n"), "{out}");
    assert!(out.contains("root=rw") && out.contains("pid=1"), "{out}");

    // masked paths without a mount namespace: both refuse to create
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let runc = run(&b, "runc", "runc-nomnt2", true);
    let berth = run(&b, BERTH, "berth-nomnt2", false);
    assert!(!runc.status.success() && !berth.status.success());
    let (re, be) = (
        String::from_utf8_lossy(&runc.stderr),
        String::from_utf8_lossy(&berth.stderr),
    );
    assert!(re.contains("without a private MNT namespace"), "{re}");
    assert!(be.contains("linux.maskedPaths"), "{be}");
    assert!(mounts_under(&rootfs).is_empty());
}

/// A whole-disk block device of this machine ("MAJ:MIN"), for throttle rules.
fn a_block_device() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["loop", "ram", "zram", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    names.sort();
    let n = names.first().expect("no block device in /sys/block");
    std::fs::read_to_string(format!("/sys/block/{n}/dev"))
        .unwrap()
        .trim()
        .to_string()
}

fn with_cgroupns(b: &mut Bundle) {
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    if !namespaces.iter().any(|n| n["type"] == "cgroup") {
        namespaces.push(json!({"type": "cgroup"}));
    }
}

/// blockIO throttle rules used to be ignored (and `throttle…IOPSDevice` was not even parsed):
/// the same limits are now in the container's blkio (v1) or io.max (v2) files, as runc's.
#[test]
fn blkio_throttle_applied_like_runc() {
    let dev = a_block_device();
    let (maj, min) = dev.split_once(':').unwrap();
    let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
    let script = if host_is_cgroup_v2() {
        "cat /sys/fs/cgroup/io.max"
    } else {
        "cd /sys/fs/cgroup/blkio; cat blkio.throttle.read_bps_device blkio.throttle.write_bps_device \
         blkio.throttle.read_iops_device blkio.throttle.write_iops_device"
    };
    let mut b = Bundle::new(script);
    b.config["linux"]["resources"] = json!({"blockIO": {
        "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": maj, "minor": min, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": maj, "minor": min, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 200}]
    }});
    with_cgroupns(&mut b);
    let o = run_both(&b, "throttle");
    assert_same(&o);
    let out = text(&o.1);
    let want = if host_is_cgroup_v2() {
        format!("{dev} rbps=1048576 wbps=2097152 riops=100 wiops=200\n")
    } else {
        format!("{dev} 1048576\n{dev} 2097152\n{dev} 100\n{dev} 200\n")
    };
    assert_eq!(out, want);
}

/// Cgroup settings berth cannot apply were silently ignored. Now each is applied where its
/// controller is, and otherwise fails the create naming the setting; runc fails (or succeeds)
/// on the same bundle. Kernel memory is the documented difference: runc ignores it with a
/// warning, berth applies `kernelTCP` on v1 and refuses what the kernel does not enforce.
#[test]
fn cgroup_settings_applied_or_refused_like_runc() {
    let cases = [
        (
            "hugepageLimits",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
        ),
        ("network.classID", json!({"network": {"classID": 1048577}})),
        (
            "network.priorities",
            json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}}),
        ),
        (
            "rdma",
            json!({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}),
        ),
        ("unified", json!({"unified": {"memory.high": "100000000"}})),
        (
            "blockIO.weightDevice",
            json!({"blockIO": {"weightDevice": [{"major": 1, "minor": 3, "weight": 500}]}}),
        ),
    ];
    for (name, res) in cases {
        let mut b = Bundle::new("echo ran");
        b.config["linux"]["resources"] = res;
        with_cgroupns(&mut b);
        let o = run_both(&b, &name.replace('.', "-").to_lowercase());
        let be = String::from_utf8_lossy(&o.1.stderr);
        assert_eq!(
            o.0.status.success(),
            o.1.status.success(),
            "{name}: runc {:?} {} / berth {:?} {be}",
            o.0.status,
            String::from_utf8_lossy(&o.0.stderr),
            o.1.status,
        );
        if !o.1.status.success() {
            assert!(
                be.contains(&format!("linux.resources.{name}")),
                "{name}: {be}"
            );
        }
    }
    // kernel memory: runc ignores both settings; berth applies or names them
    let v2 = host_is_cgroup_v2();
    let mut b = Bundle::new(if v2 {
        "echo ran"
    } else {
        "cat /sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"
    });
    b.config["linux"]["resources"] = json!({"memory": {"kernelTCP": 67108864}});
    with_cgroupns(&mut b);
    let o = run_both(&b, "kmemtcp");
    assert!(o.0.status.success(), "runc ignores kernelTCP");
    if v2 {
        let be = String::from_utf8_lossy(&o.1.stderr);
        assert!(be.contains("linux.resources.memory.kernelTCP"), "{be}");
    } else {
        assert_eq!(text(&o.1), "67108864\n");
    }
    b.config["linux"]["resources"] = json!({"memory": {"kernel": 67108864}});
    let o = run_both(&b, "kmem");
    assert!(o.0.status.success(), "runc ignores memory.kernel");
    if !o.1.status.success() {
        let be = String::from_utf8_lossy(&o.1.stderr);
        assert!(be.contains("linux.resources.memory.kernel"), "{be}");
    }
}
