"""Memory of the per-container shim: an idle running container costs at most 1 MiB of resident
memory in its `berth-shim` (the issue's figure; dockerd's containerd-shim is about 13 MiB), and
a shim that has relayed a lot of output does not balloon.

RSS is read the way bench/run-vs-dockerd.sh reads it (VmRSS of the shim process), after the
container has settled.
"""

from __future__ import annotations

import os
import time

from conftest import IMAGE

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


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


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
