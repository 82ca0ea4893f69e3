"""The `berth` CLI itself: Docker's command names, output and exit codes (DOCKER_HOST set)."""

from __future__ import annotations

import json
import re
import subprocess
import time

from conftest import BERTH, BERTHD, IMAGE, RUNTIME, describe


def test_version(berth):
    p = berth.berth_cli("version")
    assert p.returncode == 0, describe(p)
    assert "Server" in p.stdout, p.stdout


def test_run_rm_echo(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "echo", "hi")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "hi\n"


def test_run_exit_code(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "sh", "-c", "exit 7")
    assert p.returncode == 7, describe(p)


def test_run_stdin(berth):
    p = berth.berth_cli("run", "--rm", "-i", IMAGE, "cat", input="to berth\n")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "to berth\n"


def test_ps_images_inspect_logs_exec_rm(berth, names):
    name = names()
    p = berth.berth_cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
                        "echo logged; exec sleep 300")
    assert p.returncode == 0, describe(p)
    cid = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), p.stdout

    p = berth.berth_cli("ps", "-a", "--format", "{{.Names}}")
    assert p.returncode == 0, describe(p)
    assert name in p.stdout.split()

    p = berth.berth_cli("ps")
    assert p.returncode == 0, describe(p)
    header = p.stdout.splitlines()[0]
    for col in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"):
        assert col in header, header
    assert any(ln.startswith(cid[:12]) and ln.rstrip().endswith(name)
               for ln in p.stdout.splitlines()[1:]), p.stdout

    p = berth.berth_cli("images")
    assert p.returncode == 0, describe(p)
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s", p.stdout, re.M), p.stdout

    p = berth.berth_cli("inspect", name)
    assert p.returncode == 0, describe(p)
    info = json.loads(p.stdout)
    assert isinstance(info, list) and info[0]["Id"] == cid
    assert info[0]["State"]["Running"] is True
    assert info[0]["Config"]["Image"] == IMAGE

    p = berth.berth_cli("inspect", "-f", "{{.State.Status}}", name)
    assert p.stdout.strip() == "running", describe(p)

    for _ in range(50):
        p = berth.berth_cli("logs", name)
        if p.stdout == "logged\n":
            break
        time.sleep(0.1)
    assert p.returncode == 0 and p.stdout == "logged\n", describe(p)

    p = berth.berth_cli("exec", name, "echo", "x")
    assert p.returncode == 0 and p.stdout == "x\n", describe(p)
    p = berth.berth_cli("exec", "-i", name, "cat", input="via exec\n")
    assert p.returncode == 0 and p.stdout == "via exec\n", describe(p)

    p = berth.berth_cli("rm", "-f", name)
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip() == name
    p = berth.berth_cli("ps", "-a", "--format", "{{.Names}}")
    assert name not in p.stdout.split()


def test_berth_runtime_runs_berth_runtime(prerequisites):
    # `berth runtime ARGS` execs the berth-runtime next to berth with ARGS untouched
    for args in (["--help"], ["--version"], ["list", "--help"], []):
        via = subprocess.run([str(BERTH), "runtime", *args], capture_output=True, text=True,
                             timeout=10)
        own = subprocess.run([str(RUNTIME), *args], capture_output=True, text=True, timeout=10)
        assert (via.returncode, via.stdout, via.stderr) == \
            (own.returncode, own.stdout, own.stderr), describe(via) + "\n" + describe(own)
    p = subprocess.run([str(BERTH), "runtime", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("usage: berth-runtime"), describe(p)


def test_the_client_links_neither_daemon_nor_runtime(prerequisites):
    # strings of the engine, the daemon and the runtime crates: in their binaries, not in berth
    client = BERTH.read_bytes()
    daemon = BERTHD.read_bytes()
    runtime = RUNTIME.read_bytes()
    for marker, home in ((b"error gathering device information", daemon),
                         (b"berth daemon: starting the runtime", daemon),
                         (b"memfd_create for the sealed runtime binary", runtime),
                         (b"usage: berth-runtime [--root DIR]", runtime)):
        assert marker in home, marker
        assert marker not in client, f"berth links the code behind {marker!r} again"
    assert len(client) < len(daemon), (len(client), len(daemon))


def test_unknown_image_125(berth):
    p = berth.berth_cli("run", "--rm", "no-such-image-berth:latest", "true")
    assert p.returncode == 125, describe(p)
    assert "No such image" in p.stderr or "Unable to find image" in p.stderr, describe(p)


def test_unknown_flag_125(berth):
    p = berth.berth_cli("run", "--nosuchflag", IMAGE, "true")
    assert p.returncode == 125, describe(p)


def test_command_not_found_127(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "nosuchcmd")
    assert p.returncode == 127, describe(p)


def test_rm_unknown(berth):
    p = berth.berth_cli("rm", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such container: nope" in p.stderr, describe(p)


def test_load_and_save_roundtrip(berth, tmp_path):
    out = tmp_path / "saved.tar"
    p = berth.berth_cli("save", "-o", str(out), "busybox:latest")
    assert p.returncode == 0, describe(p)
    assert out.stat().st_size > 1_000_000
    p = berth.berth_cli("load", "-i", str(out))
    assert p.returncode == 0, describe(p)
    assert "busybox:latest" in p.stdout, p.stdout
