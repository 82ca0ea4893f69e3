"""Bridge networking through the real docker CLI: the default bridge (and `--network none`),
published ports, user networks with DNS by name, isolation, and bad input. Traffic goes only to
127.0.0.1 and to berth's own containers. These tests need the shared daemon to own berth's
bridge (not BERTH_TEST_BRIDGE=0)."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import IMAGE, describe, free_port


HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def fetch(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    err = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError as e:
            err = e
            time.sleep(0.2)
    raise AssertionError(f"{url}: {err}")


def netname() -> str:
    return "bt-net-" + secrets.token_hex(3)


def veths() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines() if "bveth" in ln}


def test_network_ls_has_the_predefined_networks(berth):
    out = berth.docker_ok("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    for want in ("bridge bridge", "host host", "none null"):
        assert want in out, out


def test_network_none_only_loopback(berth):
    out = berth.sh("cat /proc/net/dev", "--network", "none")
    ifaces = [ln.split(":")[0].strip() for ln in out.splitlines()[2:] if ":" in ln]
    assert ifaces == ["lo"], out


def test_default_network_is_berths_bridge(berth):
    # Docker's default: the container has its own eth0 on the daemon's bridge, never the host's.
    out = berth.sh("cat /proc/net/dev; ip -o -4 addr show eth0")
    ifaces = [ln.split(":")[0].strip() for ln in out.splitlines()[2:] if ":" in ln and "inet" not in ln]
    assert sorted(ifaces) == ["eth0", "lo"], out
    subnet = json.loads(berth.docker_ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Subnet"]
    addr = out.split("inet ")[1].split()[0]
    assert ipaddress.ip_interface(addr).ip in ipaddress.ip_network(subnet), (addr, subnet)


def test_published_port_on_loopback(berth, names):
    name, port = names(), free_port()
    berth.docker_ok("run", "-d", "--name", name, "-h", "webhost", "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c", HTTPD)
    assert fetch(f"http://127.0.0.1:{port}/").strip() == "hello-webhost"
    assert berth.docker_ok("port", name, "80").strip() == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in berth.docker_ok("ps", "--filter", f"name={name}", "--format", "{{.Ports}}")
    ports = json.loads(berth.docker_ok("inspect", "-f", "{{json .NetworkSettings.Ports}}", name))
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    berth.docker_ok("rm", "-f", name)
    # The rule went with the container.
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_publish_all_picks_free_ports(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, "--expose", "80", "-P", IMAGE, "sh", "-c", HTTPD)
    host = berth.docker_ok("port", name, "80").strip()
    port = int(host.rsplit(":", 1)[1])
    assert port > 0
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")


def test_port_already_taken_is_refused_and_nothing_is_left(berth, names):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        before = veths()
        p = berth.docker("run", "--rm", "--name", names(), "-p", f"127.0.0.1:{port}:80", IMAGE, "true")
        assert p.returncode == 125, describe(p)
        assert "already allocated" in p.stderr or "in use" in p.stderr, describe(p)
        assert veths() == before


def test_user_network_dns_aliases_and_isolation(berth, names):
    net, other = netname(), netname()
    berth.docker_ok("network", "create", net)
    berth.docker_ok("network", "create", other)
    try:
        db, web = names(), names()
        berth.docker_ok("run", "-d", "--name", db, "--network", net, "--network-alias", "database", IMAGE, "sleep", "300")
        berth.docker_ok("run", "-d", "--name", web, "--network", other, IMAGE, "sh", "-c", HTTPD)
        out = berth.sh(f"ping -c1 -W2 {db} && ping -c1 -W2 database && cat /etc/resolv.conf", "--network", net)
        assert "1 packets received" in out, out
        assert "nameserver 127.0.0.11" in out, out
        web_ip = json.loads(berth.docker_ok("inspect", web))[0]["NetworkSettings"]["Networks"][other]["IPAddress"]
        assert web_ip
        # Reachable from its own network, not from another one.
        # (busybox-static's wget crashes in glibc's resolver: nc speaks HTTP here.)
        same = berth.run("--network", other, IMAGE, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web_ip} 80")
        assert same.returncode == 0 and "hello-" in same.stdout, describe(same)
        cross = berth.run("--network", net, IMAGE, "sh", "-c", f"echo | nc -w 2 {web_ip} 80")
        assert cross.returncode != 0, describe(cross)
        # In use: refused with a conflict; free: removed.
        p = berth.docker("network", "rm", net)
        assert p.returncode != 0 and "active endpoints" in p.stderr, describe(p)
        berth.docker_ok("rm", "-f", db, web)
    finally:
        berth.docker("network", "rm", net)
        berth.docker("network", "rm", other)
    assert net not in berth.docker_ok("network", "ls", "--format", "{{.Name}}")


def test_network_rm_right_after_stop_or_rm(berth, names):
    """Regression: `stop`/`rm -f` returned before the container's endpoint was released, so an
    immediate `network rm` failed with "active endpoints" now and then. As dockerd: a stopped
    container that names the network does not keep it from being removed."""
    for i in range(4):
        net = netname()
        berth.docker_ok("network", "create", net)
        try:
            c = names()
            berth.docker_ok("run", "-d", "--name", c, "--network", net, IMAGE, "sleep", "300")
            if i % 2:
                berth.docker_ok("rm", "-f", c)
            else:
                berth.docker_ok("stop", "-t", "0", c)
            p = berth.docker("network", "rm", net)
            assert p.returncode == 0, describe(p)
            if not i % 2:
                # Its network is gone: starting it again is a clear error.
                p = berth.docker("start", c)
                assert p.returncode != 0 and "not found" in p.stderr, describe(p)
                berth.docker_ok("rm", "-f", c)
        finally:
            berth.docker("network", "rm", net)


def test_internal_network_has_no_route_out(berth):
    net = netname()
    berth.docker_ok("network", "create", "--internal", net)
    try:
        out = berth.sh("ip route", "--network", net)
        assert "default" not in out, out
    finally:
        berth.docker("network", "rm", net)


def test_fixed_ip_and_connect_disconnect(berth, names):
    net = netname()
    berth.docker_ok("network", "create", "--subnet", "10.231.7.0/24", net)
    try:
        name = names()
        berth.docker_ok("run", "-d", "--name", name, "--network", net, "--ip", "10.231.7.50", IMAGE, "sleep", "300")
        assert berth.docker_ok("exec", name, "ip", "-o", "-4", "addr", "show", "eth0").split()[3] == "10.231.7.50/24"
        berth.docker_ok("network", "connect", "bridge", name)
        assert "eth1" in berth.docker_ok("exec", name, "ip", "-o", "link")
        berth.docker_ok("network", "disconnect", "bridge", name)
        assert "eth1" not in berth.docker_ok("exec", name, "ip", "-o", "link")
        berth.docker_ok("rm", "-f", name)
    finally:
        berth.docker("network", "rm", net)


def test_network_bad_input(berth):
    net = netname()
    berth.docker_ok("network", "create", "--subnet", "10.231.8.0/24", net)
    try:
        p = berth.docker("network", "create", "--subnet", "10.231.8.128/25", netname())
        assert p.returncode != 0, describe(p)
        p = berth.docker("network", "create", net)
        assert p.returncode != 0, describe(p)
        p = berth.docker("network", "create", "--subnet", "10.231.9.0/24", "--gateway", "10.9.9.1", netname())
        assert p.returncode != 0, describe(p)
        p = berth.docker("run", "--rm", "--network", net, "--ip", "10.231.99.5", IMAGE, "true")
        assert p.returncode != 0, describe(p)
        p = berth.docker("run", "--rm", "--network", "no-such-net", IMAGE, "true")
        assert p.returncode == 125 and "network no-such-net not found" in p.stderr, describe(p)
        p = berth.docker("network", "rm", "bridge")
        assert p.returncode != 0 and "pre-defined" in p.stderr, describe(p)
    finally:
        berth.docker("network", "rm", net)


def test_containers_leave_no_interfaces_behind(berth):
    before = veths()
    for _ in range(3):
        berth.docker_ok("run", "--rm", IMAGE, "true")
    # An exited container's veth goes with its network namespace, which the kernel tears
    # down just after the exit (berth does not wait for it; it deletes a straggler itself
    # after a second).
    deadline = time.monotonic() + 5
    while veths() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert veths() - before == set()


def test_published_udp_port(berth, names, tmp_path):
    # busybox-static has no UDP server: a static C echo server is bind-mounted in.
    src = os.path.join(os.path.dirname(__file__), "fixtures", "udp_echo.c")
    exe = tmp_path / "udp_echo"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(exe), src], check=True)
    name, port = names(), free_port()
    berth.docker_ok("run", "-d", "--name", name, "-v", f"{exe}:/udp_echo:ro", "-p", f"127.0.0.1:{port}:5353/udp",
                    IMAGE, "/udp_echo", "5353")
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while True:
            s.sendto(b"ping-udp", ("127.0.0.1", port))
            try:
                assert s.recvfrom(100)[0] == b"ping-udp"
                break
            except socket.timeout:
                assert time.monotonic() < deadline, "no UDP echo through the published port"


def test_container_network_mode_shares_the_namespace(berth, names):
    a = names()
    berth.docker_ok("run", "-d", "--name", a, IMAGE, "sh", "-c", "nc -l -p 7000 -e echo shared-ns; sleep 300")
    out = berth.sh("sleep 0.5; nc -w 2 127.0.0.1 7000", "--network", f"container:{a}")
    assert "shared-ns" in out, out
    mine = berth.docker_ok("exec", a, "cat", "/sys/class/net/eth0/address").strip()
    theirs = berth.sh("cat /sys/class/net/eth0/address", "--network", f"container:{a}").strip()
    assert mine == theirs


def test_dns_flags_and_extra_hosts(berth):
    out = berth.sh("cat /etc/resolv.conf /etc/hosts", "--dns", "10.9.8.7", "--dns-search", "a.test",
                   "--dns-option", "ndots:3", "--add-host", "db.local:10.1.2.3", "-h", "myhost")
    assert "nameserver 10.9.8.7" in out and "search a.test" in out and "options ndots:3" in out, out
    assert "10.1.2.3\tdb.local" in out, out
    assert "\tmyhost" in out, out


def test_100_containers_on_one_network_get_distinct_addresses(berth, names):
    net = netname()
    berth.docker_ok("network", "create", net)
    try:
        made = [names() for _ in range(100)]

        def start(n):
            berth.docker_ok("run", "-d", "--name", n, "--network", net, IMAGE, "sh", "-c",
                            "while true; do nc -l -p 7000 -e echo pong; done", timeout=120)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(start, made))
        ips = {n: json.loads(berth.docker_ok("inspect", n))[0]["NetworkSettings"]["Networks"][net]["IPAddress"] for n in made}
        assert len(set(ips.values())) == len(made), ips
        # Every one answers, by name, from a client on the same network.
        script = "; ".join(f"nc -w 2 {n} 7000" for n in made)
        out = berth.sh(script, "--network", net, timeout=120)
        assert out.count("pong") == len(made), out
        berth.docker_ok("rm", "-f", *made, timeout=180)
    finally:
        berth.docker("network", "rm", net)


def test_daemon_restart_keeps_connectivity(berth, names):
    """SIGKILL the shared daemon and start it again: published ports and DNS keep working."""
    net = netname()
    berth.docker_ok("network", "create", net)
    web, port = names(), free_port()
    try:
        berth.docker_ok("run", "-d", "--name", web, "--network", net, "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c", HTTPD)
        assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
        berth.kill()
        assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")  # no daemon needed
        berth.start()
        assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
        out = berth.sh(f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web} 80", "--network", net)
        assert "hello-" in out, out
        berth.docker_ok("rm", "-f", web)
    finally:
        berth.docker("network", "rm", net)


def test_works_with_forward_policy_drop(berth, names):
    """dockerd sets the FORWARD policy to DROP; berth's own rules must keep its traffic flowing."""
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    policy = next(ln.split()[2] for ln in rules.splitlines() if ln.startswith("-P FORWARD"))
    net, port = netname(), free_port()
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    try:
        berth.docker_ok("network", "create", net)
        web = names()
        berth.docker_ok("run", "-d", "--name", web, "--network", net, "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c", HTTPD)
        assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
        out = berth.sh(f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web} 80", "--network", net)
        assert "hello-" in out, out
        berth.docker_ok("rm", "-f", web)
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)
        berth.docker("network", "rm", net)
