"""The real docker CLI (/usr/local/bin/docker, v28) against berth."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from conftest import DOCKER, IMAGE, describe

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_version_shows_server(berth):
    out = berth.docker_ok("version")
    assert re.search(r"^Server:", out, re.M), out
    assert re.search(r"API version:\s+1\.\d+", out), out


def test_info(berth):
    out = berth.docker_ok("info", "--format", "{{.ServerVersion}} {{.OperatingSystem}}")
    assert out.strip(), out


def test_run_echo(berth):
    p = berth.run(IMAGE, "echo", "hi")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "hi\n"


def test_run_stderr_is_separate(berth):
    p = berth.run(IMAGE, "sh", "-c", "echo out; echo err >&2")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "out\n"
    assert "err" in p.stderr and "err" not in p.stdout


def test_exit_code_propagates(berth):
    p = berth.run(IMAGE, "sh", "-c", "exit 7")
    assert p.returncode == 7, describe(p)


def test_image_default_cmd(berth):
    # busybox's Cmd is ["sh"]; with stdin closed sh exits 0 at once.
    p = berth.run("-i", IMAGE, input="echo from-default-cmd\n")
    assert p.returncode == 0, describe(p)
    assert "from-default-cmd" in p.stdout


def test_detached_ps_inspect_stop_rm(berth, names):
    name = names()
    cid = berth.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "300").strip()
    assert HEX64.match(cid), cid

    out = berth.docker_ok("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    line = next((ln for ln in out.splitlines() if f" {name} " in ln + " "), None)
    assert line is not None, out
    short_id, _, status = line.split(" ", 2)
    assert cid.startswith(short_id) and len(short_id) == 12, line
    assert status.startswith("Up"), line

    assert berth.inspect(name, "{{.State.Status}}") == "running"
    assert berth.inspect(name, "{{.State.Running}}") == "true"
    assert berth.inspect(cid[:12], "{{.Id}}") == cid
    assert berth.inspect(name, "{{.Name}}") == "/" + name
    assert int(berth.inspect(name, "{{.State.Pid}}")) > 0

    t0 = time.monotonic()
    stopped = berth.docker_ok("stop", "-t", "1", name).strip()
    assert stopped == name
    assert time.monotonic() - t0 < 20

    out = berth.docker_ok("ps", "-a", "--filter", f"name={name}", "--format",
                          "{{.Names}} {{.Status}}")
    assert re.search(rf"^{name} Exited \((137|143)\)", out, re.M), out
    assert berth.inspect(name, "{{.State.Status}}") == "exited"
    assert berth.inspect(name, "{{.State.ExitCode}}") in ("137", "143")
    # stopped containers are not in plain `ps`
    assert name not in berth.docker_ok("ps", "--format", "{{.Names}}").split()

    assert berth.docker_ok("rm", name).strip() == name
    assert name not in berth.docker_ok("ps", "-a", "--format", "{{.Names}}").split()
    p = berth.docker("inspect", name)
    assert p.returncode == 1, describe(p)


def test_start_restarts_exited_container(berth, names):
    name = names()
    p = berth.docker("run", "--name", name, IMAGE, "echo", "once")
    assert p.returncode == 0 and p.stdout == "once\n", describe(p)
    berth.docker_ok("start", "-a", name)
    assert berth.docker_ok("logs", name) == "once\nonce\n"


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


def test_wait_returns_exit_code(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 0.5; exit 3")
    assert berth.docker_ok("wait", name, timeout=30).strip() == "3"


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


def test_exec_in_stopped_container_fails(berth, names):
    name = names()
    berth.docker_ok("create", "--name", name, IMAGE, "true")
    p = berth.docker("exec", name, "echo", "x")
    assert p.returncode != 0
    assert "is not running" in p.stderr, describe(p)


def test_images_lists_busybox(berth):
    out = berth.docker_ok("images")
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s", out, re.M), out
    out = berth.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "busybox:latest" in out.split()
    out = berth.docker_ok("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox")
    assert out.strip() == "linux/amd64"


def test_inspect_state_status_created(berth, names):
    name = names()
    berth.docker_ok("create", "--name", name, IMAGE, "true")
    assert berth.inspect(name, "{{.State.Status}}") == "created"


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


def test_unknown_image(berth):
    p = berth.run(IMAGE + "-nosuch-" + "x1y2:latest", "true")
    assert p.returncode == 125, describe(p)
    assert ("No such image" in p.stderr or "Unable to find image" in p.stderr), describe(p)


def test_name_conflict(berth, names):
    name = names()
    berth.docker_ok("create", "--name", name, IMAGE, "true")
    p = berth.docker("run", "--name", name, IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "Conflict" in p.stderr and "already in use" in p.stderr, describe(p)
    p = berth.docker("create", "--name", name, IMAGE, "true")
    assert p.returncode != 0 and "already in use" in p.stderr, describe(p)


def test_command_not_found_is_127(berth):
    p = berth.run(IMAGE, "nosuchcmd")
    assert p.returncode == 127, describe(p)


def test_failed_start_leaves_nothing_running(berth, names):
    name = names()
    p = berth.docker("run", "--name", name, IMAGE, "nosuchcmd")
    assert p.returncode == 127, describe(p)
    status = berth.inspect(name, "{{.State.Status}}")
    assert status in ("created", "exited"), status
    assert name not in berth.docker_ok("ps", "--format", "{{.Names}}").split()


def test_rm_running_needs_force(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    p = berth.docker("rm", name)
    assert p.returncode != 0, describe(p)
    assert "stop the container before removing" in p.stderr or "force" in p.stderr, describe(p)
    assert berth.docker_ok("rm", "-f", name).strip() == name
    assert name not in berth.docker_ok("ps", "-a", "--format", "{{.Names}}").split()


def test_kill_with_signal(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    berth.docker_ok("kill", "-s", "KILL", name)
    assert berth.docker_ok("wait", name, timeout=30).strip() == "137"


def test_rm_auto_remove(berth, names):
    name = names()
    p = berth.docker("run", "--rm", "--name", name, IMAGE, "true")
    assert p.returncode == 0, describe(p)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if name not in berth.docker_ok("ps", "-a", "--format", "{{.Names}}").split():
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"--rm container {name} still listed")


def test_pause_unpause_and_stop_while_paused(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "while true; do date +%s%N > /tmp/tick; sleep 0.05; done")
    berth.docker_ok("pause", name)
    assert berth.docker_ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name).strip() == "paused true"
    assert "(Paused)" in berth.docker_ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    p = berth.docker("pause", name)
    assert p.returncode != 0 and "already paused" in p.stderr, describe(p)
    berth.docker_ok("unpause", name)
    assert berth.docker_ok("inspect", "-f", "{{.State.Status}}", name).strip() == "running"
    p = berth.docker("unpause", name)
    assert p.returncode != 0 and "not paused" in p.stderr, describe(p)
    # A paused container still stops (it is thawed first) instead of hanging.
    berth.docker_ok("pause", name)
    berth.docker_ok("stop", "-t", "1", name, timeout=30)
    assert berth.docker_ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name).strip() == "exited false"
