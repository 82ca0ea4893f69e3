//! Unit tests of the spec: defaults, limits, security options, parsing.

use super::*;
use serde_json::json;

/// `build`, as JSON.
fn built(inp: &SpecInput<'_>) -> Result<Value, String> {
    build(inp).map(|s| serde_json::to_value(s).unwrap())
}

fn input<'a>(
    c: &'a ContainerConfig,
    h: &'a HostConfig,
    hard: &'a dyn Fn(&str) -> Option<u64>,
) -> SpecInput<'a> {
    SpecInput {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        netns_path: None,
        config: c,
        host: h,
        rootfs: Path::new("/rootfs"),
        args: vec!["sh".into()],
        user: ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        },
        etc_files: vec![],
        volumes: vec![],
        init_path: None,
        default_ulimits: &[],
        rlimit_hard: hard,
        kernel: (6, 1),
        cap_bounding: u64::MAX,
    }
}

#[test]
fn defaults_are_dockers() {
    let (c, h) = (ContainerConfig::default(), HostConfig::default());
    let none = |_: &str| None;
    let s = built(&input(&c, &h, &none)).unwrap();
    assert_eq!(s["hostname"], "0123456789ab");
    assert_eq!(
        s["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .len(),
        14
    );
    assert!(s["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/kcore")));
    assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    let ns: Vec<&str> = s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"pid") && ns.contains(&"network") && ns.contains(&"mount"));
    assert!(s["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "HOSTNAME=0123456789ab"));
}

#[test]
fn limits_and_ulimit_clamping() {
    let c = ContainerConfig::default();
    let h = HostConfig {
        memory: 64 << 20,
        nano_cpus: 1_500_000_000,
        pids_limit: Some(20),
        ulimits: vec![berth_api::Ulimit {
            name: "nofile".into(),
            soft: 1 << 30,
            hard: 1 << 30,
        }],
        ..Default::default()
    };
    let hard = |t: &str| {
        if t == "RLIMIT_NOFILE" {
            Some(20000)
        } else {
            None
        }
    };
    let s = built(&input(&c, &h, &hard)).unwrap();
    assert_eq!(s["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(s["linux"]["resources"]["memory"]["swap"], 128 << 20);
    assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 150_000);
    assert_eq!(s["linux"]["resources"]["pids"]["limit"], 20);
    assert_eq!(
        s["process"]["rlimits"][0],
        json!({"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000})
    );
}

#[test]
fn security_opts() {
    let c = ContainerConfig::default();
    let none = |_: &str| None;
    let h = HostConfig {
        security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
        ..Default::default()
    };
    let s = built(&input(&c, &h, &none)).unwrap();
    assert!(s["linux"].get("seccomp").is_none());
    assert_eq!(s["process"]["noNewPrivileges"], true);
    let h = HostConfig {
        security_opt: vec!["bogus".into()],
        ..Default::default()
    };
    assert!(built(&input(&c, &h, &none)).is_err());
    let h = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let s = built(&input(&c, &h, &none)).unwrap();
    assert!(s["linux"].get("maskedPaths").is_none());
    assert_eq!(
        s["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .len(),
        41
    );
}

#[test]
fn binds_and_sizes() {
    assert_eq!(
        parse_bind("/a:/b:ro,rshared").unwrap(),
        Bind {
            source: "/a".into(),
            destination: "/b".into(),
            read_only: true,
            propagation: Some("rshared".into())
        }
    );
    assert!(parse_bind("/a:b").is_err());
    assert!(parse_bind("/a:/b:bogus").is_err());
    assert_eq!(parse_size("64m").unwrap(), 64 << 20);
    assert_eq!(parse_size("1g").unwrap(), 1 << 30);
    assert_eq!(parse_size("1024").unwrap(), 1024);
    assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
    assert!(parse_size("lots").is_err());
}

#[test]
fn swap_rules() {
    let c = ContainerConfig::default();
    let none = |_: &str| None;
    let h = HostConfig {
        memory: 100,
        memory_swap: 50,
        ..Default::default()
    };
    assert!(built(&input(&c, &h, &none)).is_err());
    let h = HostConfig {
        memory_swap: 50,
        ..Default::default()
    };
    assert!(built(&input(&c, &h, &none)).is_err());
}

#[test]
fn config_json_is_deterministic() {
    // Capability sets are HashSets in oci_spec: to_json must not depend on their order.
    let c = ContainerConfig::default();
    let h = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let none = |_: &str| None;
    let a = to_json(&build(&input(&c, &h, &none)).unwrap());
    for _ in 0..8 {
        assert_eq!(to_json(&build(&input(&c, &h, &none)).unwrap()), a);
    }
    let v: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["process"]["capabilities"]["bounding"][0], "CAP_CHOWN");
    assert_eq!(
        v["process"]["capabilities"]["bounding"][40],
        "CAP_CHECKPOINT_RESTORE"
    );
}

#[test]
fn bundle_process_reads_what_build_wrote() {
    let (c, h) = (ContainerConfig::default(), HostConfig::default());
    let none = |_: &str| None;
    let spec = build(&input(&c, &h, &none)).unwrap();
    let p = bundle_process(&to_json(&spec)).unwrap();
    assert_eq!(Some(&p), spec.process().as_ref());
    assert!(bundle_process(b"{\"ociVersion\": \"1.0.2\"}")
        .unwrap_err()
        .contains("no process"));
    assert!(bundle_process(b"not json").is_err());
}

#[test]
fn sysctls_are_checked_and_dockerds_defaults_kept() {
    let none = |_: &str| None;
    let c = ContainerConfig::default();
    let sysctl = |h: &HostConfig| built(&input(&c, h, &none)).map(|v| v["linux"]["sysctl"].clone());
    let mut h = HostConfig::default();
    assert_eq!(
        sysctl(&h).unwrap(),
        json!({"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"})
    );
    h.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    h.sysctls.insert("kernel.shmmax".into(), "1024".into());
    let got = sysctl(&h).unwrap();
    assert_eq!(got["net.ipv4.ip_forward"], "1");
    assert_eq!(got["kernel.shmmax"], "1024");
    h.network_mode = "host".into();
    assert!(sysctl(&h)
        .unwrap_err()
        .contains("not allowed in host network namespace"));
    h.sysctls.remove("net.ipv4.ip_forward");
    assert_eq!(
        sysctl(&h).unwrap(),
        json!({"kernel.shmmax": "1024"}),
        "no net defaults"
    );
    h.ipc_mode = "host".into();
    assert!(sysctl(&h).unwrap_err().contains("--ipc host"));
    let mut h = HostConfig::default();
    h.sysctls.insert("kernel.hostname".into(), "x".into());
    assert_eq!(
        sysctl(&h).unwrap_err(),
        "sysctl 'kernel.hostname' is not allowed"
    );
}
