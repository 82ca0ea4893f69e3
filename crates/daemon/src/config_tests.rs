//! Flags and daemon.json merged as dockerd merges them; TLS settings as dockerd takes them.
use super::*;
use serde_json::json;

#[test]
fn size_settings_come_from_the_flag_or_the_file() {
    let file = |v: Value| json!({ "max-json-body": v }).as_object().unwrap().clone();
    let none = Map::new();
    let key = "max-json-body";
    assert_eq!(size_setting(None, &none, key, 1024).unwrap(), None);
    let flag = "4m".to_string();
    assert_eq!(
        size_setting(Some(&flag), &none, key, 1024).unwrap(),
        Some(4 << 20)
    );
    assert_eq!(
        size_setting(None, &file(json!(2048)), key, 1024).unwrap(),
        Some(2048)
    );
    assert_eq!(
        size_setting(None, &file(json!("2k")), key, 1024).unwrap(),
        Some(2048)
    );
    let e = size_setting(None, &file(json!(10)), key, 1024).unwrap_err();
    assert!(e.contains("less than 1024 bytes"), "{e}");
    assert!(size_setting(None, &file(json!(-5)), key, 1).is_err());
    assert!(size_setting(None, &file(json!(true)), key, 1).is_err());
    assert!(size_setting(None, &file(json!("lots")), key, 1).is_err());
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn defaults() {
    let c = merge(&DaemonArgs::default(), None).unwrap();
    assert_eq!(c.engine.data_root, PathBuf::from("/var/lib/berth"));
    assert_eq!(c.engine.exec_root, PathBuf::from("/run/berth"));
    assert_eq!(c.hosts, vec![Host::Unix("/run/berth/berth.sock".into())]);
    assert_eq!(c.log_level, tracing::Level::INFO);
    assert_eq!(c.engine.default_runtime, "runc");
    assert_eq!(c.engine.runtimes["runc"], PathBuf::from("runc"));
    assert_eq!(c.group, "berth");
    assert!(
        c.engine.live_restore,
        "berth keeps containers running through a restart by default"
    );
    assert!(c.engine.networking && c.engine.iptables && c.engine.icc);
    assert_eq!(
        c.engine.trust.policy,
        PathBuf::from("/etc/berth/policy.json")
    );
    assert_eq!(
        c.engine.trust.registries_d,
        PathBuf::from("/etc/berth/registries.d")
    );
}

#[test]
fn signature_policy_from_the_flag_or_the_file() {
    let file = obj(json!({"signature-policy": "/f/p.json", "registries-d": "/f/r.d"}));
    let c = merge(&DaemonArgs::default(), Some(&file)).unwrap();
    assert_eq!(c.engine.trust.policy, PathBuf::from("/f/p.json"));
    assert_eq!(c.engine.trust.registries_d, PathBuf::from("/f/r.d"));
    let args = DaemonArgs {
        signature_policy: Some("/a/p.json".into()),
        ..Default::default()
    };
    let c = merge(&args, None).unwrap();
    assert_eq!(c.engine.trust.policy, PathBuf::from("/a/p.json"));
    assert!(merge(&args, Some(&file)).is_err(), "flag and file both set");
    assert!(merge(
        &DaemonArgs::default(),
        Some(&obj(json!({"signature-policy": 1})))
    )
    .is_err());
}

#[test]
fn file_and_flags_merge() {
    let file = obj(json!({
        "exec-root": "/x/run",
        "runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": []}},
        "default-runtime": "crun",
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
        "live-restore": true,
        "log-opts": {"max-size": "10m"}
    }));
    let args = DaemonArgs {
        data_root: Some("/x/lib".into()),
        log_level: Some("debug".into()),
        add_runtime: vec!["youki=/bin/youki".into()],
        ..Default::default()
    };
    let c = merge(&args, Some(&file)).unwrap();
    assert_eq!(c.engine.data_root, PathBuf::from("/x/lib"));
    assert_eq!(c.engine.exec_root, PathBuf::from("/x/run"));
    assert_eq!(c.engine.default_runtime, "crun");
    assert_eq!(c.engine.runtimes.len(), 3);
    assert_eq!(
        c.engine.default_ulimits,
        vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048
        }]
    );
    assert!(c.engine.live_restore);
    assert_eq!(c.engine.log_opts["max-size"], "10m");
    assert_eq!(c.log_level, tracing::Level::DEBUG);
}

#[test]
fn conflicts_and_unknown_keys() {
    let file = obj(json!({"data-root": "/a"}));
    let args = DaemonArgs {
        data_root: Some("/b".into()),
        ..Default::default()
    };
    let e = merge(&args, Some(&file)).unwrap_err();
    assert!(e.starts_with("the following directives are specified both as a flag and in the configuration file: data-root"), "{e}");
    let e = merge(&DaemonArgs::default(), Some(&obj(json!({"bogus": 1})))).unwrap_err();
    assert!(
        e.contains("don't match any configuration option: bogus"),
        "{e}"
    );
}

#[test]
fn hosts() {
    let file = obj(json!({"hosts": ["unix:///a.sock", "tcp://0.0.0.0"]}));
    assert_eq!(
        merge(&DaemonArgs::default(), Some(&file)).unwrap().hosts,
        vec![
            Host::Unix("/a.sock".into()),
            Host::Tcp {
                host: "0.0.0.0".into(),
                port: 2375
            }
        ]
    );
    let file = obj(json!({"hosts": ["tcp://0.0.0.0"], "tls": true}));
    let c = merge(&DaemonArgs::default(), Some(&file)).unwrap();
    assert_eq!(
        c.hosts,
        vec![Host::Tcp {
            host: "0.0.0.0".into(),
            port: 2376
        }]
    );
    assert!(!c.tls.unwrap().verify);
}

fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn tls_as_dockerd_takes_it() {
    let none = Map::new();
    let home = env_of(&[("HOME", "/h")]);
    assert_eq!(
        tls_settings(&DaemonArgs::default(), &none, &home).unwrap(),
        None
    );
    // --tlsverify implies TLS, with the default paths.
    let args = DaemonArgs {
        tlsverify: Some(true),
        ..Default::default()
    };
    let t = tls_settings(&args, &none, &home).unwrap().unwrap();
    assert!(t.verify);
    assert_eq!(t.ca, PathBuf::from("/h/.docker/ca.pem"));
    assert_eq!(t.cert, PathBuf::from("/h/.docker/cert.pem"));
    assert_eq!(t.key, PathBuf::from("/h/.docker/key.pem"));
    // --tlsverify=false still turns TLS on, without client verification.
    let args = DaemonArgs {
        tlsverify: Some(false),
        ..Default::default()
    };
    let t = tls_settings(&args, &none, &home).unwrap().unwrap();
    assert!(!t.verify);
    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
    let env = env_of(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs")]);
    let t = tls_settings(&DaemonArgs::default(), &none, &env)
        .unwrap()
        .unwrap();
    assert!(t.verify);
    assert_eq!(t.key, PathBuf::from("/certs/key.pem"));
    // The file's keys.
    let file =
        obj(json!({"tlsverify": true, "tlscacert": "/x/ca", "tlscert": "/x/c", "tlskey": "/x/k"}));
    let t = tls_settings(&DaemonArgs::default(), &file, &home)
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.ca, t.cert, t.key),
        ("/x/ca".into(), "/x/c".into(), "/x/k".into())
    );
    assert!(tls_settings(&DaemonArgs::default(), &obj(json!({"tls": "yes"})), &home).is_err());
    // A key both as a flag and in the file is a conflict, as for every other key.
    let args = DaemonArgs {
        tlscert: Some("/a".into()),
        ..Default::default()
    };
    let e = merge(&args, Some(&obj(json!({"tlscert": "/b"})))).unwrap_err();
    assert!(e.contains("tlscert"), "{e}");
}

#[test]
fn ulimits_and_levels() {
    assert_eq!(
        parse_ulimit("nofile=10:20").unwrap(),
        Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 20
        }
    );
    assert_eq!(parse_ulimit("nproc=5").unwrap().hard, 5);
    assert!(parse_ulimit("nofile=20:10").is_err());
    assert_eq!(parse_level("fatal").unwrap(), tracing::Level::ERROR);
    assert!(parse_level("loud").is_err());
}

#[test]
fn bad_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("daemon.json");
    std::fs::write(&p, "{nope").unwrap();
    assert!(read_file(&p).is_err());
    assert!(read_file(&dir.path().join("missing.json"))
        .unwrap()
        .is_none());
}
