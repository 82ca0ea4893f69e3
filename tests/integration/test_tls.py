"""The API over tcp with TLS, as dockerd serves it (issue 17, item 1).

Certificates are made here with openssl (tls_pki.py). The docker CLI (--tlsverify,
DOCKER_TLS_VERIFY + DOCKER_CERT_PATH), the berth CLI and the Python SDK (docker.tls.TLSConfig)
reach a private daemon over TLS on 127.0.0.1, streams (attach, exec, logs -f, events)
included; clients without a certificate, with one from another CA or an expired one fail the
handshake and the daemon logs each refusal; clear-text tcp is refused on a public address;
unix and tcp listen at once; sockets come from a systemd-style launcher with fd://.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import BERTH, DOCKER, IMAGE, describe, free_port, run_cmd, wait_for
from tls_pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.alice = p.issue("alice", "alice")
    p.stranger = p.issue("stranger", "stranger", ca="other-ca")
    p.expired = p.issue("expired", "expired", expired=True)
    return p


def tls_env(d, port: int, cert_dir: Path) -> dict:
    env = d.env
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(cert_dir))
    return env


def docker_tls(d, env, *args, input=None, timeout=60):
    return run_cmd([DOCKER, *map(str, args)], env=env, input=input, timeout=timeout)


def tls_daemon(daemon_factory, pki, verify=True, extra=()):
    d = daemon_factory(start=False)
    port = free_port()
    d.extra_args += ["-H", f"tcp://127.0.0.1:{port}", *pki.daemon_flags(verify), *extra]
    d.start()
    d.load_busybox()
    return d, port


def handshake(port: int, pki, cert=None, max_version=None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if max_version:
        ctx.maximum_version = max_version
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    return s


def ping_over(s: ssl.SSLSocket) -> bytes:
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_docker_cli_over_tls_with_unix_alongside(daemon_factory, pki):
    d, port = tls_daemon(daemon_factory, pki)
    env = tls_env(d, port, pki.cert_dir("alice", *pki.alice))

    # run --rm (create, attach, start, wait, remove) over TLS.
    p = docker_tls(d, env, "run", "--rm", IMAGE, "echo", "hello over tls")
    assert p.returncode == 0 and p.stdout == "hello over tls\n", describe(p)
    # stdin through the hijacked attach connection, and its half-close.
    p = docker_tls(d, env, "run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done",
                   input="from stdin\n")
    assert p.returncode == 0 and p.stdout == "from stdin\ndone\n", describe(p)

    cid = docker_tls(d, env, "run", "-d", IMAGE, "sh", "-c",
                     "echo one; sleep 1; echo two; sleep 300").stdout.strip()
    assert cid
    p = docker_tls(d, env, "ps", "--no-trunc", "-q")
    assert p.returncode == 0 and cid in p.stdout.split(), describe(p)
    # The unix socket serves at the same time.
    assert cid in d.docker_ok("ps", "--no-trunc", "-q").split()

    # logs -f follows: both lines arrive while the container keeps running.
    follow = subprocess.Popen([DOCKER, "logs", "-f", cid], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline() == "one\n"
        assert follow.stdout.readline() == "two\n"
        assert follow.poll() is None, "logs -f ended while the container runs"
    finally:
        follow.kill()
        follow.wait()

    # exec with stdin and a status.
    p = docker_tls(d, env, "exec", "-i", cid, "sh", "-c", "read x; echo got $x; exit 3",
                   input="abc\n")
    assert p.returncode == 3 and p.stdout == "got abc\n", describe(p)

    # docker attach to a running container: output arrives, then the container's exit.
    att_id = docker_tls(d, env, "run", "-d", IMAGE, "sh", "-c",
                        "sleep 1; echo attached-out; exit 4").stdout.strip()
    p = docker_tls(d, env, "attach", att_id)
    assert p.returncode == 4 and "attached-out" in p.stdout, describe(p)

    # events stream over TLS.
    since = str(int(time.time()) - 1)
    events = subprocess.Popen([DOCKER, "events", "--since", since, "--format",
                               "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        docker_tls(d, env, "create", "--name", "tls-ev", IMAGE, "true")
        line = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "tls-ev" not in line:
            line = events.stdout.readline()
        assert line.strip() == "container create tls-ev", line
    finally:
        events.kill()
        events.wait()

    docker_tls(d, env, "rm", "-f", cid, att_id, "tls-ev")


def test_berth_cli_over_tls(daemon_factory, pki):
    d, port = tls_daemon(daemon_factory, pki)
    cert_dir = pki.cert_dir("alice", *pki.alice)
    # Flags.
    env = d.env
    p = run_cmd([str(BERTH), "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                 "--tlscacert", str(pki.ca), "--tlscert", str(pki.alice[0]),
                 "--tlskey", str(pki.alice[1]), "run", "--rm", IMAGE, "echo", "berth-tls"],
                env=env, timeout=60)
    assert p.returncode == 0 and p.stdout == "berth-tls\n", describe(p)
    # DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, with exec's stdin.
    env = tls_env(d, port, cert_dir)
    cid = run_cmd([str(BERTH), "run", "-d", IMAGE, "sleep", "300"], env=env).stdout.strip()
    assert cid
    p = run_cmd([str(BERTH), "exec", "-i", cid, "cat"], env=env, input="via berth\n")
    assert p.returncode == 0 and p.stdout == "via berth\n", describe(p)
    p = run_cmd([str(BERTH), "ps", "-q", "--no-trunc"], env=env)
    assert cid in p.stdout.split(), describe(p)
    # Without a client certificate the berth CLI fails too.
    env.update(DOCKER_CERT_PATH=str(pki.dir / "nowhere"))
    p = run_cmd([str(BERTH), "--tlscacert", str(pki.ca), "ps"], env=env)
    assert p.returncode != 0, describe(p)
    d.docker_ok("rm", "-f", cid)


def test_python_sdk_over_tls(daemon_factory, pki, monkeypatch):
    import docker

    # requests lets these override the session's CA (docker.tls sets it there).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    d, port = tls_daemon(daemon_factory, pki)
    tls = docker.tls.TLSConfig(client_cert=(str(pki.alice[0]), str(pki.alice[1])),
                               ca_cert=str(pki.ca), verify=True)
    c = docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", tls=tls, timeout=60)
    try:
        assert c.ping()
        assert c.containers.run(IMAGE, ["echo", "sdk"], remove=True) == b"sdk\n"
        ct = c.containers.run(IMAGE, ["sleep", "300"], detach=True)
        rc, out = ct.exec_run(["sh", "-c", "echo in-exec"])
        assert (rc, out) == (0, b"in-exec\n")
        sock = ct.attach_socket(params={"stdout": 1, "stream": 1})
        sock.close()
        assert ct.id in [x.id for x in c.containers.list()]
        ct.remove(force=True)
    finally:
        c.close()


def test_refused_handshakes_are_logged(daemon_factory, pki):
    d, port = tls_daemon(daemon_factory, pki)
    since = d.log_size()

    # The right certificate works, with TLS 1.3 and with TLS 1.2.
    s = handshake(port, pki, pki.alice)
    assert s.version() == "TLSv1.3"
    assert ping_over(s).endswith(b"OK")
    s = handshake(port, pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    assert s.version() == "TLSv1.2"
    assert ping_over(s).endswith(b"OK")

    cases = {"no certificate": None, "another CA": pki.stranger, "expired": pki.expired}
    for what, cert in cases.items():
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            s = handshake(port, pki, cert)
            # With TLS 1.3 the client learns of the refusal at its first read.
            ping_over(s)
    # The docker CLI fails with a certificate from another CA or an expired one.
    for name, cert in (("stranger", pki.stranger), ("expired", pki.expired)):
        env = tls_env(d, port, pki.cert_dir(name, *cert))
        p = docker_tls(d, env, "ps")
        assert p.returncode != 0, describe(p)

    def refusals():
        log = d.log_tail(lines=400, since=since)
        return [ln for ln in log.splitlines() if "TLS handshake from 127.0.0.1:" in ln
                and "refused" in ln]
    lines = wait_for(lambda: len(refusals()) >= 5 and refusals(), timeout=10) or refusals()
    text = "\n".join(lines)
    low = [ln.lower() for ln in lines]
    assert any("no certificates" in ln for ln in low), text
    assert any("unknownissuer" in ln or "unknown issuer" in ln for ln in low), text
    assert any("expired" in ln for ln in low), text


def test_tls_without_verification_takes_any_client(daemon_factory, pki):
    d, port = tls_daemon(daemon_factory, pki, verify=False)
    s = handshake(port, pki)
    assert ping_over(s).endswith(b"OK")
    env = d.env
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    # The docker CLI reads the CA file even when it does not verify with it.
    p = docker_tls(d, env, "--tls", "--tlscacert", pki.ca, "ps")
    assert p.returncode == 0, describe(p)
    p = run_cmd([str(BERTH), "--tls", "ps"], env=env)
    assert p.returncode == 0, describe(p)
    # Clear HTTP to the TLS port gets no answer.
    env.pop("DOCKER_TLS_VERIFY", None)
    p = run_cmd([str(BERTH), "ps"], env=env)
    assert p.returncode != 0, describe(p)


def test_plain_tcp_refused_on_public_address_allowed_on_loopback(daemon_factory):
    d = daemon_factory(start=False)
    port = free_port()
    argv = d.argv() + ["-H", f"tcp://0.0.0.0:{port}"]
    p = run_cmd(argv, timeout=30)
    assert p.returncode == 1, describe(p)
    assert "without TLS" in p.stderr and f"0.0.0.0:{port}" in p.stderr, describe(p)
    assert not os.path.exists(d.sock), "the refused start left its unix socket"
    assert not os.path.exists(os.path.join(d.data_root, "containers")), \
        "the refused start opened the engine"

    d.extra_args += ["-H", f"tcp://127.0.0.1:{port}"]
    d.start()
    assert "without TLS" in d.log_tail()
    env = d.env
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    p = run_cmd([DOCKER, "version", "--format", "{{.Server.Version}}"], env=env)
    assert p.returncode == 0 and p.stdout.strip(), describe(p)


def test_tls_settings_and_hosts_from_daemon_json(daemon_factory, pki, tmp_path):
    d = daemon_factory(start=False)
    port = free_port()
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({
        "hosts": [f"unix://{d.sock}", f"tcp://127.0.0.1:{port}"],
        "tlsverify": True,
        "tlscacert": str(pki.ca),
        "tlscert": str(pki.server_cert),
        "tlskey": str(pki.server_key),
    }))
    d.host_flag = False
    d.extra_args += ["--config-file", str(conf)]
    d.start()
    env = tls_env(d, port, pki.cert_dir("alice", *pki.alice))
    p = docker_tls(d, env, "version", "--format", "{{.Server.Version}}")
    assert p.returncode == 0 and p.stdout.strip(), describe(p)
    # Plain tcp to the TLS port is no HTTP.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        assert b"OK" not in s.recv(100)

    # A missing certificate file: a clear error naming it, exit 1.
    conf.write_text(json.dumps({"tlsverify": True, "tlscacert": "/nonexistent/ca.pem"}))
    d.stop()
    p = run_cmd(d.argv() + ["-H", f"tcp://127.0.0.1:{port}"], timeout=30)
    assert p.returncode == 1 and "/nonexistent/ca.pem" in p.stderr, describe(p)


LAUNCHER = textwrap.dedent("""
    # A stand-in for systemd: binds the sockets, passes them as fds 3.. and execs the daemon.
    import os, socket, sys
    tcp_port, unix_path = int(sys.argv[1]), sys.argv[2]
    argv = sys.argv[3:]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", tcp_port)); t.listen(64)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(unix_path); u.listen(64)
    os.dup2(t.fileno(), 3); os.dup2(u.fileno(), 4)
    os.set_inheritable(3, True); os.set_inheritable(4, True)
    os.environ.update(LISTEN_FDS="2", LISTEN_PID=str(os.getpid()),
                      LISTEN_FDNAMES="berth-tcp:berth-unix")
    os.execv(argv[0], argv)
""")


def test_fd_socket_activation(daemon_factory, pki, tmp_path):
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    d = daemon_factory(start=False)
    port = free_port()
    activated = os.path.join(d.base, "activated.sock")
    d.wrapper = [sys.executable, str(launcher), str(port), activated]
    d.extra_args += ["-H", "fd://", *pki.daemon_flags()]
    d.start()
    d.load_busybox()
    # The inet socket serves TLS; the unix one HTTP.
    env = tls_env(d, port, pki.cert_dir("alice", *pki.alice))
    p = docker_tls(d, env, "run", "--rm", IMAGE, "echo", "activated")
    assert p.returncode == 0 and p.stdout == "activated\n", describe(p)
    env = d.env
    env.update(DOCKER_HOST=f"unix://{activated}")
    p = run_cmd([DOCKER, "ps"], env=env)
    assert p.returncode == 0, describe(p)
    assert "fd://3 (berth-tcp)" in d.log_tail() and "fd://4 (berth-unix)" in d.log_tail()
    d.stop()

    # fd://NAME takes only that socket.
    os.unlink(activated)
    d.extra_args = ["-H", "fd://berth-unix"]
    d.start()
    p = run_cmd([DOCKER, "ps"], env=env)
    assert p.returncode == 0, describe(p)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert "fd://3" not in d.log_tail(lines=30).split("===== start")[-1]
    d.stop()

    # Without sockets from systemd, fd:// is an error that says so.
    p = run_cmd(d.argv(), timeout=30)
    assert p.returncode == 1 and "no sockets found via socket activation" in p.stderr, \
        describe(p)
