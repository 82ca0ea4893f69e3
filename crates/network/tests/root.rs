//! Root tests against the kernel: network namespaces (`berth-test-*`) play containers.
//! They FAIL (not skip) without root. Traffic goes only to loopback and into the namespaces
//! created here. Everything created is removed, also when a test fails (guard `Drop`s).
//! Names: bridges `btest0` / `bt-*`, veths `btv*`, chains `BTEST-*`, subnets 10.213.x.0/24.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_network::dns::{self, DnsConfig};
use berth_network::*;

static SERIAL: Mutex<()> = Mutex::new(());
const PY: &str = "/usr/bin/python3";

fn serial() -> MutexGuard<'static, ()> {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (they create namespaces, bridges and rules)"
    );
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn sh(args: &[&str]) -> (bool, String) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn cfg() -> ManagerConfig {
    ManagerConfig {
        default_address_pools: vec![AddressPool {
            base: "10.213.0.0/16".parse().unwrap(),
            size: 24,
        }],
        default_bridge: "btest0".into(),
        chain_prefix: "BTEST".into(),
        veth_prefix: "btv".into(),
        bridge_prefix: "bt-".into(),
        ..Default::default()
    }
}

/// Removes every trace of the tests' objects, whatever state they are in.
fn sweep() {
    let (_, links) = sh(&["ip", "-o", "link", "show"]);
    for l in links.lines() {
        let name = l
            .split(':')
            .nth(1)
            .unwrap_or("")
            .trim()
            .split('@')
            .next()
            .unwrap_or("");
        if name.starts_with("btv") || name.starts_with("bt-") || name == "btest0" {
            sh(&["ip", "link", "del", "dev", name]);
        }
    }
    let ipt = IptablesCmd::detect().unwrap();
    let bin = ipt.binary().to_string();
    for table in ["filter", "nat"] {
        let (_, rules) = sh(&[&bin, "-w", "-t", table, "-S"]);
        for l in rules.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() > 2
                && w[0] == "-A"
                && !w[1].starts_with("BTEST")
                && (l.contains("BTEST") || l.contains("bt+"))
            {
                let mut args = vec![bin.as_str(), "-w", "-t", table, "-D"];
                args.extend(&w[1..]);
                sh(&args);
            }
        }
        for l in rules.lines() {
            if let Some(c) = l.strip_prefix("-N ") {
                if c.starts_with("BTEST") {
                    sh(&[&bin, "-w", "-t", table, "-F", c]);
                }
            }
        }
        for l in rules.lines() {
            if let Some(c) = l.strip_prefix("-N ") {
                if c.starts_with("BTEST") {
                    sh(&[&bin, "-w", "-t", table, "-X", c]);
                }
            }
        }
    }
    let (_, ns) = sh(&["ip", "netns", "list"]);
    for l in ns.lines() {
        let n = l.split_whitespace().next().unwrap_or("");
        if n.starts_with(&format!("berth-test-{}-", std::process::id())) {
            sh(&["ip", "netns", "del", n]);
        }
    }
}

fn leftovers() -> (usize, usize) {
    let (_, links) = sh(&["ip", "-o", "link", "show"]);
    let l = links
        .lines()
        .filter(|l| l.contains(": btv") || l.contains(": bt-") || l.contains(": btest0"))
        .count();
    let bin = IptablesCmd::detect()
        .unwrap()
        .binary()
        .replace("iptables", "iptables-save");
    let (_, rules) = sh(&[&bin]);
    (
        l,
        rules
            .lines()
            .filter(|l| l.contains("BTEST") || l.contains("bt+"))
            .count(),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    mgr: Option<NetworkManager>,
    children: Vec<Child>,
}

impl Fixture {
    fn new() -> Fixture {
        sweep();
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            mgr: None,
            children: Vec::new(),
        }
    }

    fn open(&mut self, live: &dyn Fn(&str) -> bool) -> NetworkManager {
        let m = NetworkManager::open(self.dir.path(), cfg(), live).unwrap();
        self.mgr = Some(m.clone());
        m
    }

    fn netns(&mut self, tag: &str) -> (String, PathBuf) {
        let name = format!("berth-test-{}-{tag}", std::process::id());
        let (ok, out) = sh(&["ip", "netns", "add", &name]);
        assert!(ok, "ip netns add: {out}");
        (name.clone(), PathBuf::from("/run/netns").join(name))
    }

    /// A TCP server in `ns` on `port` that greets every client with `hello from <ns>`.
    fn server(&mut self, ns: &str, port: u16) {
        let script = format!(
            "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',{port}))\ns.listen(8)\nprint('ready',flush=True)\n\
             while True:\n  c,_=s.accept()\n  c.sendall(b'hello from {ns}')\n  c.close()\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, PY, "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        self.children.push(child);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(m) = self.mgr.take() {
            if let Err(e) = m.purge() {
                eprintln!("purge: {e}");
            }
        }
        sweep();
    }
}

/// Connects from inside `ns` to `ip:port` and returns what the server said.
fn tcp_from(ns: &str, ip: Ipv4Addr, port: u16) -> Result<String, String> {
    let script = "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\nprint(s.recv(100).decode())";
    let o = Command::new("timeout")
        .args([
            "10",
            "ip",
            "netns",
            "exec",
            ns,
            PY,
            "-c",
            script,
            &ip.to_string(),
            &port.to_string(),
        ])
        .output()
        .unwrap();
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

fn tcp_from_host(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Queries the embedded DNS at 127.0.0.11 from inside `ns`: `(rcode, address or "-")`.
fn dig_from(ns: &str, name: &str) -> String {
    let script = r#"import socket,struct,sys
q=struct.pack('>HHHHHH',0x4242,0x0100,1,0,0,0)+b''.join(bytes([len(l)])+l.encode() for l in sys.argv[1].split('.'))+b'\x00'+struct.pack('>HH',1,1)
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(q,('127.0.0.11',53)); r=s.recv(512)
an=struct.unpack('>H',r[6:8])[0]
print(r[3]&15, socket.inet_ntoa(r[-4:]) if an else '-')"#;
    let o = Command::new("timeout")
        .args(["10", "ip", "netns", "exec", ns, PY, "-c", script, name])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}

fn ep_req(name: &str) -> EndpointRequest {
    EndpointRequest {
        name: name.into(),
        ..Default::default()
    }
}

#[test]
fn user_networks_connectivity_isolation_dns_and_cleanup() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = fx.open(&|_| true);
    // Behave as under dockerd's FORWARD policy DROP, for our bridges only: a catch-all DROP
    // after the jump to BTEST-FORWARD.
    for dir in ["-i", "-o"] {
        let (ok, out) = sh(&["iptables", "-w", "-A", "FORWARD", dir, "bt+", "-j", "DROP"]);
        assert!(ok, "{out}");
    }
    let n1 = m
        .create(CreateNetwork {
            name: "bt-one".into(),
            ..Default::default()
        })
        .unwrap();
    m.create(CreateNetwork {
        name: "bt-two".into(),
        ..Default::default()
    })
    .unwrap();
    let (a, a_path) = fx.netns("a");
    let (b, b_path) = fx.netns("b");
    let (c, c_path) = fx.netns("c");
    let ea = m
        .connect("bt-one", "aaaa", &a_path, ep_req("alpha"))
        .unwrap();
    let eb = m
        .connect(
            "bt-one",
            "bbbb",
            &b_path,
            EndpointRequest {
                aliases: vec!["bee".into()],
                ..ep_req("beta")
            },
        )
        .unwrap();
    let ec = m
        .connect("bt-two", "cccc", &c_path, ep_req("gamma"))
        .unwrap();
    assert_eq!(ea.ifname, "eth0");
    let (_, addrs) = sh(&[
        "ip", "netns", "exec", &a, "ip", "-o", "addr", "show", "eth0",
    ]);
    assert!(
        addrs.contains(&format!("{}/{}", ea.ip, ea.prefix_len)),
        "{addrs}"
    );
    let (_, route) = sh(&["ip", "netns", "exec", &a, "ip", "route"]);
    assert!(
        route.contains(&format!("default via {}", ea.gateway)),
        "{route}"
    );
    let (_, link) = sh(&[
        "ip", "netns", "exec", &a, "ip", "-o", "link", "show", "eth0",
    ]);
    assert!(link.contains(&ea.mac), "{link}");

    fx.server(&b, 5000);
    fx.server(&a, 5000);
    // Same network: reachable by IP.
    assert_eq!(
        tcp_from(&a, eb.ip, 5000).unwrap(),
        format!("hello from {b}")
    );
    // Other network: isolated, both ways.
    assert!(tcp_from(&c, eb.ip, 5000).is_err());
    assert!(tcp_from(&c, ea.ip, 5000).is_err());
    // The host reaches containers through the bridge.
    assert_eq!(
        tcp_from_host(SocketAddr::from((ea.ip, 5000))).unwrap(),
        format!("hello from {a}")
    );

    // Embedded DNS in a's namespace at 127.0.0.11, forwarding to a fake upstream on the
    // host's loopback.
    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = up.recv_from(&mut buf) {
            let q = dns::parse_query(&buf[..n]).unwrap();
            let r = dns::build_response(&buf[..n], &q, 0, Some(Ipv4Addr::new(192, 0, 2, 99)));
            let _ = up.send_to(&r, from);
        }
    });
    let sock = dns::bind_in_netns(&a_path, "127.0.0.11:53".parse().unwrap()).unwrap();
    let server = dns::spawn(
        sock,
        Arc::new(m.resolver_for("aaaa")),
        DnsConfig {
            upstreams: vec![up_addr],
            timeout: Duration::from_secs(2),
        },
    );
    assert_eq!(dig_from(&a, "beta"), format!("0 {}", eb.ip));
    assert_eq!(dig_from(&a, "bee"), format!("0 {}", eb.ip));
    assert_eq!(dig_from(&a, "gamma"), "0 192.0.2.99"); // not on a's network: forwarded
    assert_eq!(dig_from(&a, "example.org"), "0 192.0.2.99");
    server.stop().unwrap();
    // And over TCP.
    let l = dns::tcp_bind_in_netns(&a_path, "127.0.0.11:53".parse().unwrap()).unwrap();
    let tcp = dns::spawn_tcp(
        l,
        Arc::new(m.resolver_for("aaaa")),
        DnsConfig {
            upstreams: vec![],
            timeout: Duration::from_secs(1),
        },
    );
    let script = r#"import socket,struct
q=struct.pack('>HHHHHH',7,0x0100,1,0,0,0)+b'\x04beta\x00'+struct.pack('>HH',1,1)
s=socket.create_connection(('127.0.0.11',53),timeout=3); s.sendall(struct.pack('>H',len(q))+q)
n=struct.unpack('>H',s.recv(2))[0]; r=b''
while len(r)<n: r+=s.recv(n-len(r))
print(socket.inet_ntoa(r[-4:]))"#;
    let (ok, out) = sh(&["timeout", "10", "ip", "netns", "exec", &a, PY, "-c", script]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), eb.ip.to_string());
    tcp.stop().unwrap();
    assert_eq!(m.resolve("bt-one", "gamma"), None);
    assert_eq!(m.resolve("bt-two", "gamma"), Some(ec.ip));

    // Removing a network in use is refused; disconnect then remove leaves nothing.
    assert!(matches!(m.remove("bt-one"), Err(NetworkError::Conflict(_))));
    m.disconnect("bt-one", "aaaa").unwrap();
    let (_, l) = sh(&["ip", "netns", "exec", &a, "ip", "-o", "link"]);
    assert!(!l.contains("eth0"), "{l}");
    m.disconnect_all("bbbb").unwrap();
    m.remove(&n1.id).unwrap();
    let (_, links) = sh(&["ip", "-o", "link"]);
    assert!(
        !links.contains(&format!(": bt-{}", &n1.id[..12])),
        "{links}"
    );
    m.disconnect_all("cccc").unwrap();
    m.remove("bt-two").unwrap();
    m.purge().unwrap();
    fx.mgr = None;
    for (_, p) in [(&a, &a_path), (&b, &b_path), (&c, &c_path)] {
        assert!(p.exists());
    }
    // Only our simulated-DROP rules are left (swept by the fixture).
    assert_eq!(leftovers(), (0, 2));
}

#[test]
fn published_ports_on_loopback_and_hairpin() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = fx.open(&|_| true);
    for dir in ["-i", "-o"] {
        sh(&["iptables", "-w", "-A", "FORWARD", dir, "bt+", "-j", "DROP"]);
    }
    let (s, s_path) = fx.netns("srv");
    let (cl, cl_path) = fx.netns("cli");
    let mut ports = parse_publish("127.0.0.1::7000").unwrap();
    ports.extend(parse_publish("7000").unwrap());
    let es = m
        .connect(
            "bridge",
            "ssss",
            &s_path,
            EndpointRequest {
                ports,
                ..ep_req("srv")
            },
        )
        .unwrap();
    let ec = m
        .connect("bridge", "cccc", &cl_path, ep_req("cli"))
        .unwrap();
    assert_eq!(es.ports.len(), 2);
    assert!(es.ports.iter().all(|p| p.host_port != 0));
    fx.server(&s, 7000);
    let want = format!("hello from {s}");
    // 127.0.0.1-published port from the host.
    let p_lo = es.ports[0].host_port;
    assert_eq!(
        tcp_from_host(SocketAddr::from(([127, 0, 0, 1], p_lo))).unwrap(),
        want
    );
    // 0.0.0.0-published port via loopback too.
    let p_any = es.ports[1].host_port;
    assert_eq!(
        tcp_from_host(SocketAddr::from(([127, 0, 0, 1], p_any))).unwrap(),
        want
    );
    // Hairpin: another container reaches the published port through a host address (the
    // bridge's gateway address), and so does the server itself.
    assert_eq!(tcp_from(&cl, ec.gateway, p_any).unwrap(), want);
    assert_eq!(tcp_from(&s, es.gateway, p_any).unwrap(), want);
    // No DNS on the default bridge.
    assert_eq!(m.resolve("bridge", "srv"), None);

    // A host port already in use: clear error, nothing changed.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let before = leftovers();
    let (t, t_path) = fx.netns("t");
    let err = m
        .connect(
            "bridge",
            "tttt",
            &t_path,
            EndpointRequest {
                ports: parse_publish(&format!("127.0.0.1:{busy_port}:80")).unwrap(),
                ..ep_req("t")
            },
        )
        .unwrap_err();
    assert!(matches!(err, NetworkError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("already allocated"), "{err}");
    assert_eq!(leftovers(), before);
    let (_, l) = sh(&["ip", "netns", "exec", &t, "ip", "-o", "link"]);
    assert!(!l.contains("eth0"), "{l}");

    // Disconnect removes the port rules: the port no longer answers.
    m.disconnect("bridge", "ssss").unwrap();
    assert!(tcp_from_host(SocketAddr::from(([127, 0, 0, 1], p_lo))).is_err());
    let (_, nat) = sh(&["iptables", "-w", "-t", "nat", "-S", "BTEST-DNAT"]);
    assert!(!nat.contains("DNAT --to"), "{nat}");
}

#[test]
fn internal_network_has_no_way_out() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = fx.open(&|_| true);
    m.create(CreateNetwork {
        name: "bt-int".into(),
        internal: true,
        ..Default::default()
    })
    .unwrap();
    let (a, a_path) = fx.netns("ia");
    let (b, b_path) = fx.netns("ib");
    let ea = m.connect("bt-int", "ia", &a_path, ep_req("ia")).unwrap();
    let eb = m.connect("bt-int", "ib", &b_path, ep_req("ib")).unwrap();
    let (_, route) = sh(&["ip", "netns", "exec", &a, "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    fx.server(&a, 6000);
    assert_eq!(
        tcp_from(&b, ea.ip, 6000).unwrap(),
        format!("hello from {a}")
    );
    // The host (outside the bridge) cannot reach in... except through the bridge's own
    // address, which is local; Docker behaves the same. Check the forward rules instead.
    let (_, f) = sh(&["iptables", "-w", "-S", "BTEST-ISOLATION-1"]);
    assert!(f.contains("-j DROP"), "{f}");
    let _ = eb;
}

#[test]
fn open_cleans_stale_state() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = fx.open(&|_| true);
    let (_, p) = fx.netns("st");
    let ep = m
        .connect(
            "bridge",
            "dead",
            &p,
            EndpointRequest {
                ports: parse_publish("127.0.0.1::80").unwrap(),
                ..ep_req("dead")
            },
        )
        .unwrap();
    drop(m);
    // A stray veth of ours.
    let (ok, out) = sh(&[
        "ip",
        "link",
        "add",
        "btvstray0",
        "type",
        "veth",
        "peer",
        "name",
        "btvstray1",
    ]);
    assert!(ok, "{out}");
    let m = fx.open(&|id| id != "dead");
    let (_, links) = sh(&["ip", "-o", "link"]);
    assert!(!links.contains("btvstray"), "{links}");
    assert!(!links.contains(&ep.host_veth), "{links}");
    assert!(m.inspect("bridge").unwrap().containers.is_empty());
    let (_, nat) = sh(&["iptables", "-w", "-t", "nat", "-S", "BTEST-DNAT"]);
    assert!(!nat.contains("DNAT --to"), "{nat}");
    m.purge().unwrap();
    fx.mgr = None;
    assert_eq!(leftovers(), (0, 0));
}

#[test]
fn icc_disabled_blocks_traffic_on_the_default_bridge() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = NetworkManager::open(
        fx.dir.path(),
        ManagerConfig {
            icc: false,
            ..cfg()
        },
        &|_| true,
    )
    .unwrap();
    fx.mgr = Some(m.clone());
    let (a, a_path) = fx.netns("ja");
    let (b, b_path) = fx.netns("jb");
    let ea = m.connect("bridge", "ja", &a_path, ep_req("ja")).unwrap();
    m.connect("bridge", "jb", &b_path, ep_req("jb")).unwrap();
    fx.server(&a, 6100);
    assert!(tcp_from(&b, ea.ip, 6100).is_err());
    // The host still reaches it.
    assert_eq!(
        tcp_from_host(SocketAddr::from((ea.ip, 6100))).unwrap(),
        format!("hello from {a}")
    );
}

#[test]
fn everything_is_removed_when_a_test_fails() {
    let _g = serial();
    let r = std::panic::catch_unwind(|| {
        let mut fx = Fixture::new();
        let m = fx.open(&|_| true);
        m.create(CreateNetwork {
            name: "bt-fail".into(),
            ..Default::default()
        })
        .unwrap();
        let (_, p) = fx.netns("fail");
        m.connect(
            "bt-fail",
            "ffff",
            &p,
            EndpointRequest {
                ports: parse_publish("127.0.0.1::80").unwrap(),
                ..ep_req("f")
            },
        )
        .unwrap();
        panic!("simulated test failure");
    });
    assert!(r.is_err());
    assert_eq!(leftovers(), (0, 0));
    let (_, ns) = sh(&["ip", "netns", "list"]);
    assert!(
        !ns.contains(&format!("berth-test-{}-fail", std::process::id())),
        "{ns}"
    );
}

/// Whether host link `name` exists, polled until `want` or `within` passes.
fn link_becomes(name: &str, want: bool, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        let exists = std::path::Path::new("/sys/class/net").join(name).exists();
        if exists == want || std::time::Instant::now() > deadline {
            return exists == want;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An exited container's veth goes with its namespace, without the exit waiting for it; one
/// whose namespace lives on is deleted by the reaper; rules go at once either way.
#[test]
fn exited_containers_veths_go_with_their_namespace() {
    let _g = serial();
    let mut fx = Fixture::new();
    let m = fx.open(&|_| true);
    let (gone, gone_path) = fx.netns("gone");
    let (_, kept_path) = fx.netns("kept");
    let eg = m
        .connect(
            "bridge",
            "gone",
            &gone_path,
            EndpointRequest {
                ports: parse_publish("127.0.0.1::80").unwrap(),
                ..ep_req("gone")
            },
        )
        .unwrap();
    let ek = m
        .connect("bridge", "kept", &kept_path, ep_req("kept"))
        .unwrap();
    // The namespace dies (as when a container's last process exits), then the release.
    let (ok, out) = sh(&["ip", "netns", "del", &gone]);
    assert!(ok, "{out}");
    m.release_exited("gone").unwrap();
    m.release_exited("kept").unwrap();
    let (_, nat) = sh(&["iptables", "-w", "-t", "nat", "-S", "BTEST-DNAT"]);
    assert!(!nat.contains("DNAT --to"), "{nat}");
    assert!(m.inspect("bridge").unwrap().containers.is_empty());
    assert!(
        link_becomes(&eg.host_veth, false, Duration::from_secs(5)),
        "the kernel deletes the veth with its namespace"
    );
    // The namespace that lives on keeps its veth (the release did not delete it) until the
    // reaper's deadline.
    assert!(std::path::Path::new("/sys/class/net")
        .join(&ek.host_veth)
        .exists());
    assert!(
        link_becomes(&ek.host_veth, false, Duration::from_secs(10)),
        "the reaper deletes a veth that outlives its container"
    );
    // The addresses are free again.
    let (_, again_path) = fx.netns("again");
    let ea = m
        .connect("bridge", "again", &again_path, ep_req("again"))
        .unwrap();
    assert!(
        ea.ip == eg.ip || ea.ip == ek.ip,
        "{} {} {}",
        ea.ip,
        eg.ip,
        ek.ip
    );
    m.purge().unwrap();
    fx.mgr = None;
    assert_eq!(leftovers(), (0, 0));
}
