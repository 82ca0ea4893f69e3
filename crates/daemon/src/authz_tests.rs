//! Each role against each class of request.

use super::*;
use crate::tls::ClientCert;
use serde_json::json;

fn policy() -> Policy {
    Policy::parse(&json!({
        "identities": {"uid:1000": "operator", "gid:50": "viewer", "cn:alice": "admin",
                       "san:ci.example.com": "operator", "uid:2000": "viewer"},
        "allowed-bind-paths": ["/srv/data", "/srv/../tmp/x"]
    }))
    .unwrap()
}

fn same(p: &Path) -> PathBuf {
    p.to_path_buf()
}

fn decide(role: Role, method: Method, route: Route, body: Value) -> Result<(), Denial> {
    policy().authorize(Some(role), &method, &route, &|_| None, Some(&body), &same)
}

fn create(hc: Value) -> Result<(), Denial> {
    decide(
        Role::Operator,
        Method::POST,
        Route::ContainerCreate,
        json!({"Image": "busybox", "HostConfig": hc}),
    )
}

fn rule(r: Result<(), Denial>) -> &'static str {
    r.expect_err("should be refused").rule
}

#[test]
fn identities_map_to_roles() {
    let p = policy();
    let unix = |uid, gid| p.role_of(&Peer::Unix { uid, gid });
    assert_eq!(unix(1000, 1000), ("uid:1000".into(), Some(Role::Operator)));
    assert_eq!(unix(1234, 50).1, Some(Role::Viewer), "by group");
    assert_eq!(unix(2000, 0).1, Some(Role::Viewer), "uid wins over gid");
    assert_eq!(
        unix(0, 0).1,
        Some(Role::Admin),
        "root is admin unless mapped"
    );
    assert_eq!(unix(1234, 1234).1, None, "unknown: nothing");
    let addr = "127.0.0.1:5".parse().unwrap();
    let tls = |cn: Option<&str>, sans: &[&str]| {
        p.role_of(&Peer::Tls {
            addr,
            cert: Some(ClientCert {
                common_name: cn.map(str::to_string),
                sans: sans.iter().map(|s| s.to_string()).collect(),
            }),
        })
    };
    assert_eq!(
        tls(Some("alice"), &[]),
        ("cn:alice".into(), Some(Role::Admin))
    );
    assert_eq!(
        tls(Some("bob"), &["ci.example.com"]).1,
        Some(Role::Operator)
    );
    assert_eq!(tls(Some("bob"), &[]).1, None);
    assert_eq!(p.role_of(&Peer::Tcp { addr }).1, None);
    let mut with_default = policy();
    with_default.default = Some(Role::Viewer);
    assert_eq!(
        with_default.role_of(&Peer::Tcp { addr }).1,
        Some(Role::Viewer)
    );
    let mapped_root = Policy::parse(&json!({"identities": {"uid:0": "viewer"}})).unwrap();
    assert_eq!(
        mapped_root.role_of(&Peer::Unix { uid: 0, gid: 0 }).1,
        Some(Role::Viewer)
    );
}

#[test]
fn bad_sections_are_errors() {
    for bad in [
        json!({"identities": {"uid:x": "admin"}}),
        json!({"identities": {"bob": "admin"}}),
        json!({"identities": {"uid:1": "root"}}),
        json!({"default": "god"}),
        json!({"allowed-bind-paths": ["relative"]}),
        json!({"bogus": 1}),
        json!([]),
    ] {
        assert!(Policy::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn no_role_gets_nothing() {
    let r = policy().authorize(None, &Method::GET, &Route::Ping, &|_| None, None, &same);
    assert_eq!(rule(r), "no-role");
}

#[test]
fn admin_gets_everything() {
    assert!(decide(
        Role::Admin,
        Method::POST,
        Route::ContainerCreate,
        json!({"HostConfig": {"Privileged": true, "PidMode": "host"}})
    )
    .is_ok());
    assert!(decide(
        Role::Admin,
        Method::POST,
        Route::ExecStart("x".into()),
        json!(null)
    )
    .is_ok());
}

#[test]
fn viewer_reads_only() {
    for (m, r) in [
        (Method::GET, Route::ContainerList),
        (Method::GET, Route::ContainerInspect("c".into())),
        (Method::GET, Route::ContainerLogs("c".into())),
        (Method::GET, Route::Events),
        (Method::GET, Route::ImageList),
        (Method::HEAD, Route::Ping),
    ] {
        assert!(
            decide(Role::Viewer, m.clone(), r.clone(), json!(null)).is_ok(),
            "{m} {r:?}"
        );
    }
    for (m, r) in [
        (Method::POST, Route::ContainerCreate),
        (Method::POST, Route::ContainerStart("c".into())),
        (Method::DELETE, Route::ContainerRemove("c".into())),
        (Method::POST, Route::ExecCreate("c".into())),
        (Method::POST, Route::ExecStart("e".into())),
        (Method::POST, Route::ContainerAttach("c".into())),
        (Method::PUT, Route::ContainerArchive("c".into())),
        (Method::POST, Route::ImageCreate),
    ] {
        assert_eq!(
            rule(decide(Role::Viewer, m.clone(), r.clone(), json!(null))),
            "read-only"
        );
    }
    // A GET that would attach (e.g. through a proxy rewriting the method) is still refused.
    assert_eq!(
        rule(decide(
            Role::Viewer,
            Method::GET,
            Route::ContainerAttach("c".into()),
            json!(null)
        )),
        "read-only"
    );
}

#[test]
fn operator_runs_ordinary_containers() {
    assert!(create(json!({})).is_ok());
    assert!(create(json!(null)).is_ok());
    assert!(create(json!({
        "CapAdd": ["NET_BIND_SERVICE", "cap_chown"], "CapDrop": ["ALL"],
        "NetworkMode": "bridge", "PidMode": "container:abc", "Binds": ["vol:/data", "/srv/data/x:/x:ro"],
        "Mounts": [{"Type": "bind", "Source": "/tmp/x/y", "Target": "/y"},
                   {"Type": "volume", "Source": "v", "Target": "/v"},
                   {"Type": "tmpfs", "Target": "/t"}],
        "SecurityOpt": ["no-new-privileges", "label=user:x"]
    }))
    .is_ok());
    for route in [
        Route::ContainerStart("c".into()),
        Route::ContainerAttach("c".into()),
        Route::ExecStart("e".into()),
        Route::ImageCreate,
        Route::ContainerRemove("c".into()),
    ] {
        assert!(decide(Role::Operator, Method::POST, route, json!(null)).is_ok());
    }
    assert!(decide(
        Role::Operator,
        Method::POST,
        Route::ExecCreate("c".into()),
        json!({"Cmd": ["sh"]})
    )
    .is_ok());
}

#[test]
fn operator_never_gets_host_root() {
    assert_eq!(rule(create(json!({"Privileged": true}))), "privileged");
    assert_eq!(rule(create(json!({"CapAdd": ["SYS_ADMIN"]}))), "cap-add");
    assert_eq!(rule(create(json!({"CapAdd": ["ALL"]}))), "cap-add");
    assert_eq!(
        rule(create(json!({"CapAdd": ["CAP_NET_ADMIN"]}))),
        "cap-add"
    );
    for k in ["PidMode", "NetworkMode", "IpcMode", "UTSMode", "UsernsMode"] {
        assert_eq!(rule(create(json!({ k: "host" }))), "host-namespace", "{k}");
    }
    assert_eq!(rule(create(json!({"Binds": ["/:/host"]}))), "bind-mount");
    assert_eq!(
        rule(create(json!({"Binds": ["/srv/data/../../etc:/e"]}))),
        "bind-mount"
    );
    assert_eq!(
        rule(create(json!({"Binds": ["/srv/database:/d"]}))),
        "bind-mount"
    );
    assert_eq!(
        rule(create(
            json!({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/e"}]})
        )),
        "bind-mount"
    );
    assert_eq!(
        rule(create(
            json!({"Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions":
            {"DriverConfig": {"Options": {"type": "none", "o": "bind", "device": "/root"}}}}]})
        )),
        "bind-mount"
    );
    assert_eq!(
        rule(create(
            json!({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]})
        )),
        "devices"
    );
    assert_eq!(
        rule(create(json!({"DeviceCgroupRules": ["a *:* rwm"]}))),
        "devices"
    );
    for opt in [
        "seccomp=unconfined",
        "seccomp:unconfined",
        "apparmor=unconfined",
        "label=disable",
        "systempaths=unconfined",
        "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
    ] {
        assert_eq!(
            rule(create(json!({ "SecurityOpt": [opt] }))),
            "security-opt",
            "{opt}"
        );
    }
    assert_eq!(rule(create(json!({"MaskedPaths": []}))), "security-opt");
    assert_eq!(
        rule(decide(
            Role::Operator,
            Method::POST,
            Route::ExecCreate("c".into()),
            json!({"Privileged": true})
        )),
        "privileged-exec"
    );
    let vol = |opts: Value| {
        decide(
            Role::Operator,
            Method::POST,
            Route::VolumeCreate,
            json!({"Name": "v", "DriverOpts": opts}),
        )
    };
    assert_eq!(
        rule(vol(json!({"type": "none", "o": "bind", "device": "/etc"}))),
        "bind-mount"
    );
    assert_eq!(
        rule(vol(json!({"type": "ext4", "device": "/dev/sda1"}))),
        "volume-device"
    );
    assert!(vol(json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})).is_ok());
    assert!(vol(json!({"type": "none", "o": "bind", "device": "/srv/data/v"})).is_ok());
    let host_build = policy().authorize(
        Some(Role::Operator),
        &Method::POST,
        &Route::Build,
        &|k| (k == "networkmode").then(|| "host".to_string()),
        None,
        &same,
    );
    assert_eq!(rule(host_build), "host-namespace");
}

#[test]
fn links_are_followed_for_bind_sources() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::os::unix::fs::symlink("/etc", allowed.join("escape")).unwrap();
    let mut p = Policy::parse(&json!({"allowed-bind-paths": [allowed]})).unwrap();
    p.resolve_paths(&resolve_host_path);
    let check = |src: PathBuf| {
        p.authorize(
            Some(Role::Operator),
            &Method::POST,
            &Route::ContainerCreate,
            &|_| None,
            Some(&json!({"HostConfig": {"Binds": [format!("{}:/x", src.display())]}})),
            &resolve_host_path,
        )
    };
    assert!(check(allowed.join("new/dir")).is_ok());
    assert_eq!(rule(check(allowed.join("escape"))), "bind-mount");
}

#[test]
fn normalizing() {
    assert_eq!(
        normalize(Path::new("/a/../../b/./c")),
        PathBuf::from("/b/c")
    );
    assert!(Policy::needs_body(
        Some(Role::Operator),
        &Route::ContainerCreate
    ));
    assert!(!Policy::needs_body(
        Some(Role::Admin),
        &Route::ContainerCreate
    ));
    assert!(!Policy::needs_body(
        Some(Role::Operator),
        &Route::ContainerList
    ));
}
