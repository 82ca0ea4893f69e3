"""Talking to containers and looking into them: logs (`-f`, rotation, log drivers), `exec`,
`-it` through a pty, stdin; copying and observing: `cp` both ways (symlink confinement, stopped
containers), `export`, `diff`, `top` and `stats`; through the real docker CLI, the Python SDK
and `berth`. None of these tests needs the bridge network."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import pty
import re
import select
import socket
import stat
import struct
import subprocess
import tarfile
import tempfile
import termios
import time
import uuid
from urllib.parse import quote

import pytest

from conftest import DOCKER, IMAGE, describe, wait_for


def test_logs(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sh", "-c",
                    "echo one; echo two >&2; sleep 0.3; echo three")
    berth.docker_ok("wait", name, timeout=30)
    p = berth.docker("logs", name)
    assert p.returncode == 0, describe(p)
    assert p.stdout == "one\nthree\n"
    assert p.stderr == "two\n"
    tail = berth.docker_ok("logs", "--tail", "1", name)
    assert tail == "three\n"
    stamped = berth.docker_ok("logs", "-t", name).splitlines()
    assert len(stamped) == 2 and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", stamped[0]), stamped


def test_logs_follow(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sh", "-c",
                    "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done")
    t0 = time.monotonic()
    p = berth.docker("logs", "-f", name, timeout=30)
    assert p.returncode == 0, describe(p)
    assert p.stdout == "".join(f"line{i}\n" for i in range(1, 6))
    # -f returns when the container exits
    assert time.monotonic() - t0 < 25


def test_log_rotation_and_drivers(berth, names):
    c = names()
    berth.docker_ok("run", "--name", c, "--log-opt", "max-size=2k", "--log-opt", "max-file=3", IMAGE,
                    "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
    path = berth.inspect(c)["LogPath"]
    sizes = [os.path.getsize(p) for p in (path, path + ".1", path + ".2")]
    assert all(s <= 2000 for s in sizes), sizes
    assert not os.path.exists(path + ".3")
    out = berth.docker_ok("logs", c).split()
    assert out[-1] == "line-199" and "line-0" not in out, out[:3]
    assert out == [f"line-{i}" for i in range(200 - len(out), 200)], "kept lines are in order"
    p = berth.docker("run", "--log-opt", "max-sise=1k", IMAGE, "true")
    assert p.returncode != 0 and "unknown log opt 'max-sise'" in p.stderr, describe(p)
    loc = names()
    berth.docker_ok("run", "--name", loc, "--log-driver", "local", IMAGE, "echo", "hello-local")
    assert berth.docker_ok("logs", loc) == "hello-local\n"
    none = names()
    berth.docker_ok("run", "--name", none, "--log-driver", "none", IMAGE, "echo", "x")
    p = berth.docker("logs", none)
    assert p.returncode != 0 and "does not support reading" in p.stderr, describe(p)


def test_exec(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    p = berth.docker("exec", name, "echo", "x")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "x\n"

    p = berth.docker("exec", name, "sh", "-c", "exit 4")
    assert p.returncode == 4, describe(p)

    p = berth.docker("exec", "-i", name, "cat", input="piped through exec\n")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "piped through exec\n"

    p = berth.docker("exec", "-e", "FOO=bar", "-w", "/tmp", name, "sh", "-c", "echo $FOO; pwd")
    assert p.stdout == "bar\n/tmp\n", describe(p)

    # the exec'd process is in the container's pid namespace
    p = berth.docker("exec", name, "cat", "/proc/1/cmdline")
    assert p.stdout.split("\0")[0] == "sleep", describe(p)


def test_exec_environment_as_dockerd(berth, names):
    """As dockerd (golden exec cases): TERM=xterm goes with the exec's own terminal, and an
    exec as another user gets that user's HOME."""
    name = names()
    berth.docker_ok("run", "-d", "-t", "--name", name, IMAGE, "sleep", "300")
    p = berth.docker("exec", name, "sh", "-c", "echo TERM=$TERM HOME=$HOME")
    assert p.stdout.strip() == "TERM= HOME=/root", describe(p)
    p = berth.docker("exec", "-u", "nobody", name, "sh", "-c", "echo HOME=$HOME")
    assert p.stdout.strip() == "HOME=/nonexistent", describe(p)  # nobody in the image's passwd


def test_exec_in_stopped_container_fails(berth, names):
    name = names()
    berth.docker_ok("create", "--name", name, IMAGE, "true")
    p = berth.docker("exec", name, "echo", "x")
    assert p.returncode != 0
    assert "is not running" in p.stderr, describe(p)


# -- stdin and ttys -----------------------------------------------------------------------------


def _read_pty(master: int, proc: subprocess.Popen, timeout: float) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError as e:  # EIO: the slave side is closed
                if e.errno == errno.EIO:
                    break
                raise
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            # drain what is left
            while select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
            break
    return buf


def _run_in_pty(env: dict, argv: list[str], timeout: float = 30,
                send: bytes | None = None) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    try:
        if send is not None:
            time.sleep(1.0)
            os.write(master, send)
        out = _read_pty(master, proc, timeout)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            raise AssertionError(f"docker -it did not exit; output so far: {out!r}")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, out


def test_run_interactive_tty(berth):
    rc, out = _run_in_pty(berth.env, [DOCKER, "run", "-it", "--rm", IMAGE, "sh", "-c",
                                      "tty; echo done"])
    text = out.decode(errors="replace")
    assert rc == 0, text
    assert "/dev/pts/0" in text, text
    assert "done" in text, text
    # a TTY turns \n into \r\n
    assert "done\r\n" in text, text


def test_run_tty_exit_code_and_stdin(berth):
    rc, out = _run_in_pty(berth.env, [DOCKER, "run", "-it", "--rm", IMAGE, "sh"],
                          send=b"echo typed-$((6*7)); exit 3\r")
    text = out.decode(errors="replace")
    assert "typed-42" in text, text
    assert rc == 3, text


def test_run_stdin_cat(berth):
    data = "".join(f"line {i}\n" for i in range(200))
    p = berth.run("-i", IMAGE, "cat", input=data)
    assert p.returncode == 0, describe(p)
    assert p.stdout == data


def test_a_slow_attach_reader_gets_every_line(berth):
    """Issue 14 item 3: attached output is never dropped. The reader waits before it reads
    anything, far longer than the daemon's buffers last; every line arrives, in order (the
    container waits, as with dockerd). The old berth delivered a prefix cut mid-line."""
    lines = 1_000_000
    cmd = (f"{DOCKER} run --rm {IMAGE} seq 1 {lines} | "
           "(sleep 3; python3 -c 'import sys; n = 0\n"
           "for i, l in enumerate(sys.stdin, 1):\n"
           "    assert int(l) == i, (i, l); n = i\n"
           "print(n)')")
    r = subprocess.run(["bash", "-c", cmd], env=berth.env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, describe(r)
    assert r.stdout.strip() == str(lines), describe(r)


def test_a_stopped_reader_does_not_hold_back_docker_stop(berth, names):
    """An attach client that never reads cannot keep a container from stopping: once the
    container is being stopped, output waits a short grace for it, then drops it."""
    n = names()
    berth.docker_ok("run", "-d", "--name", n, IMAGE, "sh", "-c", "while true; do seq 1 10000; done")
    # Attached, and never read: the pipe fills and the client stalls.
    stalled = subprocess.Popen([DOCKER, "attach", "--no-stdin", n], env=berth.env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        started = time.monotonic()
        berth.docker_ok("stop", "-t", "1", n, timeout=30)
        assert time.monotonic() - started < 15
        state = json.loads(berth.docker_ok("inspect", n))[0]["State"]
        assert state["Running"] is False
    finally:
        stalled.kill()
        stalled.wait()
        berth.docker("rm", "-f", n)


# -- `cp`, `export`, `diff`, `top`, `stats` -----------------------------------------------------


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def running(berth):
    """A running busybox container (removed afterwards)."""
    made = []

    def make(*flags, cmd=("sleep", "1000")):
        n = name("cp")
        berth.docker_ok("run", "-d", "--name", n, *flags, IMAGE, *cmd)
        made.append(n)
        return n

    yield make
    for n in made:
        berth.docker("rm", "-f", n)


def make_tree(root: str) -> str:
    src = os.path.join(root, "tree")
    os.makedirs(os.path.join(src, "sub", "deeper"))
    with open(os.path.join(src, "sub", "exec.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(src, "sub", "exec.sh"), 0o741)
    with open(os.path.join(src, "sub", "deeper", "data.txt"), "w") as f:
        f.write("payload\n")
    os.chmod(os.path.join(src, "sub", "deeper"), 0o750)
    os.symlink("sub/exec.sh", os.path.join(src, "rel-link"))
    os.symlink("/etc/passwd", os.path.join(src, "abs-link"))
    return src


def test_docker_cp_round_trips_a_tree_with_modes_and_symlinks(berth, running):
    c = running()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_tree(tmp)
        berth.docker_ok("cp", src, f"{c}:/copied")
        out = berth.docker_ok("exec", c, "sh", "-c",
                              "stat -c '%a %n' /copied/sub/exec.sh /copied/sub/deeper; "
                              "readlink /copied/rel-link; readlink /copied/abs-link; "
                              "cat /copied/sub/deeper/data.txt")
        assert "741 /copied/sub/exec.sh" in out, out
        assert "750 /copied/sub/deeper" in out, out
        assert "sub/exec.sh\n/etc/passwd\n" in out, out
        assert "payload" in out
        # Contents only (`SRC/.`) into an existing directory.
        berth.docker_ok("exec", c, "mkdir", "/contents")
        berth.docker_ok("cp", src + "/.", f"{c}:/contents")
        assert berth.docker_ok("exec", c, "cat", "/contents/sub/deeper/data.txt") == "payload\n"
        # And back.
        back = os.path.join(tmp, "back")
        berth.docker_ok("cp", f"{c}:/copied", back)
        assert stat.S_IMODE(os.stat(os.path.join(back, "sub", "exec.sh")).st_mode) == 0o741
        assert stat.S_IMODE(os.stat(os.path.join(back, "sub", "deeper")).st_mode) == 0o750
        assert os.readlink(os.path.join(back, "rel-link")) == "sub/exec.sh"
        assert os.readlink(os.path.join(back, "abs-link")) == "/etc/passwd"
        with open(os.path.join(back, "sub", "deeper", "data.txt")) as f:
            assert f.read() == "payload\n"
        # A single file to a new name, and a file from the image.
        berth.docker_ok("cp", f"{c}:/etc/passwd", os.path.join(tmp, "pw"))
        with open(os.path.join(tmp, "pw")) as f:
            assert f.read().startswith("root:")


def test_docker_cp_path_rules_and_errors(berth, running):
    c = running()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_tree(tmp)
        p = berth.docker("cp", f"{c}:/does/not/exist", tmp)
        assert p.returncode != 0
        assert f"Could not find the file /does/not/exist in container {c}" in p.stderr, p.stderr
        # A directory onto an existing file.
        p = berth.docker("cp", src, f"{c}:/etc/passwd")
        assert p.returncode != 0, describe(p)
        assert "cannot copy directory" in p.stderr, p.stderr
        # A missing parent.
        p = berth.docker("cp", src, f"{c}:/no/such/parent/x")
        assert p.returncode != 0, describe(p)
        p = berth.docker("cp", f"nosuch-{uuid.uuid4().hex[:6]}:/etc", tmp)
        assert p.returncode != 0
        assert "No such container" in p.stderr, p.stderr
    status, headers, _ = berth.request("HEAD", f"/containers/{c}/archive?path=/etc/passwd")
    assert status == 200
    lower = {k.lower(): v for k, v in headers.items()}
    import base64
    st = json.loads(base64.b64decode(lower["x-docker-container-path-stat"]))
    assert st["name"] == "passwd" and st["size"] > 0 and st["linkTarget"] == ""
    assert set(st) == {"name", "size", "mode", "mtime", "linkTarget"}


def test_symlinks_in_the_container_cannot_escape_its_root(berth, running):
    with tempfile.TemporaryDirectory(dir="/tmp") as host_dir:
        canary = os.path.join(host_dir, "canary")
        with open(canary, "w") as f:
            f.write("untouched\n")
        c = running(cmd=("sh", "-c",
                         f"ln -s / /escape; ln -s ../../../../.. /up; mkdir -p {host_dir}; "
                         f"mkdir -p /box; ln -s {host_dir} /box/hostdir; sleep 1000"))
        berth.docker_ok("exec", c, "ls", "/up")  # the links exist
        local = os.path.join(host_dir, "..", f"payload-{uuid.uuid4().hex[:6]}")
        with open(local, "w") as f:
            f.write("evil\n")
        try:
            for cli in (berth.docker, berth.berth_cli):
                for dest in (f"/escape{host_dir}/canary", f"/up{host_dir}/canary",
                             f"/box/hostdir/canary"):
                    p = cli("cp", local, f"{c}:{dest}")
                    assert p.returncode == 0, describe(p)
                # A tar stream that plants its own link to the host directory, then writes
                # through it.
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as t:
                    ln = tarfile.TarInfo("planted")
                    ln.type = tarfile.SYMTYPE
                    ln.linkname = host_dir
                    t.addfile(ln)
                    f = tarfile.TarInfo("planted/pwned")
                    data = b"pwned\n"
                    f.size = len(data)
                    t.addfile(f, io.BytesIO(data))
                p = cli("cp", "-", f"{c}:/tmp", input=buf.getvalue(), text=False)
                assert p.returncode == 0, p.stderr
                with open(canary) as f:
                    assert f.read() == "untouched\n"
                assert sorted(os.listdir(host_dir)) == ["canary"], os.listdir(host_dir)
            # Whatever landed, landed inside the container.
            out = berth.docker_ok("exec", c, "sh", "-c", f"cat {host_dir}/canary {host_dir}/pwned")
            assert "evil" in out and "pwned" in out, out
            # Reading through the links never reads the host file.
            for path in (f"/up{host_dir}/canary", f"/escape{host_dir}/canary"):
                p = berth.docker("cp", f"{c}:{path}", "-", text=False)
                assert p.returncode == 0
                assert b"untouched" not in p.stdout and b"evil" in p.stdout
        finally:
            os.unlink(local)


def test_docker_cp_on_stopped_containers(berth):
    c = name("cpstop")
    berth.docker_ok("create", "--name", c, IMAGE, "cat", "/hello.txt")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "hello.txt")
            with open(f, "w") as fh:
                fh.write("from the host\n")
            berth.docker_ok("cp", f, f"{c}:/hello.txt")
            berth.docker_ok("start", "-a", c)
            assert berth.docker_ok("logs", c) == "from the host\n"
            # Exited now: copy out.
            out = os.path.join(tmp, "out.txt")
            berth.docker_ok("cp", f"{c}:/hello.txt", out)
            with open(out) as fh:
                assert fh.read() == "from the host\n"
        # The temporary mounts are gone.
        with open("/proc/self/mountinfo") as mi:
            assert not [l for l in mi if "/cp-" in l and berth.data_root in l]
    finally:
        berth.docker("rm", "-f", c)


def test_docker_export_lists_the_root_filesystem(berth, running):
    c = running(cmd=("sh", "-c", "echo x > /exported-marker; sleep 1000"))
    berth.docker_ok("exec", c, "ls", "/exported-marker")
    p = subprocess.run(f"{berth.env.get('DOCKER_BIN', '/usr/local/bin/docker')} export {c} | tar t",
                       shell=True, env=berth.env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    names = p.stdout.split()
    assert "exported-marker" in names
    assert "bin/busybox" in names or "bin/sh" in names, names[:20]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "c.tar")
        p = berth.berth_cli("export", "-o", out, c)
        assert p.returncode == 0, describe(p)
        with tarfile.open(out) as t:
            assert "exported-marker" in t.getnames()


def test_docker_diff_shows_changes(berth):
    c = name("diff")
    berth.docker_ok("run", "--name", c, IMAGE, "sh", "-c",
                    "echo x >> /etc/passwd; mkdir /newdir; touch /newdir/f; rm /etc/group")
    try:
        lines = berth.docker_ok("diff", c).splitlines()
        for want in ("C /etc", "C /etc/passwd", "A /newdir", "A /newdir/f", "D /etc/group"):
            assert want in lines, lines
        assert not [l for l in lines if l.endswith("/etc/hosts") or l.endswith("/etc/resolv.conf")]
        assert berth.berth_cli("diff", c).stdout.splitlines() == lines
        p = berth.docker("diff", "nosuchcontainer-x")
        assert p.returncode != 0 and "No such container" in p.stderr
    finally:
        berth.docker("rm", "-f", c)


def test_docker_top(berth, running):
    c = running()
    out = berth.docker_ok("top", c)
    header, *rows = out.splitlines()
    assert "PID" in header.split() and "CMD" in header.split(), out
    assert len(rows) == 1 and rows[0].endswith("sleep 1000"), out
    out = berth.docker_ok("top", c, "-o", "pid,comm")
    assert out.split()[:2] == ["PID", "COMMAND"], out
    assert "sleep" in out
    assert berth.berth_cli("top", c).stdout.splitlines()[0].split() == header.split()
    stopped = name("top")
    berth.docker_ok("create", "--name", stopped, IMAGE, "true")
    try:
        p = berth.docker("top", stopped)
        assert p.returncode != 0 and "is not running" in p.stderr, p.stderr
    finally:
        berth.docker("rm", "-f", stopped)


def test_docker_stats_no_stream_shows_the_memory_limit(berth, running):
    c = running("-m", "64m")
    out = berth.docker_ok("stats", "--no-stream", c)
    header, row = out.splitlines()[:2]
    for col in ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                "BLOCK I/O", "PIDS"):
        assert col in header, header
    assert "/ 64MiB" in row, row
    assert c in row
    mem = berth.docker_ok("stats", "--no-stream", "--format", "{{.MemUsage}}", c).strip()
    assert mem.endswith("/ 64MiB"), mem
    for cli in (berth.berth_cli,):
        p = cli("stats", "--no-stream", c)
        assert p.returncode == 0, describe(p)
        assert p.stdout.splitlines()[0].split() == header.split(), p.stdout
        assert "/ 64MiB" in p.stdout, p.stdout
        p = cli("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", c)
        assert p.stdout.strip().startswith(c + " ") and p.stdout.strip().endswith("/ 64MiB")


def test_sdk_stats_has_dockerd_keys(berth, running):
    c = running()
    s = berth.client.containers.get(c).stats(stream=False)
    for k in ("read", "preread", "pids_stats", "cpu_stats", "precpu_stats", "memory_stats",
              "blkio_stats"):
        assert k in s, s.keys()
    for k in ("total_usage", "usage_in_kernelmode", "usage_in_usermode"):
        assert k in s["cpu_stats"]["cpu_usage"]
    assert "system_cpu_usage" in s["cpu_stats"] and s["cpu_stats"]["online_cpus"] >= 1
    assert "throttling_data" in s["cpu_stats"]
    assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
    assert "stats" in s["memory_stats"]
    assert s["pids_stats"]["current"] >= 1
    assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # two samples
    if berth.bridge:
        assert "eth0" in s["networks"] and "rx_bytes" in s["networks"]["eth0"]
    # Streaming: one object per second.
    stream = berth.client.api.stats(c, stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["preread"] == first["read"]
    status, _, body = berth.request("GET", "/containers/nosuch-xyz/stats?stream=false")
    assert status == 404 and json.loads(body)["message"] == "No such container: nosuch-xyz"
    for path in ("top", "changes", "export", "archive?path=/"):
        status, _, body = berth.request("GET", f"/containers/nosuch-xyz/{path}")
        assert status == 404, (path, body)


def test_berth_cp_follows_docker_rules(berth, running):
    c = running()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_tree(tmp)
        p = berth.berth_cli("cp", src, f"{c}:/viaberth")
        assert p.returncode == 0, describe(p)
        out = berth.docker_ok("exec", c, "sh", "-c",
                              "stat -c '%a' /viaberth/sub/exec.sh; readlink /viaberth/rel-link")
        assert out.split() == ["741", "sub/exec.sh"], out
        back = os.path.join(tmp, "back")
        p = berth.berth_cli("cp", f"{c}:/viaberth", back)
        assert p.returncode == 0, describe(p)
        assert stat.S_IMODE(os.stat(os.path.join(back, "sub", "deeper")).st_mode) == 0o750
        assert os.readlink(os.path.join(back, "abs-link")) == "/etc/passwd"
        # Contents only into an existing local directory.
        os.mkdir(os.path.join(tmp, "contents"))
        p = berth.berth_cli("cp", f"{c}:/viaberth/sub/.", os.path.join(tmp, "contents"))
        assert p.returncode == 0, describe(p)
        assert sorted(os.listdir(os.path.join(tmp, "contents"))) == ["deeper", "exec.sh"]
        # A tar stream out.
        p = berth.berth_cli("cp", f"{c}:/etc/passwd", "-", text=False)
        assert p.returncode == 0
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
            assert t.getnames() == ["passwd"]
        p = berth.berth_cli("cp", f"{c}:/nonexistent", tmp)
        assert p.returncode == 1
        assert p.stderr.strip() == (
            f"Error response from daemon: Could not find the file /nonexistent in container {c}")
        p = berth.berth_cli("cp", src, f"{c}:/etc/passwd")
        assert p.returncode == 1 and "cannot copy directory" in p.stderr
        p = berth.berth_cli("cp", src, os.path.join(tmp, "x"))
        assert p.returncode == 1 and "must specify at least one container source" in p.stderr


def test_stats_stream_redraws_each_second(berth, running):
    c = running()
    for argv in ([berth.env.get("DOCKER_BIN", "/usr/local/bin/docker")],
                 [str(__import__("conftest").BERTH)]):
        proc = subprocess.Popen(argv + ["stats", c], env=berth.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            out, _ = proc.communicate(timeout=3.5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        headers = [line for line in out.splitlines() if "CONTAINER ID" in line]
        assert len(headers) >= 2, (argv, out)
        assert c[:12] in out or c in out


# -- detach keys (issue 15) ---------------------------------------------------------------------


def _pty_session(env: dict, argv: list[str], steps: list[tuple[float, bytes]],
                 timeout: float = 20) -> tuple[int, bytes]:
    """Runs argv on a pty; each step waits its seconds (reading), then types its bytes."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    out = b""
    try:
        for delay, data in steps:
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    try:
                        out += os.read(master, 4096)
                    except OSError:
                        break
            os.write(master, data)
        out += _read_pty(master, proc, timeout)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{argv} did not exit after detaching; output: {out!r}")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, out


def _hijack(berth, path: str, body: bytes | None = None) -> tuple[socket.socket, bytes]:
    """POSTs path with Upgrade: tcp; returns the socket and the response head."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(berth.sock)
    head = (f"POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n\r\n")
    s.sendall(head.encode() + (body or b""))
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        assert chunk, f"connection closed in the response head: {got!r}"
        got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    return s, head + b"\r\n\r\n" + rest


def _recv_until(s: socket.socket, needle: bytes, have: bytes = b"", timeout: float = 10) -> bytes:
    deadline = time.monotonic() + timeout
    while needle not in have and time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        have += chunk
    assert needle in have, f"{needle!r} never came: {have!r}"
    return have


def _recv_to_eof(s: socket.socket, timeout: float = 10) -> bytes:
    """Reads until the daemon ends the stream; fails if it does not within timeout."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"the stream did not end after the detach keys: {got!r}")


def _state(berth, n: str) -> dict:
    return json.loads(berth.docker_ok("inspect", n))[0]["State"]


def test_docker_cli_detaches_with_ctrl_p_ctrl_q_and_detach_keys(berth, names):
    """docker run -it / attach / exec -it / start -ai: ctrl-p ctrl-q (or --detach-keys)
    leaves the container running. As with dockerd and docker CLI 28: `run` and `start -a`
    exit 0 silently, `attach` and `exec` print "read escape sequence" and exit 1."""
    n = names()
    rc, out = _pty_session(berth.env, [DOCKER, "run", "-it", "--name", n, IMAGE, "sh"],
                           [(2, b"echo alive-$((6*7))\r"), (1, b"\x10\x11")])
    text = out.decode(errors="replace")
    assert "alive-42" in text, text
    assert rc == 0, text
    assert "read escape sequence" not in text, text
    assert _state(berth, n)["Running"] is True

    rc, out = _pty_session(berth.env, [DOCKER, "attach", n],
                           [(1, b"echo back-$((2*3))\r"), (1, b"\x10\x11")])
    text = out.decode(errors="replace")
    assert "back-6" in text, text
    assert "read escape sequence" in text, text
    assert rc == 1, text
    assert _state(berth, n)["Running"] is True

    rc, out = _pty_session(berth.env, [DOCKER, "exec", "-it", "--detach-keys", "ctrl-a,b", n,
                                       "sh"],
                           [(2, b"echo in-exec\r"), (1, b"\x10\x11echo still-here\r"),
                            (1, b"\x01b")])
    text = out.decode(errors="replace")
    assert "still-here" in text, "ctrl-p ctrl-q is not the sequence here: " + text
    assert "read escape sequence" in text, text
    assert rc == 1, text
    assert _state(berth, n)["Running"] is True

    # the shell detached from above still has its stdin: attach again and it answers
    berth.docker_ok("stop", "-t", "0", n)
    rc, out = _pty_session(berth.env, [DOCKER, "start", "-ai", n],
                           [(2, b"echo restarted\r"), (1, b"\x10\x11")])
    text = out.decode(errors="replace")
    assert "restarted" in text, text
    assert rc == 0, text
    assert _state(berth, n)["Running"] is True


def test_detach_keys_from_config_json_for_both_clients(berth, names, tmp_path):
    """`detachKeys` in the client's config.json replaces ctrl-p ctrl-q for the docker CLI and
    for the berth CLI; the keys are only looked for on a TTY."""
    from conftest import BERTH

    (tmp_path / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,y"}))
    env = dict(berth.env, DOCKER_CONFIG=str(tmp_path))
    for cli in (DOCKER, str(BERTH)):
        n = names()
        rc, out = _pty_session(env, [cli, "run", "-it", "--name", n, IMAGE, "sh"],
                               [(2, b"\x10\x11echo not-detached\r"), (1, b"\x18y")])
        text = out.decode(errors="replace")
        assert "not-detached" in text, f"{cli}: {text}"
        assert rc == 0, f"{cli}: {text}"
        assert _state(berth, n)["Running"] is True, cli
        rc, out = _pty_session(env, [cli, "attach", n],
                               [(1, b"echo again\r"), (1, b"\x18y")])
        text = out.decode(errors="replace")
        assert "again" in text and "read escape sequence" in text, f"{cli}: {text}"
        assert rc == 1, f"{cli}: {text}"
        assert _state(berth, n)["Running"] is True, cli
        rc, out = _pty_session(env, [cli, "exec", "-it", n, "sh"],
                               [(2, b"echo exec-typed\r"), (1, b"\x18y")])
        text = out.decode(errors="replace")
        assert "exec-typed" in text and "read escape sequence" in text, f"{cli}: {text}"
        assert rc == 1, f"{cli}: {text}"


def test_raw_attach_detach_keys_are_found_by_the_daemon(berth, names):
    """The daemon looks for the keys (`detachKeys` query, else ctrl-p ctrl-q) in a TTY's
    stdin: the bytes before them reach the container, the stream ends, the container runs on
    with its stdin open, and a `detach` event is logged. Without a TTY stdin is a byte
    stream and the same bytes pass (as dockerd). Unknown key names get 400."""
    n = names()
    berth.docker_ok("create", "-it", "--name", n, IMAGE, "cat")
    berth.docker_ok("start", n)
    since = int(time.time())
    s, head = _hijack(berth, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1"
                             "&detachKeys=ctrl-a,b")
    assert head.startswith(b"HTTP/1.1 101"), head
    s.sendall(b"first\n")
    _recv_until(s, b"first\r\n", head)
    s.sendall(b"\x10\x11second\n")  # not the keys here: passed on
    _recv_until(s, b"second")
    s.sendall(b"third\x01b")
    rest = _recv_to_eof(s)
    assert b"\x01" not in rest, rest
    s.close()
    assert _state(berth, n)["Running"] is True
    # stdin stayed open: a new attach still talks to the same cat
    s, head = _hijack(berth, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1")
    s.sendall(b"fourth\n")
    # cat's line: the bytes typed before the keys reached the container
    _recv_until(s, b"thirdfourth\r\n", head)
    s.sendall(b"\x10\x11")  # the default keys
    _recv_to_eof(s)
    s.close()
    assert _state(berth, n)["Running"] is True
    st, _, body = berth.request(
        "GET", f"/events?since={since}&until={int(time.time()) + 1}"
               f"&filters={quote(json.dumps({'event': ['detach'], 'container': [n]}))}")
    assert st == 200 and body.count(b'"detach"') >= 2, body

    st, _, body = berth.request("POST", f"/containers/{n}/attach?stream=1&stdin=1&stdout=1"
                                        "&detachKeys=bogus")
    # (dockerd writes the message as plain text on the raw stream's content type)
    assert st == 400 and b"Invalid detach keys (bogus) provided" in body, body

    plain = names()
    berth.docker_ok("create", "-i", "--name", plain, IMAGE, "cat")
    berth.docker_ok("start", plain)
    s, head = _hijack(berth, f"/containers/{plain}/attach?stream=1&stdin=1&stdout=1")
    s.sendall(b"\x10\x11x\n")
    got = _recv_until(s, b"x\n", head)
    assert b"\x01\x00\x00\x00\x00\x00\x00\x04\x10\x11x\n" in got, got
    s.close()


def test_raw_exec_detach_keys(berth, names):
    """An exec with a TTY detaches on its `DetachKeys` (or the `detachKeys` query of its
    start): the stream ends and the exec runs on; exec create refuses unknown key names
    (with dockerd's 500). dockerd 20.10 ends the exec on detach (a bug of that release: its
    escape error arrives wrapped and is taken for a failure); berth keeps it running."""
    n = names()
    berth.docker_ok("run", "-d", "--name", n, IMAGE, "sleep", "1000")
    st, _, body = berth.request("POST", f"/containers/{n}/exec",
                                body=json.dumps({"Cmd": ["true"], "DetachKeys": "nope"}),
                                headers={"Content-Type": "application/json"})
    # dockerd's status for it is 500 (a plain error in its exec create)
    assert st == 500 and json.loads(body)["message"] == "Invalid escape keys (nope) provided"
    for create_keys, query, typed in (("ctrl-e", "", b"\x05"),
                                      ("ctrl-e", "?detachKeys=z", b"z"),
                                      ("", "", b"\x10\x11")):
        st, _, body = berth.request("POST", f"/containers/{n}/exec",
                                    body=json.dumps({"Cmd": ["cat"], "Tty": True,
                                                     "AttachStdin": True,
                                                     "AttachStdout": True,
                                                     "DetachKeys": create_keys}),
                                    headers={"Content-Type": "application/json"})
        assert st == 201, body
        eid = json.loads(body)["Id"]
        s, head = _hijack(berth, f"/exec/{eid}/start{query}",
                          json.dumps({"Tty": True}).encode())
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(b"ping\n")
        _recv_until(s, b"ping\r\n", head)
        s.sendall(typed)
        _recv_to_eof(s)
        s.close()
        st, _, body = berth.request("GET", f"/exec/{eid}/json")
        assert json.loads(body)["Running"] is True, (create_keys, query, body)


def test_exec_start_framing_follows_the_start_requests_tty(berth, names):
    """As dockerd: the exec's own Tty gives the process a terminal; the start body's Tty
    alone decides the framing (multiplexed unless it asks for a TTY)."""
    n = names()
    berth.docker_ok("run", "-d", "--name", n, IMAGE, "sleep", "1000")
    for exec_tty, start_tty, want in ((True, False, b"\x01\x00\x00\x00\x00\x00\x00\x04hi\r\n"),
                                      (False, True, b"hi\n"),
                                      (False, False, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"),
                                      (True, True, b"hi\r\n")):
        st, _, body = berth.request("POST", f"/containers/{n}/exec",
                                    body=json.dumps({"Cmd": ["echo", "hi"], "Tty": exec_tty,
                                                     "AttachStdout": True,
                                                     "AttachStderr": True}),
                                    headers={"Content-Type": "application/json"})
        assert st == 201, body
        eid = json.loads(body)["Id"]
        st, _, body = berth.request("POST", f"/exec/{eid}/start",
                                    body=json.dumps({"Tty": start_tty}),
                                    headers={"Content-Type": "application/json"})
        assert (st, body) == (200, want), (exec_tty, start_tty, body)


def test_exec_inspect_has_dockerds_fields(berth, names):
    n = names()
    berth.docker_ok("run", "-d", "--name", n, IMAGE, "sleep", "1000")
    cid = berth.inspect(n, "{{.Id}}")
    st, _, body = berth.request("POST", f"/containers/{n}/exec",
                                body=json.dumps({"Cmd": ["echo", "a", "b"], "Tty": True,
                                                 "AttachStdout": True, "User": "1:2",
                                                 "DetachKeys": "ctrl-a,b"}),
                                headers={"Content-Type": "application/json"})
    eid = json.loads(body)["Id"]
    st, _, body = berth.request("GET", f"/exec/{eid}/json")
    got = json.loads(body)
    assert list(got) == ["ID", "Running", "ExitCode", "ProcessConfig", "OpenStdin",
                         "OpenStderr", "OpenStdout", "CanRemove", "ContainerID", "DetachKeys",
                         "Pid"], got
    assert got["ProcessConfig"] == {"tty": True, "entrypoint": "echo", "arguments": ["a", "b"],
                                    "privileged": False, "user": "1:2"}, got
    assert (got["ID"], got["Running"], got["ExitCode"], got["Pid"]) == (eid, False, None, 0)
    assert (got["OpenStdin"], got["OpenStdout"], got["OpenStderr"]) == (False, True, False)
    assert got["CanRemove"] is False and got["ContainerID"] == cid
    assert got["DetachKeys"] == "AWI=", "the keys' bytes, base64, as dockerd: " + body.decode()
    berth.request("POST", f"/exec/{eid}/start", body=b"{}",
                  headers={"Content-Type": "application/json"})
    got = wait_for(lambda: (lambda g: g if not g["Running"] else None)(
        json.loads(berth.request("GET", f"/exec/{eid}/json")[2])), what="the exec to end")
    assert got["ExitCode"] == 0 and got["Pid"] > 0, got
    st, _, body = berth.request("POST", f"/containers/{n}/exec",
                                body=json.dumps({"Cmd": ["true"]}),
                                headers={"Content-Type": "application/json"})
    got = json.loads(berth.request("GET", f"/exec/{json.loads(body)['Id']}/json")[2])
    assert got["DetachKeys"] == "" and "user" not in got["ProcessConfig"], got


def test_attach_with_logs_to_a_created_container_gets_every_byte(berth, names):
    """Attach (logs=1&stream=1) before start, then start: the client gets the output from
    the first byte (as dockerd), and again after a later restart (the log replayed first)."""
    n = names()
    berth.docker_ok("create", "--name", n, IMAGE, "seq", "1", "1000")
    want = "".join(f"{i}\n" for i in range(1, 1001)).encode()

    def attach_then_start(expect: bytes):
        s, head = _hijack(berth, f"/containers/{n}/attach?logs=1&stream=1&stdout=1&stderr=1")
        assert head.startswith(b"HTTP/1.1 101"), head
        st, _, body = berth.request("POST", f"/containers/{n}/start")
        assert st == 204, body
        raw = head.partition(b"\r\n\r\n")[2] + _recv_to_eof(s, timeout=20)
        s.close()
        out = b""
        while raw:
            assert raw[0] == 1, raw[:16]
            size = struct.unpack(">I", raw[4:8])[0]
            out += raw[8:8 + size]
            raw = raw[8 + size:]
        assert out == expect, (len(out), out[:40])

    attach_then_start(want)
    st, _, body = berth.request("POST", f"/containers/{n}/wait")
    assert st == 200 and json.loads(body)["StatusCode"] == 0, body
    # stopped now: the replay of the first run, then the whole second run
    attach_then_start(want + want)
