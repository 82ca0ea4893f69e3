"""Daemon lifecycle: crash and restart with live containers, single instance, socket mode.

Each test makes its own daemon (daemon_factory), never the shared one.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time

from conftest import BERTH, BERTHD, IMAGE, describe


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
    assert "Usage: berth daemon [OPTIONS]" in p.stdout, p.stdout


def test_berth_daemon_becomes_berthd_in_place(daemon_factory):
    # `berth daemon` execs the berthd next to berth: the process started is the daemon itself
    # (its pid, its signals, its exit status), and its command line still reads `berth daemon`
    d = daemon_factory(load=False)
    pid = d.proc.pid
    assert os.readlink(f"/proc/{pid}/exe") == str(BERTHD.resolve())
    assert open(f"/proc/{pid}/comm").read().strip() == "berthd"
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert argv[0] == f"{BERTH} daemon".encode(), argv
    assert argv[1:3] == [b"--data-root", d.data_root.encode()], argv
    assert d.stop() == 0  # SIGTERM reached the daemon, which shut down cleanly


def test_berth_daemon_usage_errors(prerequisites):
    p = subprocess.run([str(BERTH), "daemon", "--nope"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 125, describe(p)
    assert p.stderr.startswith("unknown flag: --nope\n\nUsage:  berth daemon [OPTIONS]"), \
        describe(p)


def test_a_deep_exec_root_still_runs_execs_and_ttys(daemon_factory):
    # Shim sockets live under the exec root (shims/exec-<64 hex>/shim.sock); with a deep exec
    # root their paths pass sun_path's 108 bytes and must still bind and connect.
    d = daemon_factory(start=False)
    d.exec_root = os.path.join(d.base, "r" * 40, "run")
    d.start()
    d.load_busybox()
    assert len(os.path.join(d.exec_root, "shims", "exec-" + "0" * 64, "shim.sock")) > 108
    c = d.docker_ok("run", "-d", IMAGE, "sleep", "300").strip()
    assert d.docker_ok("exec", c, "echo", "from-exec").strip() == "from-exec"
    p = d.docker("exec", "-t", c, "echo", "with-tty")
    assert p.returncode == 0 and "with-tty" in p.stdout, describe(p)
    p = d.docker("run", "--rm", "-t", IMAGE, "echo", "run-tty")
    assert p.returncode == 0 and "run-tty" in p.stdout, describe(p)
    d.docker_ok("rm", "-f", c)


def test_rm_containers_that_ended_while_the_daemon_was_down_are_removed(daemon_factory):
    # dockerd removes an --rm container that is not running when it starts again; one still
    # running is kept (berth's shims keep containers alive across the restart).
    d = daemon_factory()
    ends = d.docker_ok("run", "-d", "--rm", "--name", "ends", IMAGE, "sleep", "1").strip()
    lives = d.docker_ok("run", "-d", "--rm", "--name", "lives", IMAGE, "sleep", "300").strip()
    d.kill()
    time.sleep(2.5)  # `ends` exits while no daemon is listening
    d.start()
    wait_for(lambda: "ends" not in d.docker_ok("ps", "-a", "--format", "{{.Names}}"),
             what="--rm container removed")
    assert not os.path.exists(os.path.join(d.data_root, "containers", ends))
    assert not os.path.exists(os.path.join(d.data_root, "image", "rw", ends))
    assert d.inspect("lives", "{{.State.Status}}") == "running"
    d.docker_ok("rm", "-f", lives)
    wait_for(lambda: not os.path.exists(os.path.join(d.data_root, "image", "rw", lives)),
             what="rw layer of the removed container gone")


def test_rm_containers_get_a_volatile_scratch_layer(daemon_factory):
    # an --rm container's writable layer is thrown away with it: its overlay is volatile (no
    # sync of the host filesystem at unmount); other containers' layers are not.
    d = daemon_factory()
    scratch = d.docker_ok("run", "-d", "--rm", IMAGE, "sleep", "300").strip()
    kept = d.docker_ok("run", "-d", IMAGE, "sleep", "300").strip()
    mounts = open("/proc/self/mountinfo").read()

    def options(cid):
        line = next(l for l in mounts.splitlines()
                    if f"/containers/{cid}/rootfs " in l)
        return line.split(" - ")[1]
    assert "volatile" in options(scratch), options(scratch)
    assert "volatile" not in options(kept), options(kept)
    d.docker_ok("rm", "-f", scratch, kept)
    # `restart` keeps an --rm container (dockerd's HasBeenManuallyRestarted), and its volatile
    # layer mounts again with what it held (overlayfs leaves work/incompat/volatile behind)
    c = d.docker_ok("run", "-d", "--rm", IMAGE, "sh", "-c", "echo hi >> /f; sleep 300").strip()
    wait_for(lambda: d.docker("exec", c, "cat", "/f").stdout == "hi\n", what="first write")
    d.docker_ok("restart", "-t", "0", c)
    wait_for(lambda: d.docker("exec", c, "cat", "/f").stdout == "hi\nhi\n", what="kept layer")
    d.docker_ok("stop", "-t", "0", c)
    wait_for(lambda: c not in d.docker_ok("ps", "-aq", "--no-trunc"), what="removed after stop")


def test_shims_run_the_daemons_sealed_copy_of_the_runtime(daemon_factory):
    # The daemon seals one copy of berth-runtime at start-up; each shim opens it, so the
    # runtime need not copy itself (CVE-2019-5736) at every start and exec, and a shim keeps
    # working after the daemon that started it is gone.
    d = daemon_factory()
    c = d.docker_ok("run", "-d", IMAGE, "sleep", "300").strip()
    shim = int(open(os.path.join(d.exec_root, "shims", c, "shim.pid")).read())
    fds = [os.readlink(f"/proc/{shim}/fd/{n}") for n in os.listdir(f"/proc/{shim}/fd")]
    assert any(f.startswith("/memfd:berth-runtime") for f in fds), fds
    d.kill()
    d.start()
    assert d.docker_ok("exec", c, "echo", "after").strip() == "after"
    d.docker_ok("stop", "-t", "1", c)  # the old shim runs `runtime delete` from its own copy
    assert d.inspect(c, "{{.State.Status}}") == "exited"
    d.docker_ok("rm", c)
