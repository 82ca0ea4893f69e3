"""Recovery and staying power: the daemon killed or restarted with live containers, single
instance, socket mode, `berth daemon` becoming `berthd`; a data root written by an earlier
release; the memory of idle and busy shims; many containers at once, with nothing left behind.

The daemon, upgrade and concurrency tests make their own daemons (daemon_factory), never the
shared one, so "nothing left" can be checked strictly for that daemon's roots; the shim memory
tests use the shared daemon."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import (BERTH, BERTHD, IMAGE, REPO, Daemon, describe, descendants,
                      mountinfo_lines_mentioning, pids_referencing, shim_pids, status_kib,
                      wait_for)


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


# -- upgrade ------------------------------------------------------------------------------------
# `tests/fixtures/dataroot-v1.tar.gz` is a data root made by berth at c5536ce (records that
# store Docker's wire state, before the container state machine and record versions): the
# busybox image and a second tag, a volume holding a file, and containers created, exited (3),
# stopped (137), one that filled the volume, and one running with `--restart unless-stopped`
# whose shim was gone when the data root was packed (as after a host reboot). Records hold
# absolute paths, so it unpacks where it was made.

FIXTURE = REPO / "tests" / "fixtures" / "dataroot-v1.tar.gz"
BASE = "/tmp/berth-upgrade-fixture"


def test_a_data_root_of_the_previous_release_opens_intact(prerequisites):
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(BASE)
    subprocess.run(["tar", "-C", BASE, "-xzf", str(FIXTURE)], check=True)
    d = Daemon(base=BASE, bridge=False)
    try:
        d.start()
        states = {}
        for line in d.docker_ok("ps", "-a", "--format", "{{.Names}} {{.State}}").split("\n"):
            if line.strip():
                name, state = line.split()
                states[name] = state
        assert states.get("created-one") == "created", states
        assert states.get("exited-one") == "exited", states
        assert states.get("stopped-one") == "exited", states
        assert states.get("fill") == "exited", states
        # Its shim was gone: recorded as exited, then its policy brought it back.
        assert states.get("running-one") in ("running", "restarting"), states
        assert d.inspect("exited-one", "{{.State.ExitCode}}") == "3"
        assert d.inspect("stopped-one", "{{.State.ExitCode}}") == "137"
        assert d.inspect("created-one", "{{json .Config.Env}}").count("A=1") == 1

        tags = set(d.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}").split())
        assert {"busybox:latest", "fixture:tagged"} <= tags, tags
        assert "fixture-vol" in d.docker_ok("volume", "ls", "-q").split()
        out = d.docker_ok("run", "--rm", "-v", "fixture-vol:/data", "busybox", "cat", "/data/file")
        assert out.strip() == "kept"

        # Old containers work: start one, read its output; its record is rewritten in the
        # current format.
        p = d.docker("start", "-a", "created-one")
        assert p.returncode == 0 and p.stdout.strip() == "hi", describe(p)
        cid = d.inspect("created-one", "{{.Id}}")
        rec = json.loads(Path(d.data_root, "containers", cid, "config.v2.json").read_text())
        assert rec["version"] == 2
        assert rec["state"]["Status"] == "exited" and "Running" not in rec["state"]
        p = d.docker("start", "-a", "exited-one")
        assert p.returncode == 3, describe(p)
        d.docker_ok("rm", "-f", "running-one", "stopped-one", "fill", "exited-one",
                    "created-one")
        assert d.docker_ok("ps", "-aq").strip() == ""
    finally:
        d.cleanup()
        shutil.rmtree(BASE, ignore_errors=True)


# -- shim memory --------------------------------------------------------------------------------
# An idle running container costs at most 1 MiB of resident memory in its `berth-shim` (the
# issue's figure; dockerd's containerd-shim is about 13 MiB), and a shim that has relayed a
# lot of output does not balloon. RSS is read the way bench/run-vs-dockerd.sh reads it (VmRSS
# of the shim process), after the container has settled.

IDLE_RSS_LIMIT_KIB = 1024
# After relaying output the read buffer and log records have been used; bounded well below the
# ~2 MiB an idle shim used to take.
BUSY_RSS_LIMIT_KIB = 1536


def shim_pid(berth, cid: str) -> int:
    path = os.path.join(berth.exec_root, "shims", cid, "shim.pid")
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            if time.monotonic() > deadline:
                raise AssertionError(f"no shim pid file at {path}")
            time.sleep(0.1)


def resident_mappings(pid: int) -> str:
    """The shim's mappings with resident pages, largest first (for failure messages)."""
    rows = []
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                name = f"{fields[1]} {fields[5] if len(fields) > 5 else '[anon]'}"
            elif fields[0] == "Rss:" and int(fields[1]) > 0:
                rows.append((int(fields[1]), name))
    rows.sort(reverse=True)
    return "\n".join(f"  {kib:6d} KiB  {what}" for kib, what in rows)


def start(berth, name: str, *command: str) -> str:
    return berth.docker_ok("run", "-d", "--name", name, "--network", "none", IMAGE,
                           *command).strip()


def test_idle_shim_rss_at_most_1_mib(berth, names):
    cid = start(berth, names(), "sleep", "1000")
    pid = shim_pid(berth, cid)
    time.sleep(1)
    assert berth.inspect(cid, "{{.State.Running}}") == "true"
    rss = status_kib(pid, "VmRSS")
    assert rss <= IDLE_RSS_LIMIT_KIB, (
        f"idle shim {pid} has VmRSS {rss} KiB > {IDLE_RSS_LIMIT_KIB} KiB\n"
        + resident_mappings(pid))


def test_several_idle_shims_each_at_most_1_mib(berth, names):
    cids = [start(berth, names(), "sleep", "1000") for _ in range(3)]
    pids = [shim_pid(berth, cid) for cid in cids]
    time.sleep(1)
    for pid in pids:
        rss = status_kib(pid, "VmRSS")
        assert rss <= IDLE_RSS_LIMIT_KIB, (
            f"idle shim {pid} has VmRSS {rss} KiB\n" + resident_mappings(pid))


def test_shim_after_relaying_output_stays_small(berth, names):
    lines = 20000
    script = f"i=0; while [ $i -lt {lines} ]; do echo line $i; i=$((i+1)); done; sleep 1000"
    cid = start(berth, names(), "sh", "-c", script)
    pid = shim_pid(berth, cid)
    last = f"line {lines - 1}"
    deadline = time.monotonic() + 60
    while True:
        tail = berth.docker_ok("logs", "--tail", "1", cid).strip()
        if tail == last:
            break
        assert time.monotonic() < deadline, f"log never reached {last!r} (last: {tail!r})"
        time.sleep(0.5)
    # every line made it to the log, in order
    out = berth.docker_ok("logs", cid, timeout=60).splitlines()
    assert len(out) == lines and out[0] == "line 0" and out[-1] == last
    time.sleep(1)
    rss = status_kib(pid, "VmRSS")
    assert rss <= BUSY_RSS_LIMIT_KIB, (
        f"shim {pid} has VmRSS {rss} KiB after relaying {lines} lines\n"
        + resident_mappings(pid))


def test_shim_with_tty_and_stdin_idle_rss(berth, names):
    name = names()
    cid = berth.docker_ok("run", "-d", "-t", "-i", "--name", name, "--network", "none", IMAGE,
                          "sh").strip()
    pid = shim_pid(berth, cid)
    time.sleep(1)
    assert berth.inspect(cid, "{{.State.Running}}") == "true"
    rss = status_kib(pid, "VmRSS")
    assert rss <= IDLE_RSS_LIMIT_KIB, (
        f"idle tty shim {pid} has VmRSS {rss} KiB\n" + resident_mappings(pid))
    # the container still works through its shim: an exec answers
    assert berth.docker_ok("exec", cid, "echo", "ok").strip() == "ok"


# -- concurrency: many containers at once, and nothing left behind afterwards -------------------

N = 50
PARALLEL = 12


def leftovers(d, ids: list[str]) -> list[str]:
    problems = []
    names = d.docker_ok("ps", "-a", "--no-trunc", "--format", "{{.ID}}").split()
    for cid in ids:
        if cid in names:
            problems.append(f"container {cid} still listed")
    overlays = [ln for ln in mountinfo_lines_mentioning(d.base)
                if ln.split(" - ", 1)[-1].startswith("overlay ")]
    if overlays:
        problems.append("overlay mounts left under the daemon's roots:\n  " + "\n  ".join(overlays))
    for cid in ids:
        for line in mountinfo_lines_mentioning(cid):
            problems.append(f"mount of {cid}: {line}")
    runc_root = os.path.join(d.exec_root, "runc")
    p = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                       text=True, timeout=30)
    if p.stdout.split():
        problems.append(f"runc still knows: {p.stdout.split()}")
    # the daemon and its own helpers (children) may stay; shims are nobody's children
    daemon_pid = d.proc.pid
    ours = set(pids_referencing(d.base, exclude={daemon_pid} | descendants(daemon_pid)))
    shims = [pid for pid in shim_pids() if pid in ours]
    if shims:
        problems.append(f"berth-shim processes left: {shims}")
    others = sorted(ours - set(shims))
    if others:
        cmdlines = []
        for pid in others:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().replace(b"\0", b" ").decode(errors="replace")
                cmdlines.append(f"{pid}: {argv}")
            except OSError:
                pass
        if cmdlines:
            problems.append("processes still using the daemon's roots:\n  " + "\n  ".join(cmdlines))
    for cid in ids:
        for sub in ("containers", "shims"):
            path = os.path.join(d.exec_root, sub, cid)
            if os.path.exists(path):
                problems.append(f"{path} left behind")
        path = os.path.join(d.data_root, "containers", cid)
        if os.path.exists(path):
            problems.append(f"{path} left behind")
        path = os.path.join(d.data_root, "image", "rw", cid)
        if os.path.exists(path):
            problems.append(f"{path} left behind")
    return problems


def assert_nothing_left(d, ids: list[str]) -> None:
    """Waits (15 s at most: removal may finish a moment after the CLI returns) until nothing of
    the containers `ids` is left, then asserts so, listing what is."""
    wait_for(lambda: not leftovers(d, ids), timeout=15, interval=0.5)
    problems = leftovers(d, ids)
    assert not problems, "\n".join(problems)


def test_parallel_run_rm(daemon_factory, tmp_path):
    d = daemon_factory()
    tag = uuid.uuid4().hex[:6]

    def one(i: int):
        cidfile = tmp_path / f"cid-{i}"
        p = d.docker("run", "--rm", "--cidfile", str(cidfile), "--name", f"c-{tag}-{i}", IMAGE,
                     "true", timeout=90)
        cid = cidfile.read_text().strip() if cidfile.exists() else ""
        return i, p, cid

    t0 = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(one, range(N)))
    elapsed = time.monotonic() - t0

    failed = [f"#{i}: {describe(p)}" for i, p, _ in results if p.returncode != 0]
    assert not failed, f"{len(failed)}/{N} runs failed:\n" + "\n".join(failed[:5])
    ids = [cid for _, _, cid in results]
    assert all(len(c) == 64 for c in ids), ids
    assert len(set(ids)) == N
    print(f"{N} x docker run --rm ({PARALLEL} at a time): {elapsed:.1f}s")

    # --rm removal may finish a moment after the CLI returns
    assert_nothing_left(d, ids)
    assert d.docker_ok("ps", "-aq").split() == []


def test_parallel_detached_then_remove(daemon_factory):
    d = daemon_factory()
    tag = uuid.uuid4().hex[:6]
    names = [f"s-{tag}-{i}" for i in range(10)]

    def start(name: str):
        return d.docker("run", "-d", "--name", name, IMAGE, "sleep", "300", timeout=60)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(start, names))
    failed = [describe(p) for p in results if p.returncode != 0]
    assert not failed, "\n".join(failed[:3])
    ids = [p.stdout.strip() for p in results]
    running = d.docker_ok("ps", "--format", "{{.Names}}").split()
    assert sorted(running) == sorted(names)

    # parallel exec into different containers
    def exec_one(name: str):
        return d.docker("exec", name, "sh", "-c", "echo $HOSTNAME", timeout=60)

    with ThreadPoolExecutor(10) as pool:
        execs = list(pool.map(exec_one, names))
    for cid, p in zip(ids, execs):
        assert p.returncode == 0 and p.stdout.strip() == cid[:12], describe(p)

    d.docker_ok("rm", "-f", *names, timeout=120)
    assert_nothing_left(d, ids)
