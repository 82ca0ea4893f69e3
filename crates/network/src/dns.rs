//! The embedded DNS server: answers A queries for names on the container's user-defined
//! networks (through a [`Resolver`]) and forwards everything else to upstream resolvers (the
//! host's, from `/etc/resolv.conf`). UDP only. Docker serves it at 127.0.0.11 inside each
//! container: [`bind_in_netns`] binds that socket inside the container's namespace, after
//! which [`spawn`] serves it from the host (upstream sockets live in the host's namespace,
//! so host resolvers on loopback keep working).

use std::fs::File;
use std::io;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::CloneFlags;

/// Answers local names.
pub trait Resolver: Send + Sync {
    /// The address of `name` (no trailing dot, any case), if it is a local name.
    fn resolve(&self, name: &str) -> Option<Ipv4Addr>;
}

impl<F: Fn(&str) -> Option<Ipv4Addr> + Send + Sync> Resolver for F {
    fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        self(name)
    }
}

/// Where and how to forward non-local queries.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Upstream servers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long to wait for each upstream.
    pub timeout: Duration,
}

impl DnsConfig {
    /// Upstreams from the host's `/etc/resolv.conf`, 2 s timeout.
    pub fn from_host() -> DnsConfig {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        DnsConfig {
            upstreams: parse_resolv_conf(&text),
            timeout: Duration::from_secs(2),
        }
    }
}

/// The `nameserver` entries of a resolv.conf, as port-53 socket addresses.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lower-case name without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Byte offset just past the question.
    pub end: usize,
}

/// Parses the header and first question of a query; `None` if malformed or not a query.
pub fn parse_query(pkt: &[u8]) -> Option<Question> {
    if pkt.len() < 12 || pkt[2] & 0x80 != 0 {
        return None;
    }
    if u16::from_be_bytes([pkt[4], pkt[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *pkt.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let l = pkt.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*pkt.get(i)?, *pkt.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*pkt.get(i + 2)?, *pkt.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// Builds a response to `query` (whose question ends at `q.end`) with `rcode` and the given
/// A record, if any.
pub fn build_response(query: &[u8], q: &Question, rcode: u8, answer: Option<Ipv4Addr>) -> Vec<u8> {
    let mut r = Vec::with_capacity(q.end + 16);
    r.extend_from_slice(&query[0..2]);
    let opcode_rd = query[2] & 0x79;
    r.push(0x80 | opcode_rd); // QR, opcode, RD copied
    r.push(0x80 | (rcode & 0x0f)); // RA
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..q.end]);
    if let Some(ip) = answer {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&TYPE_A.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&600u32.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    }
    r
}

/// Sends `query` to each upstream in turn and returns the first reply with the same id.
pub fn forward(query: &[u8], cfg: &DnsConfig) -> Option<Vec<u8>> {
    for up in &cfg.upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let Ok(sock) = UdpSocket::bind(bind) else {
            continue;
        };
        if sock.set_read_timeout(Some(cfg.timeout)).is_err() || sock.connect(up).is_err() {
            continue;
        }
        if sock.send(query).is_err() {
            continue;
        }
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + cfg.timeout;
        while std::time::Instant::now() < deadline {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 2 && buf[..2] == query[..2] => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    None
}

/// Computes the reply to one query packet; `None` for garbage (dropped).
pub fn answer(query: &[u8], resolver: &dyn Resolver, cfg: &DnsConfig) -> Option<Vec<u8>> {
    let q = parse_query(query)?;
    if q.qclass == CLASS_IN && !q.name.is_empty() {
        if let Some(ip) = resolver.resolve(&q.name) {
            let a = (q.qtype == TYPE_A).then_some(ip);
            // AAAA and other types of a local name: NOERROR, no answer (as Docker).
            if a.is_some() || q.qtype == TYPE_AAAA || q.qtype != TYPE_A {
                return Some(build_response(query, &q, 0, a));
            }
        }
    }
    Some(forward(query, cfg).unwrap_or_else(|| build_response(query, &q, 2, None)))
}

/// Serves `socket` until `stop` is set; [`DnsServer::stop`] wakes the blocked receive by
/// shutting the socket down. Local answers are sent inline; forwarded queries are handled on
/// short-lived threads.
pub fn serve(
    socket: UdpSocket,
    resolver: Arc<dyn Resolver>,
    cfg: DnsConfig,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    // Only a backstop: a shutdown wakes the receive at once.
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_BACKSTOP))?;
    let mut buf = [0u8; 4096];
    loop {
        let received = socket.recv_from(&mut buf);
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (n, from) = match received {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let pkt = buf[..n].to_vec();
        let Some(q) = parse_query(&pkt) else { continue };
        let local = q.qclass == CLASS_IN && resolver.resolve(&q.name).is_some();
        if local {
            if let Some(r) = answer(&pkt, resolver.as_ref(), &cfg) {
                let _ = socket.send_to(&r, from);
            }
            continue;
        }
        let (sock, res, cfg) = (socket.try_clone()?, Arc::clone(&resolver), cfg.clone());
        std::thread::spawn(move || {
            if let Some(r) = answer(&pkt, res.as_ref(), &cfg) {
                let _ = sock.send_to(&r, from);
            }
        });
    }
}

/// How often a server whose socket could not be shut down notices `stop` anyway.
const STOP_BACKSTOP: Duration = Duration::from_secs(1);

/// A running DNS server thread; stopped (and joined) on [`DnsServer::stop`] or drop.
pub struct DnsServer {
    stop: Arc<AtomicBool>,
    /// The served socket's descriptor (a duplicate), shut down to wake the thread.
    waker: Option<OwnedFd>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl DnsServer {
    /// Stops the server and waits for its thread (at once: its socket is shut down, which
    /// wakes a blocked receive or accept, and closes it, so a container's network namespace
    /// does not outlive the container because of it).
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(fd) = self.waker.take() {
            // ENOTCONN on an unconnected UDP socket still wakes its receivers.
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("dns server thread panicked")),
            None => Ok(()),
        }
    }

    fn start(
        name: &str,
        waker: io::Result<OwnedFd>,
        serve: impl FnOnce(Arc<AtomicBool>) -> io::Result<()> + Send + 'static,
    ) -> DnsServer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(s))
            .expect("spawning the dns thread");
        DnsServer {
            stop,
            waker: waker.ok(),
            handle: Some(handle),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts [`serve`] on a thread.
pub fn spawn(socket: UdpSocket, resolver: Arc<dyn Resolver>, cfg: DnsConfig) -> DnsServer {
    let waker = socket.as_fd().try_clone_to_owned();
    DnsServer::start("berth-dns", waker, move |stop| {
        serve(socket, resolver, cfg, stop)
    })
}

fn serve_tcp_conn(mut c: TcpStream, resolver: &dyn Resolver, cfg: &DnsConfig) -> io::Result<()> {
    c.set_nonblocking(false)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    loop {
        let mut len = [0u8; 2];
        match c.read_exact(&mut len) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            r => r?,
        }
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        c.read_exact(&mut q)?;
        let Some(r) = answer(&q, resolver, cfg) else {
            return Ok(());
        };
        let n = u16::try_from(r.len()).map_err(|_| io::Error::other("response too long"))?;
        c.write_all(&n.to_be_bytes())?;
        c.write_all(&r)?;
    }
}

/// Serves DNS over TCP on `listener` until `stop` is set (a shutdown of the listener, by
/// [`DnsServer::stop`], wakes the accept); one thread per connection.
pub fn serve_tcp(
    listener: TcpListener,
    resolver: Arc<dyn Resolver>,
    cfg: DnsConfig,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match accepted {
            Ok((c, _)) => {
                let (res, cfg) = (Arc::clone(&resolver), cfg.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve_tcp_conn(c, res.as_ref(), &cfg) {
                        tracing::debug!("dns tcp connection: {e}");
                    }
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Starts [`serve_tcp`] on a thread.
pub fn spawn_tcp(listener: TcpListener, resolver: Arc<dyn Resolver>, cfg: DnsConfig) -> DnsServer {
    let waker = listener.as_fd().try_clone_to_owned();
    DnsServer::start("berth-dns-tcp", waker, move |stop| {
        serve_tcp(listener, resolver, cfg, stop)
    })
}

/// The `resolv.conf` for a container, from the host's. With the embedded server
/// (user-defined networks): `nameserver 127.0.0.11`, the host's `search`/`options` and
/// `options ndots:0`, as Docker writes it. Without (default bridge): the host's file with
/// loopback nameservers removed (they are unreachable from the container), falling back to
/// Docker's 8.8.8.8 / 8.8.4.4 when none remain.
pub fn container_resolv_conf(host: &str, embedded: bool) -> String {
    let mut out = String::new();
    let mut servers = 0;
    let is_loopback = |a: &str| {
        a.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    };
    for line in host.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if embedded {
                    continue;
                }
                if w.next().is_some_and(|a| !is_loopback(a)) {
                    out.push_str(line.trim());
                    out.push('\n');
                    servers += 1;
                }
            }
            Some("search") | Some("domain") | Some("options") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if embedded {
        let ext: Vec<String> = parse_resolv_conf(host)
            .iter()
            .map(|a| a.ip().to_string())
            .collect();
        format!(
            "# Generated by berth: embedded DNS server\nnameserver 127.0.0.11\n{out}options ndots:0\n\n# ExtServers: [{}]\n",
            ext.join(" ")
        )
    } else if servers == 0 {
        format!("{out}nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    } else {
        out
    }
}

/// Runs `f` on a fresh thread that has joined the network namespace at `netns` (the calling
/// thread's namespace is untouched). Sockets created by `f` stay in that namespace.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path: PathBuf = netns.to_path_buf();
    std::thread::spawn(move || {
        let ns = File::open(&path)?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// Binds a TCP listener to `addr` inside the namespace at `netns`.
pub fn tcp_bind_in_netns(netns: &Path, addr: SocketAddr) -> io::Result<TcpListener> {
    in_netns(netns, move || TcpListener::bind(addr))
}

/// Binds a UDP socket to `addr` inside the namespace at `netns` (e.g. 127.0.0.11:53 in a
/// container, whose `lo` must be up).
pub fn bind_in_netns(netns: &Path, addr: SocketAddr) -> io::Result<UdpSocket> {
    in_netns(netns, move || UdpSocket::bind(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&id.to_be_bytes());
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn resolver() -> Arc<dyn Resolver> {
        Arc::new(|n: &str| (n == "web").then_some(Ipv4Addr::new(10, 0, 0, 2)))
    }

    #[test]
    fn parse_and_answer_local() {
        let q = query(0x1234, "Web", TYPE_A);
        let p = parse_query(&q).unwrap();
        assert_eq!(p.name, "web");
        let cfg = DnsConfig {
            upstreams: vec![],
            timeout: Duration::from_millis(100),
        };
        let r = answer(&q, resolver().as_ref(), &cfg).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
        let r = answer(&query(1, "web", TYPE_AAAA), resolver().as_ref(), &cfg).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
        assert_eq!(r[3] & 0x0f, 0);
        // Unknown with no upstream: SERVFAIL.
        let r = answer(&query(2, "example.org", TYPE_A), resolver().as_ref(), &cfg).unwrap();
        assert_eq!(r[3] & 0x0f, 2);
        assert!(parse_query(&[1, 2, 3]).is_none());
    }

    #[test]
    fn container_resolv_conf_variants() {
        let host = "nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions edns0\n";
        let e = container_resolv_conf(host, true);
        assert!(e.contains("nameserver 127.0.0.11\n"), "{e}");
        assert!(!e.contains("nameserver 10.1.1.1"), "{e}");
        assert!(
            e.contains("search corp\n") && e.contains("options ndots:0"),
            "{e}"
        );
        assert!(e.contains("# ExtServers: [127.0.0.53 10.1.1.1]"), "{e}");
        let d = container_resolv_conf(host, false);
        assert_eq!(d, "nameserver 10.1.1.1\nsearch corp\noptions edns0\n");
        let d = container_resolv_conf("nameserver 127.0.0.1\n", false);
        assert_eq!(d, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn tcp_serving() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let cfg = DnsConfig {
            upstreams: vec![],
            timeout: Duration::from_millis(100),
        };
        let server = spawn_tcp(l, resolver(), cfg);
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for id in [1u16, 2] {
            let q = query(id, "web", TYPE_A);
            c.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
            c.write_all(&q).unwrap();
            let mut len = [0u8; 2];
            c.read_exact(&mut len).unwrap();
            let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
            c.read_exact(&mut r).unwrap();
            assert_eq!(&r[..2], &id.to_be_bytes());
            assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
        }
        drop(c);
        server.stop().unwrap();
    }

    /// Stopping wakes the blocked receive or accept at once (a container's exit waits on
    /// it), and the served port is closed afterwards.
    #[test]
    fn stop_is_prompt_and_closes_the_socket() {
        let cfg = DnsConfig {
            upstreams: vec![],
            timeout: Duration::from_millis(100),
        };
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_addr = sock.local_addr().unwrap();
        let udp = spawn(sock, resolver(), cfg.clone());
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_addr = l.local_addr().unwrap();
        let tcp = spawn_tcp(l, resolver(), cfg);
        // Let both threads block.
        std::thread::sleep(Duration::from_millis(50));
        for server in [udp, tcp] {
            let t = std::time::Instant::now();
            server.stop().unwrap();
            assert!(
                t.elapsed() < Duration::from_millis(100),
                "stop took {:?}",
                t.elapsed()
            );
        }
        UdpSocket::bind(udp_addr).expect("the UDP port is free again");
        assert!(TcpStream::connect(tcp_addr).is_err());
    }

    #[test]
    fn resolv_conf() {
        let t = "# c\nnameserver 10.0.0.1\nsearch x\nnameserver fe80::1%eth0\nnameserver\n";
        let v = parse_resolv_conf(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].to_string(), "10.0.0.1:53");
    }

    #[test]
    fn serve_and_forward_to_fake_upstream() {
        // Fake upstream on loopback answering everything with 9.9.9.9.
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up_addr = up.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = up.recv_from(&mut buf) {
                let q = parse_query(&buf[..n]).unwrap();
                let r = build_response(&buf[..n], &q, 0, Some(Ipv4Addr::new(9, 9, 9, 9)));
                up.send_to(&r, from).unwrap();
            }
        });
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let cfg = DnsConfig {
            upstreams: vec![up_addr],
            timeout: Duration::from_secs(2),
        };
        let server = spawn(sock, resolver(), cfg);
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        c.send_to(&query(7, "web", TYPE_A), addr).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[n - 4..n], &[10, 0, 0, 2]);
        c.send_to(&query(8, "example.org", TYPE_A), addr).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..2], &[0, 8]);
        assert_eq!(&buf[n - 4..n], &[9, 9, 9, 9]);
        server.stop().unwrap();
    }
}
