//! Unit tests of [`crate::NetworkManager`] against the fakes.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use crate::dns::Resolver;
use crate::*;

struct Env {
    dir: tempfile::TempDir,
    nl: Arc<FakeNetlink>,
    fw: Arc<FakeFirewall>,
}

fn env() -> Env {
    let nl = Arc::new(FakeNetlink::default());
    nl.host_links.lock().unwrap().insert("eth0".into());
    nl.routes
        .lock()
        .unwrap()
        .push("172.17.0.0/16".parse().unwrap());
    Env {
        dir: tempfile::tempdir().unwrap(),
        nl,
        fw: Arc::new(FakeFirewall::default()),
    }
}

fn open(e: &Env, live: &dyn Fn(&str) -> bool) -> NetworkManager {
    NetworkManager::open_with(
        e.dir.path(),
        ManagerConfig::default(),
        e.nl.clone(),
        Some(e.fw.clone()),
        live,
    )
    .unwrap()
}

/// The fakes only need distinct, existing paths.
fn ns(n: &str) -> std::path::PathBuf {
    Path::new(match n {
        "a" => "/proc",
        "b" => "/sys",
        "c" => "/dev",
        _ => "/tmp",
    })
    .to_path_buf()
}

#[test]
fn default_bridge_avoids_host_routes() {
    let e = env();
    let m = open(&e, &|_| true);
    let b = m.inspect("bridge").unwrap();
    assert_eq!(b.ipam.config[0].subnet, "172.18.0.0/16");
    assert_eq!(b.ipam.config[0].gateway, "172.18.0.1");
    assert!(e
        .nl
        .calls
        .lock()
        .unwrap()
        .contains(&"create_bridge berth0 172.18.0.1/16".to_string()));
    assert_eq!(e.nl.sysctls.lock().unwrap()["net/ipv4/ip_forward"], "1");
    assert_eq!(
        e.nl.sysctls.lock().unwrap()["net/ipv4/conf/berth0/route_localnet"],
        "1"
    );
    assert_eq!(e.fw.rules("filter", "FORWARD"), ["-j BERTH-FORWARD"]);
    assert_eq!(
        e.fw.rules("filter", "BERTH-FORWARD")[0],
        "-j BERTH-ISOLATION-1"
    );
    assert!(e
        .fw
        .rules("nat", "BERTH-POSTROUTING")
        .contains(&"-s 172.18.0.0/16 ! -o berth0 -j MASQUERADE".to_string()));
    // JSON shape.
    let j = serde_json::to_value(&b).unwrap();
    assert_eq!(j["Name"], "bridge");
    assert_eq!(j["Id"].as_str().unwrap().len(), 64);
    assert_eq!(j["Scope"], "local");
    assert_eq!(j["EnableIPv6"], false);
    assert_eq!(j["IPAM"]["Driver"], "default");
    assert_eq!(j["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16");
    assert_eq!(j["Options"]["com.docker.network.bridge.name"], "berth0");
    // Reopening keeps the same network and does not duplicate rules.
    let count = e.fw.rule_count();
    drop(m);
    let m = open(&e, &|_| true);
    assert_eq!(m.inspect("bridge").unwrap().id, b.id);
    assert_eq!(e.fw.rule_count(), count);
}

#[test]
fn bip_is_honoured() {
    let e = env();
    let cfg = ManagerConfig {
        bip: Some("10.99.0.1/24".parse().unwrap()),
        ..Default::default()
    };
    let m = NetworkManager::open_with(e.dir.path(), cfg, e.nl.clone(), None, &|_| true).unwrap();
    let b = m.inspect("bridge").unwrap();
    assert_eq!(b.ipam.config[0].subnet, "10.99.0.0/24");
    assert_eq!(e.fw.rule_count(), 0);
}

#[test]
fn create_validation_and_conflicts() {
    let e = env();
    let m = open(&e, &|_| true);
    let req = |name: &str, subnet: Option<&str>, gw: Option<&str>| CreateNetwork {
        name: name.into(),
        subnet: subnet.map(|s| s.parse().unwrap()),
        gateway: gw.map(|g| g.parse().unwrap()),
        ..Default::default()
    };
    let n = m.create(req("front", Some("10.10.0.0/24"), None)).unwrap();
    assert_eq!(n.ipam.config[0].gateway, "10.10.0.1");
    let bridge = format!("br-{}", &n.id[..12]);
    assert!(n.options.is_empty());
    assert_eq!(m.bridge_name("front").unwrap(), bridge);
    assert!(e.nl.host_links.lock().unwrap().contains(&bridge));
    let before = (e.fw.rule_count(), e.nl.host_links.lock().unwrap().len());
    assert!(matches!(
        m.create(req("front", None, None)),
        Err(NetworkError::Conflict(_))
    ));
    assert!(matches!(
        m.create(req("other", Some("10.10.0.128/25"), None)),
        Err(NetworkError::InvalidArgument(_))
    ));
    assert!(matches!(
        m.create(req("other", Some("10.11.0.0/24"), Some("10.12.0.1"))),
        Err(NetworkError::InvalidArgument(_))
    ));
    assert!(matches!(
        m.create(req("bad name", None, None)),
        Err(NetworkError::InvalidArgument(_))
    ));
    let mut r = req("x", None, None);
    r.driver = "overlay".into();
    assert!(matches!(m.create(r), Err(NetworkError::InvalidArgument(_))));
    // Failure injected while adding rules: nothing left behind.
    *e.fw.fail_on.lock().unwrap() = Some("MASQUERADE".into());
    assert!(m.create(req("broken", Some("10.20.0.0/24"), None)).is_err());
    *e.fw.fail_on.lock().unwrap() = None;
    assert_eq!(
        (e.fw.rule_count(), e.nl.host_links.lock().unwrap().len()),
        before
    );
    assert_eq!(m.list().len(), 2);
    // Auto subnet skips taken ones.
    let auto = m.create(req("auto", None, None)).unwrap();
    assert_eq!(auto.ipam.config[0].subnet, "172.19.0.0/16");
    // Remove.
    m.remove("auto").unwrap();
    assert!(matches!(m.inspect("auto"), Err(NetworkError::NotFound(_))));
    assert!(matches!(
        m.remove("bridge"),
        Err(NetworkError::Forbidden(_))
    ));
    m.remove(&n.id[..8]).unwrap();
    let fwd = e.fw.rules("filter", "BERTH-FORWARD").join("\n");
    assert!(!fwd.contains("br-"), "{fwd}");
    assert_eq!(
        std::fs::read_dir(e.dir.path().join("networks"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn connect_ports_dns_and_disconnect() {
    let e = env();
    let m = open(&e, &|_| true);
    m.create(CreateNetwork {
        name: "app".into(),
        subnet: Some("10.30.0.0/24".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let ports = parse_publish("127.0.0.1:8080:80").unwrap();
    let ep = m
        .connect(
            "app",
            "c1c1c1c1c1c1c1c1",
            &ns("a"),
            EndpointRequest {
                name: "web".into(),
                aliases: vec!["www".into()],
                ports: ports.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ep.ip, Ipv4Addr::new(10, 30, 0, 2));
    assert_eq!(ep.mac, "02:42:0a:1e:00:02");
    assert_eq!(ep.ifname, "eth0");
    assert_eq!(ep.ports[0].host_port, 8080);
    let dnat = e.fw.rules("nat", "BERTH-DNAT");
    assert_eq!(
        dnat,
        ["-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.30.0.2:80"]
    );
    let calls = e.nl.calls.lock().unwrap().join("\n");
    assert!(
        calls.contains("eth0 10.30.0.2/24 02:42:0a:1e:00:02 gw=Some(10.30.0.1)"),
        "{calls}"
    );
    // Same host port again: Conflict, nothing changed.
    let links = e.nl.host_links.lock().unwrap().len();
    let err = m
        .connect(
            "app",
            "c2",
            &ns("b"),
            EndpointRequest {
                name: "db".into(),
                ports,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, NetworkError::Conflict(_)), "{err}");
    assert_eq!(e.nl.host_links.lock().unwrap().len(), links);
    // Port busy on the host.
    e.nl.busy_ports.lock().unwrap().insert((9000, Proto::Udp));
    let err = m
        .connect(
            "app",
            "c2",
            &ns("b"),
            EndpointRequest {
                name: "db".into(),
                ports: parse_publish("9000:53/udp").unwrap(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
    // Port 0 picks one.
    let ep2 = m
        .connect(
            "app",
            "c2",
            &ns("b"),
            EndpointRequest {
                name: "db".into(),
                ports: parse_publish("5432").unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ep2.ip, Ipv4Addr::new(10, 30, 0, 3));
    assert_ne!(ep2.ports[0].host_port, 0);
    assert!(matches!(
        m.connect("app", "c2", &ns("b"), EndpointRequest::default()),
        Err(NetworkError::Conflict(_))
    ));
    // Second network for c1 → eth1, no default route.
    m.create(CreateNetwork {
        name: "back".into(),
        ..Default::default()
    })
    .unwrap();
    let ep3 = m
        .connect(
            "back",
            "c1c1c1c1c1c1c1c1",
            &ns("a"),
            EndpointRequest {
                name: "web".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ep3.ifname, "eth1");
    assert!(e
        .nl
        .calls
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .ends_with("gw=None"));
    // Names.
    assert_eq!(m.resolve("app", "web"), Some(ep.ip));
    assert_eq!(m.resolve("app", "WWW."), Some(ep.ip));
    assert_eq!(m.resolve("app", "web.app"), Some(ep.ip));
    assert_eq!(m.resolve("app", "web.other"), None);
    assert_eq!(m.resolve("app", "c1c1c1c1c1c1"), Some(ep.ip));
    assert_eq!(m.resolve("app", "nope"), None);
    let r = m.resolver_for("c2");
    assert_eq!(r.resolve("web"), Some(ep.ip));
    let info = m.inspect("app").unwrap();
    assert_eq!(
        info.containers["c1c1c1c1c1c1c1c1"].ipv4_address,
        "10.30.0.2/24"
    );
    assert!(matches!(m.remove("app"), Err(NetworkError::Conflict(_))));
    // Persistence: reopen with c2 dead → its endpoint and veth are gone, c1 kept.
    drop(m);
    let m = open(&e, &|id| id.starts_with("c1"));
    let info = m.inspect("app").unwrap();
    assert_eq!(info.containers.len(), 1);
    assert!(!e.nl.host_links.lock().unwrap().contains(&ep2.host_veth));
    assert_eq!(e.fw.rules("nat", "BERTH-DNAT").len(), 1);
    // The freed address is reused.
    let ep4 = m
        .connect(
            "app",
            "c3",
            &ns("c"),
            EndpointRequest {
                name: "x".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ep4.ip, ep2.ip);
    m.disconnect_all("c1c1c1c1c1c1c1c1").unwrap();
    assert!(e.fw.rules("nat", "BERTH-DNAT").is_empty());
    assert!(!e.nl.host_links.lock().unwrap().contains(&ep.host_veth));
    assert!(matches!(
        m.disconnect("app", "c1c1c1c1c1c1c1c1"),
        Err(NetworkError::NotFound(_))
    ));
    m.disconnect("app", "c3").unwrap();
    m.remove("app").unwrap();
    m.remove("back").unwrap();
    m.purge().unwrap();
    assert_eq!(e.fw.rule_count(), 0);
    assert_eq!(
        e.nl.host_links
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        ["eth0"]
    );
}

#[test]
fn default_bridge_has_no_dns_and_rejects_fixed_ip() {
    let e = env();
    let m = open(&e, &|_| true);
    m.connect(
        "bridge",
        "c1",
        &ns("a"),
        EndpointRequest {
            name: "web".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(m.resolve("bridge", "web"), None);
    assert!(matches!(
        m.connect(
            "bridge",
            "c2",
            &ns("b"),
            EndpointRequest {
                ip: Some(Ipv4Addr::new(172, 18, 0, 9)),
                ..Default::default()
            }
        ),
        Err(NetworkError::InvalidArgument(_))
    ));
}

#[test]
fn failed_veth_setup_leaves_nothing() {
    let e = env();
    let m = open(&e, &|_| true);
    let links = e.nl.host_links.lock().unwrap().clone();
    *e.nl.fail_on.lock().unwrap() = Some("configure_peer".into());
    assert!(m
        .connect(
            "bridge",
            "c1",
            &ns("a"),
            EndpointRequest {
                ports: parse_publish("80").unwrap(),
                ..Default::default()
            }
        )
        .is_err());
    *e.nl.fail_on.lock().unwrap() = None;
    assert_eq!(*e.nl.host_links.lock().unwrap(), links);
    assert!(e.fw.rules("nat", "BERTH-DNAT").is_empty());
    assert!(m.inspect("bridge").unwrap().containers.is_empty());
}

#[test]
fn missing_netns_is_invalid_argument() {
    let e = env();
    let m = open(&e, &|_| true);
    let err = m
        .connect(
            "bridge",
            "c1",
            Path::new("/nonexistent/ns"),
            EndpointRequest::default(),
        )
        .unwrap_err();
    assert!(matches!(err, NetworkError::InvalidArgument(_)), "{err}");
}

#[test]
fn stale_veths_removed_on_open() {
    let e = env();
    e.nl.host_links
        .lock()
        .unwrap()
        .insert("bvethdeadbeef".into());
    e.nl.host_links.lock().unwrap().insert("vethdocker1".into());
    let _m = open(&e, &|_| true);
    let l = e.nl.host_links.lock().unwrap();
    assert!(!l.contains("bvethdeadbeef"));
    assert!(l.contains("vethdocker1"));
}

#[test]
fn internal_network_ignores_ports_and_has_no_nat() {
    let e = env();
    let m = open(&e, &|_| true);
    let n = m
        .create(CreateNetwork {
            name: "int".into(),
            internal: true,
            ..Default::default()
        })
        .unwrap();
    assert!(n.internal);
    let br = &m.bridge_name("int").unwrap();
    let ep = m
        .connect(
            "int",
            "c1",
            &ns("a"),
            EndpointRequest {
                ports: parse_publish("80").unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(ep.ports.is_empty());
    assert!(!e
        .fw
        .rules("nat", "BERTH-POSTROUTING")
        .iter()
        .any(|r| r.contains(br.as_str())));
    assert!(e
        .fw
        .rules("filter", "BERTH-ISOLATION-1")
        .contains(&format!("-i {br} ! -o {br} -j DROP")));
}

/// An exited container's veth is left to the kernel (no delete), its port rules go at once
/// and its address is not given out again until the veth is gone, unless it is asked for.
#[test]
fn exited_containers_veths_drain_and_keep_their_addresses() {
    let e = env();
    let m = open(&e, &|_| true);
    m.create(CreateNetwork {
        name: "app".into(),
        subnet: Some("10.31.0.0/24".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let join = |id: &str, n: &str, ip: Option<Ipv4Addr>| {
        m.connect(
            "app",
            id,
            &ns(n),
            EndpointRequest {
                name: id.into(),
                ip,
                ports: if id == "c1" {
                    parse_publish("127.0.0.1:8081:80").unwrap()
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
        )
        .unwrap()
    };
    let first = join("c1", "a", None);
    assert_eq!(first.ip, Ipv4Addr::new(10, 31, 0, 2));
    assert_eq!(e.fw.rules("nat", "BERTH-DNAT").len(), 1);
    m.release_exited("c1").unwrap();
    assert!(e.fw.rules("nat", "BERTH-DNAT").is_empty());
    assert!(m.endpoints("c1").is_empty());
    assert!(m.inspect("app").unwrap().containers.is_empty());
    let deletes = |veth: &str| {
        e.nl.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == &format!("delete_link {veth}"))
            .count()
    };
    assert_eq!(deletes(&first.host_veth), 0, "left to the kernel");
    // Its address is skipped while the veth exists...
    let second = join("c2", "b", None);
    assert_eq!(second.ip, Ipv4Addr::new(10, 31, 0, 3));
    // ...unless asked for: then the veth is deleted first.
    let third = join("c3", "c", Some(first.ip));
    assert_eq!(third.ip, first.ip);
    assert_eq!(deletes(&first.host_veth), 1);
    // Once the kernel has deleted a drained veth, its address is free again.
    m.release_exited("c2").unwrap();
    e.nl.host_links.lock().unwrap().remove(&second.host_veth);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let fourth = loop {
        m.disconnect_all("c4").unwrap();
        let ep = join("c4", "d", None);
        if ep.ip == second.ip || std::time::Instant::now() > deadline {
            break ep;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(fourth.ip, second.ip);
    assert_eq!(deletes(&second.host_veth), 0);
    // A container that starts again while its veth drains gets its address back.
    m.release_exited("c3").unwrap();
    let again = join("c3", "c", None);
    assert_eq!(again.ip, first.ip);
    assert_eq!(deletes(&third.host_veth), 1);
}

/// A drained veth that outlives its container (its namespace held elsewhere) is deleted by
/// the reaper after the deadline.
#[test]
fn drained_veths_that_linger_are_deleted() {
    let e = env();
    let m = open(&e, &|_| true);
    let ep = m
        .connect("bridge", "c1", &ns("a"), EndpointRequest::default())
        .unwrap();
    m.release_exited("c1").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while e.nl.host_links.lock().unwrap().contains(&ep.host_veth) {
        assert!(std::time::Instant::now() < deadline, "never deleted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let calls = e.nl.calls.lock().unwrap().join("\n");
    assert!(
        calls.contains(&format!("delete_link {}", ep.host_veth)),
        "{calls}"
    );
}
