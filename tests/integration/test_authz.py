"""Authorization by role (issue 17, item 2): daemon.json's `authorization` maps unix peers
(uid/gid from SO_PEERCRED, clients run as other users with setpriv) and TLS client
certificates (subject CN) to admin / operator / viewer; each role against each class of
request; refusals are 403s naming the rule, log lines and `daemon` events."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from conftest import DOCKER, IMAGE, describe, free_port, run_cmd
from tls_pki import Pki

OPERATOR_UID, VIEWER_UID, STRANGER_UID = 1701, 1702, 1703


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    for cn in ("alice", "olivia", "victor", "mallory"):
        setattr(p, cn, p.issue(cn, cn))
    return p


@pytest.fixture
def authz_daemon(daemon_factory, pki, tmp_path):
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run clients as other users")
    d = daemon_factory(start=False)
    allowed = os.path.join(d.base, "allowed")
    os.makedirs(allowed)
    port = free_port()
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"authorization": {
        "identities": {f"uid:{OPERATOR_UID}": "operator", f"uid:{VIEWER_UID}": "viewer",
                       "cn:alice": "admin", "cn:olivia": "operator", "cn:victor": "viewer"},
        "allowed-bind-paths": [allowed],
    }}))
    d.extra_args += ["--config-file", str(conf), "-H", f"tcp://127.0.0.1:{port}",
                     *pki.daemon_flags()]
    d.start()
    d.load_busybox()
    d.allowed, d.port = allowed, port
    return d


def as_uid(d, uid: int, *args, input=None):
    """The docker CLI as `uid` over the unix socket (the socket's group as a supplementary
    group so that it may connect; SO_PEERCRED still reports uid and primary gid `uid`)."""
    home = os.path.join(d.base, f"home-{uid}")
    os.makedirs(home, exist_ok=True)
    os.chown(home, uid, uid)
    sock_gid = os.stat(d.sock).st_gid
    env = d.env
    env.update(HOME=home, DOCKER_CONFIG=home)
    return run_cmd(["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={sock_gid}",
                    DOCKER, *map(str, args)], env=env, input=input, timeout=60)


def as_cert(d, pki, cn: str, *args):
    cert_dir = pki.cert_dir(cn, *getattr(pki, cn))
    env = d.env
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{d.port}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(cert_dir))
    return run_cmd([DOCKER, *map(str, args)], env=env, timeout=60)


def ok(p):
    assert p.returncode == 0, describe(p)
    return p.stdout


def refused(p, rule: str):
    assert p.returncode != 0, describe(p)
    assert f"authorization denied by berth (rule {rule})" in p.stderr, describe(p)


def operator_checks(d, run):
    """`run(*args)` runs the docker CLI as an operator."""
    assert ok(run("run", "--rm", IMAGE, "echo", "op")) == "op\n"
    assert ok(run("run", "--rm", "-v", f"{d.allowed}:/a", IMAGE, "ls", "/a")) == ""
    assert ok(run("run", "--rm", "--cap-add", "NET_BIND_SERVICE", IMAGE, "true")) == ""
    cid = ok(run("run", "-d", IMAGE, "sleep", "300")).strip()
    assert ok(run("exec", cid, "echo", "in")) == "in\n"
    refused(run("exec", "--privileged", cid, "true"), "privileged-exec")
    refused(run("run", "--rm", "--privileged", IMAGE, "true"), "privileged")
    refused(run("run", "--rm", "--cap-add", "SYS_ADMIN", IMAGE, "true"), "cap-add")
    for flag in ("--pid", "--network", "--ipc", "--uts", "--userns"):
        refused(run("run", "--rm", f"{flag}=host", IMAGE, "true"), "host-namespace")
    refused(run("run", "--rm", "-v", "/etc:/x", IMAGE, "true"), "bind-mount")
    refused(run("run", "--rm", "--mount", "type=bind,src=/root,dst=/x", IMAGE, "true"),
            "bind-mount")
    refused(run("run", "--rm", "--device", "/dev/null:/dev/x", IMAGE, "true"), "devices")
    refused(run("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE, "true"),
            "security-opt")
    refused(run("run", "--rm", "--security-opt", "apparmor=unconfined", IMAGE, "true"),
            "security-opt")
    refused(run("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/etc",
                "hostetc"), "bind-mount")
    ok(run("rm", "-f", cid))
    # Nothing refused was created.
    assert "hostetc" not in d.docker_ok("volume", "ls", "-q").split()


def viewer_checks(d, run):
    cid = d.docker_ok("run", "-d", IMAGE, "sh", "-c", "echo viewed; sleep 300").strip()
    try:
        assert cid in ok(run("ps", "-q", "--no-trunc")).split()
        assert json.loads(ok(run("inspect", cid)))[0]["Id"] == cid
        assert ok(run("logs", cid)) == "viewed\n"
        ok(run("images"))
        ok(run("events", "--since", "1", "--until", str(int(time.time()) + 1)))
        refused(run("run", "--rm", IMAGE, "true"), "read-only")
        refused(run("exec", cid, "true"), "read-only")
        refused(run("stop", cid), "read-only")
        refused(run("rm", "-f", cid), "read-only")
        # The docker CLI words a refused upgrade itself; the status is the daemon's 403.
        p = run("attach", cid)
        assert p.returncode != 0 and "received 403" in p.stderr, describe(p)
        refused(run("pull", "busybox"), "read-only")
    finally:
        d.docker_ok("rm", "-f", cid)


def test_unix_operator(authz_daemon):
    operator_checks(authz_daemon, lambda *a: as_uid(authz_daemon, OPERATOR_UID, *a))


def test_unix_viewer(authz_daemon):
    viewer_checks(authz_daemon, lambda *a: as_uid(authz_daemon, VIEWER_UID, *a))


def test_unix_unknown_uid_gets_nothing_and_root_is_admin(authz_daemon):
    refused(as_uid(authz_daemon, STRANGER_UID, "ps"), "no-role")
    refused(as_uid(authz_daemon, STRANGER_UID, "version"), "no-role")
    # Root (the test harness's own client) is admin.
    ok(authz_daemon.docker("run", "--rm", "--privileged", IMAGE, "true"))


def test_tls_roles_by_certificate_cn(authz_daemon, pki):
    d = authz_daemon
    ok(as_cert(d, pki, "alice", "run", "--rm", "--privileged", "-v", "/etc:/x:ro", IMAGE,
               "true"))
    operator_checks(d, lambda *a: as_cert(d, pki, "olivia", *a))
    viewer_checks(d, lambda *a: as_cert(d, pki, "victor", *a))
    refused(as_cert(d, pki, "mallory", "ps"), "no-role")


def test_refusals_are_events_and_log_lines(authz_daemon):
    d = authz_daemon
    since = str(time.time() - 1)
    log_from = d.log_size()
    refused(as_uid(d, OPERATOR_UID, "run", "--rm", "--privileged", IMAGE, "true"),
            "privileged")
    out = d.docker_ok("events", "--since", since, "--until", str(time.time() + 1),
                      "--filter", "type=daemon", "--format", "{{json .}}")
    events = [json.loads(x) for x in out.splitlines()]
    denied = [e for e in events if e["Action"] == "authorization-denied"]
    assert len(denied) == 1, out
    attrs = denied[0]["Actor"]["Attributes"]
    assert attrs["identity"] == f"uid:{OPERATOR_UID}" and attrs["role"] == "operator", attrs
    assert attrs["rule"] == "privileged" and attrs["method"] == "POST", attrs
    assert attrs["path"].endswith("/containers/create"), attrs
    log = d.log_tail(lines=200, since=log_from)
    lines = [ln for ln in log.splitlines() if "authorization denied" in ln]
    assert len(lines) == 1 and f"uid:{OPERATOR_UID}" in lines[0] and "privileged" in lines[0], log


def test_without_authorization_everyone_on_the_socket_may_do_anything(daemon_factory):
    d = daemon_factory()
    ok(as_uid(d, STRANGER_UID, "run", "--rm", "--privileged", IMAGE, "true"))
