"""Daemon lifecycle: crash and restart with live containers, single instance, socket mode.

Each test makes its own daemon (daemon_factory), never the shared one.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time

from conftest import BERTH, IMAGE, describe


def wait_for(pred, timeout: float = 15, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_containers_survive_daemon_kill(daemon_factory):
    d = daemon_factory()
    live = d.docker_ok("run", "-d", "--name", "live", IMAGE, "sh", "-c",
                       "echo before-restart; exec sleep 300").strip()
    dies = d.docker_ok("run", "-d", "--name", "dies", IMAGE, "sh", "-c",
                       "sleep 2; exit 5").strip()
    wait_for(lambda: "before-restart" in d.docker_ok("logs", "live"), what="first log line")
    pid = int(d.inspect("live", "{{.State.Pid}}"))
    assert pid > 0

    d.kill()  # SIGKILL: no chance to clean up
    time.sleep(4)  # `dies` exits while no daemon is listening
    os.kill(pid, 0)  # the container process outlived the daemon (raises if gone)

    d.start()
    out = d.docker_ok("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert re.search(r"^\w{12} live Up", out, re.M), out
    assert "dies" not in out, out
    assert d.inspect("live", "{{.State.Status}}") == "running"
    assert int(d.inspect("live", "{{.State.Pid}}")) == pid
    assert d.inspect("live", "{{.Id}}") == live

    out = d.docker_ok("ps", "-a", "--filter", "name=dies", "--format", "{{.Names}} {{.Status}}")
    assert re.search(r"^dies Exited \(5\)", out, re.M), out
    assert d.inspect("dies", "{{.State.ExitCode}}") == "5"
    assert d.inspect("dies", "{{.Id}}") == dies

    # the restarted daemon drives the surviving container fully
    assert "before-restart" in d.docker_ok("logs", "live")
    p = d.docker("exec", "live", "echo", "exec-after-restart")
    assert p.returncode == 0 and p.stdout == "exec-after-restart\n", describe(p)
    d.docker_ok("stop", "-t", "1", "live", timeout=30)
    assert d.inspect("live", "{{.State.Status}}") == "exited"
    assert d.inspect("live", "{{.State.ExitCode}}") in ("137", "143")
    d.docker_ok("rm", "live", "dies")

    # and still runs new containers
    p = d.docker("run", "--rm", IMAGE, "echo", "ok")
    assert p.returncode == 0 and p.stdout == "ok\n", describe(p)


def test_graceful_restart_keeps_records(daemon_factory):
    d = daemon_factory()
    d.docker_ok("create", "--name", "kept", "-e", "K=v", IMAGE, "sh", "-c", "echo $K")
    assert d.stop() is not None
    d.start()
    assert d.inspect("kept", "{{.State.Status}}") == "created"
    assert d.docker_ok("start", "-a", "kept") == "v\n"
    assert "busybox:latest" in d.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}")


def test_sigterm_exits_cleanly(daemon_factory):
    d = daemon_factory(load=False)
    d.signal(15)
    rc = d.proc.wait(20)
    assert rc == 0, d.log_tail()
    assert not os.path.exists(d.sock) or not d.ping()


def test_second_daemon_same_roots_refused(daemon_factory):
    d = daemon_factory(load=False)
    t0 = time.monotonic()
    p = subprocess.run(d.argv(), capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, describe(p)
    assert time.monotonic() - t0 < 15
    msg = (p.stdout + p.stderr).lower()
    assert re.search(r"already|lock|running|in use", msg), describe(p)
    # the first daemon is untouched: its socket still answers
    assert d.running() and d.ping(), d.log_tail()


def test_second_daemon_same_data_root_refused(daemon_factory):
    d = daemon_factory(load=False)
    other_exec = os.path.join(d.base, "run2")
    other_sock = os.path.join(d.base, "b2.sock")
    p = subprocess.run(d.argv(exec_root=other_exec, sock=other_sock), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0, describe(p)
    msg = (p.stdout + p.stderr).lower()
    assert re.search(r"already|lock|running|in use", msg), describe(p)
    assert d.running() and d.ping(), d.log_tail()


def test_socket_mode(daemon_factory):
    d = daemon_factory(load=False)
    st = os.stat(d.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)


def test_daemon_help(prerequisites):
    p = subprocess.run([str(BERTH), "daemon", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, describe(p)
    for flag in ("--data-root", "--exec-root", "-H"):
        assert flag in p.stdout, p.stdout
