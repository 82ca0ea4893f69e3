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
