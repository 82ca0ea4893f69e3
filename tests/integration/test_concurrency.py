"""Many containers at once, and nothing left behind afterwards.

Runs on its own daemon so "nothing left" can be checked strictly for that daemon's roots.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import (IMAGE, describe, descendants, mountinfo_lines_mentioning, pids_referencing,
                      shim_pids)

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
    deadline = time.monotonic() + 15
    while True:
        problems = leftovers(d, ids)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not problems, "\n".join(problems)
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
    deadline = time.monotonic() + 15
    while True:
        problems = leftovers(d, ids)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not problems, "\n".join(problems)
