"""Crash consistency: the daemon SIGKILLed at random moments (seeded, repeatable) during pull,
push, build, commit, load, rmi, volume removal and network removal, restarted on the same roots,
then checked: what `ps -a`, `images`, `volume ls` and `network ls` show matches the disk,
nothing half-made is visible, no orphan mount, writable layer, cgroup, bridge or iptables rule
is left, no container stays frozen, and the interrupted operation, retried, succeeds. Removing a container attached to a network
is interrupted too, and its veth must go.

BERTH_CRASH_SEED (default 1) picks the kill moments; BERTH_CRASH_ROUNDS (default 3) how many
kills per operation. A failure prints the seed, the operation and the delay, so that it can be
replayed: `BERTH_CRASH_SEED=N python3 -m pytest tests/integration/test_crash_consistency.py`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import DOCKER, IMAGE, Registry, describe, mounts_under, wait_for

SEED = int(os.environ.get("BERTH_CRASH_SEED", "1"))
ROUNDS = int(os.environ.get("BERTH_CRASH_ROUNDS", "3"))
CGROUP_ROOTS = [Path("/sys/fs/cgroup/memory/berth"), Path("/sys/fs/cgroup/pids/berth"),
                Path("/sys/fs/cgroup/berth")]


# ---------------------------------------------------------------------------------------------
# What must hold after every restart
# ---------------------------------------------------------------------------------------------


def _lines(out: str) -> set[str]:
    return {l.strip() for l in out.splitlines() if l.strip()}


def _cgroups() -> set[str]:
    found = set()
    for root in CGROUP_ROOTS:
        if root.is_dir():
            found |= {p.name for p in root.iterdir() if p.is_dir()}
    return found


def _cgroup_procs(name: str) -> str:
    for root in CGROUP_ROOTS:
        procs = root / name / "cgroup.procs"
        if procs.exists():
            try:
                return procs.read_text()
            except OSError:
                return ""
    return ""


def _frozen(cid: str) -> bool:
    """Whether the container's cgroup is frozen, whatever its record says (v1 or v2)."""
    for f, frozen in ((Path(f"/sys/fs/cgroup/freezer/berth/{cid}/freezer.state"), "FROZEN"),
                      (Path(f"/sys/fs/cgroup/berth/{cid}/cgroup.freeze"), "1")):
        if f.exists():
            return f.read_text().strip() == frozen
    return False


def _bridge_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _iptables_mentions(text: str) -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if text in l]


class World:
    """One daemon under test and what the test expects of it."""

    def __init__(self, d, networks_only: bool = False):
        self.d = d
        # The shared daemon (the only one with bridge networking) has other tests' objects:
        # there only the in-flight and network invariants are checked.
        self.networks_only = networks_only
        self.data = Path(d.data_root)
        self.running: set[str] = set()       # container ids that must be running, unpaused
        self.known_names: set[str] = set()   # every container name the test made
        self.removed_networks: dict[str, str] = {}  # name -> id of networks removed for good
        self.cgroups_before = _cgroups()

    def docker(self, *args, timeout=60):
        return self.d.docker(*args, timeout=timeout)

    def ok(self, *args, timeout=60) -> str:
        p = self.docker(*args, timeout=timeout)
        assert p.returncode == 0, describe(p)
        return p.stdout

    def check(self, where: str) -> None:
        """Every invariant; `where` names the round for the failure message."""
        d, data = self.d, self.data
        msg = f"[{where}] "
        # Nothing left in flight.
        inflight = data / "inflight"
        left = sorted(os.listdir(inflight)) if inflight.is_dir() else []
        assert not left, msg + f"in-flight entries left after open: {left}"
        self.check_networks(msg)
        if self.networks_only:
            return
        # Containers: the API's list is the disk's, only the test's own, none frozen.
        listed = _lines(self.ok("ps", "-aq", "--no-trunc"))
        on_disk = {p.name for p in (data / "containers").iterdir()}
        assert listed == on_disk, msg + f"ps -a {sorted(listed)} != disk {sorted(on_disk)}"
        for cid in listed:
            st = json.loads(self.ok("inspect", cid))[0]
            name = st["Name"].lstrip("/")
            assert name in self.known_names, msg + f"a container the test never made: {name}"
            assert not st["State"]["Paused"], msg + f"{name} left frozen"
            if cid in self.running:
                assert st["State"]["Running"], msg + f"{name} no longer running"
            assert not _frozen(cid), msg + f"{name}'s cgroup left frozen (its record says " \
                f"Paused={st['State']['Paused']})"
        for cid in self.running:
            assert cid in listed, msg + f"running container {cid} lost"
        # Writable layers: one per container, none orphaned.
        rw = {p.name for p in (data / "image" / "rw").iterdir()}
        assert rw <= listed, msg + f"writable layers no container owns: {sorted(rw - listed)}"
        # Images: the list is the disk's; nothing half-written left.
        images = {i.split(":", 1)[1] for i in _lines(self.ok("images", "-aq", "--no-trunc"))}
        on_disk = {p.name[:-5] for p in (data / "image" / "images").iterdir()
                   if p.name.endswith(".json")}
        assert images == on_disk, msg + f"images {sorted(images)} != disk {sorted(on_disk)}"
        for iid in images:
            self.ok("image", "inspect", f"sha256:{iid}")
        tmp = data / "image" / "tmp"
        assert not (tmp.is_dir() and os.listdir(tmp)), msg + f"image/tmp not empty: {os.listdir(tmp)}"
        # Volumes: the list is the disk's, and no directory without its record.
        vols = _lines(self.ok("volume", "ls", "-q"))
        vdirs = {p.name for p in (data / "volumes").iterdir() if p.is_dir()}
        assert vols == vdirs, msg + f"volume ls {sorted(vols)} != disk {sorted(vdirs)}"
        # Mounts: only the root file systems (and their own mounts) of running containers.
        allowed = [str(data / "containers" / c) for c in self.running] + \
                  [os.path.join(d.exec_root, "containers", c) for c in self.running]
        stray = [m for m in mounts_under(d.base)
                 if not any(m == a or m.startswith(a + "/") for a in allowed)]
        assert not stray, msg + f"orphan mounts: {stray}"
        # Cgroups: a new one is a running container's (or goes away at once).
        def no_empty_new_cgroup():
            new = _cgroups() - self.cgroups_before - self.running
            return not [c for c in new if not _cgroup_procs(c).strip()]
        wait_for(no_empty_new_cgroup, timeout=5,
                 what=msg + f"empty cgroups left: {sorted(_cgroups() - self.cgroups_before)}")

    def check_networks(self, msg: str) -> None:
        """Each listed user network has its bridge; removed ones left no bridge and no rule."""
        for line in _lines(self.ok("network", "ls", "--no-trunc", "--format",
                                   "{{.ID}} {{.Name}} {{.Driver}}")):
            nid, name, driver = line.split()
            if driver == "bridge" and name != "bridge":
                assert _bridge_exists(f"br-{nid[:12]}"), msg + f"network {name} lost its bridge"
        for name, nid in self.removed_networks.items():
            br = f"br-{nid[:12]}"
            assert not _bridge_exists(br), msg + f"removed network {name} left bridge {br}"
            assert not _iptables_mentions(br), msg + f"removed network {name} left rules: " \
                f"{_iptables_mentions(br)}"


def crash_during(w: World, argv: list[str], delay: float, where: str) -> subprocess.CompletedProcess:
    """Runs the docker CLI with `argv`, SIGKILLs the daemon after `delay` seconds, restarts it,
    checks the invariants; returns what the interrupted client saw."""
    d = w.d
    client = subprocess.Popen([DOCKER, *argv], env=d.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    d.kill()
    try:
        out, err = client.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    d.start()
    w.check(where)
    return subprocess.CompletedProcess(argv, client.returncode, out, err)


# ---------------------------------------------------------------------------------------------
# The operations
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def world(daemon_factory):
    d = daemon_factory()
    w = World(d)
    yield w


def _unique_image(w: World, tag: str) -> None:
    """A fresh image `tag` with a layer of its own (a commit of a container that wrote one)."""
    name = f"mk-{uuid.uuid4().hex[:8]}"
    w.known_names.add(name)
    w.ok("run", "--name", name, IMAGE, "sh", "-c",
         f"dd if=/dev/urandom of=/blob bs=64k count=32 2>/dev/null; echo {tag} > /tag")
    w.ok("commit", name, tag)
    w.ok("rm", name)


def test_crash_during_pull_push_load_and_rmi(world):
    w, rng = world, random.Random(SEED)
    reg = Registry()
    try:
        for r in range(ROUNDS):
            # push: a new image each round, so that there is something to upload.
            ref = f"{reg.host}/crash/push:r{r}"
            _unique_image(w, ref)
            delay = rng.uniform(0, 0.25)
            where = f"seed {SEED} push round {r} after {delay:.3f}s"
            crash_during(w, ["push", ref], delay, where)
            w.ok("push", ref, timeout=120)
            # pull: what was pushed, removed locally first.
            w.ok("rmi", ref)
            delay = rng.uniform(0, 0.25)
            where = f"seed {SEED} pull round {r} after {delay:.3f}s"
            crash_during(w, ["pull", ref], delay, where)
            w.ok("pull", ref, timeout=120)
            assert "r" in w.ok("run", "--rm", ref, "cat", "/tag")
            # rmi of the pulled image.
            delay = rng.uniform(0, 0.1)
            where = f"seed {SEED} rmi round {r} after {delay:.3f}s"
            crash_during(w, ["rmi", ref], delay, where)
            p = w.docker("rmi", ref)
            assert p.returncode == 0 or "No such image" in p.stderr, describe(p)
            assert w.docker("image", "inspect", ref).returncode != 0
            w.check(where + ", retried")
        # load: busybox removed first, so that the load writes its layer again.
        archive = Path(w.d.base) / "bb.tar"
        w.ok("save", "-o", str(archive), IMAGE)
        for r in range(ROUNDS):
            w.ok("rmi", IMAGE)
            delay = rng.uniform(0, 0.2)
            where = f"seed {SEED} load round {r} after {delay:.3f}s"
            crash_during(w, ["load", "-i", str(archive)], delay, where)
            w.ok("load", "-i", str(archive), timeout=120)
            w.ok("run", "--rm", IMAGE, "true")
            w.check(where + ", retried")
    finally:
        reg.stop()


def test_crash_during_build(world, tmp_path):
    w, rng = world, random.Random(SEED + 1)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN sleep 0.3 && head -c 100000 /dev/urandom > /a\nRUN echo two > /b\n")
    env = dict(w.d.env, DOCKER_BUILDKIT="0")
    for r in range(ROUNDS):
        delay = rng.uniform(0.05, 0.6)
        where = f"seed {SEED} build round {r} after {delay:.3f}s"
        client = subprocess.Popen([DOCKER, "build", "--no-cache", "-t", f"built:r{r}", str(ctx)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        w.d.kill()
        client.wait(60)
        w.d.start()
        w.check(where)
        p = subprocess.run([DOCKER, "build", "--no-cache", "-t", f"built:r{r}", str(ctx)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, describe(p)
        w.check(where + ", retried")


def test_crash_during_commit(world):
    """A commit freezes the running container while it reads the layer."""
    w, rng = world, random.Random(SEED + 3)
    name = "committed"
    w.known_names.add(name)
    cid = w.ok("run", "-d", "--name", name, IMAGE, "sh", "-c",
               "dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null; exec sleep 300").strip()
    w.running.add(cid)
    wait_for(lambda: w.docker("exec", name, "test", "-s", "/big").returncode == 0 and
             w.ok("exec", name, "sh", "-c", "ls -l /big | awk '{print $5}'").strip() == "25165824",
             what="the container's 24 MiB file")
    for r in range(ROUNDS):
        delay = rng.uniform(0, 0.3)
        where = f"seed {SEED} commit round {r} after {delay:.3f}s"
        crash_during(w, ["commit", name, f"snap:r{r}"], delay, where)
        w.ok("commit", name, f"snap:r{r}", timeout=120)
        assert w.ok("exec", name, "echo", "alive").strip() == "alive"
        w.check(where + ", retried")


def test_crash_during_volume_removal(world):
    w, rng = world, random.Random(SEED + 2)
    for r in range(ROUNDS):
        vol = f"crashvol{r}"
        w.ok("volume", "create", vol)
        w.ok("run", "--rm", "-v", f"{vol}:/v", IMAGE, "sh", "-c",
             "for i in $(seq 1 300); do echo $i > /v/f$i; done")
        delay = rng.uniform(0, 0.05)
        where = f"seed {SEED} volume rm round {r} after {delay:.3f}s"
        crash_during(w, ["volume", "rm", vol], delay, where)
        p = w.docker("volume", "rm", vol)
        assert p.returncode == 0 or "no such volume" in p.stderr.lower(), describe(p)
        assert w.docker("volume", "inspect", vol).returncode != 0
        w.check(where + ", retried")


def _veths() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                         text=True).stdout
    return {l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if ":" in l}


def test_crash_during_network_removal(berth):
    """On the shared daemon: private daemons run without bridge networking. Each round first
    removes a container attached to the network with the daemon killed during the `rm -f`:
    its veth must not outlive it."""
    w, rng = World(berth, networks_only=True), random.Random(SEED + 4)
    for r in range(ROUNDS):
        net = f"crashnet-{uuid.uuid4().hex[:6]}"
        nid = w.ok("network", "create", net).strip()
        veths_before = _veths()
        name = f"crashnet-c-{uuid.uuid4().hex[:6]}"
        w.ok("run", "-d", "--name", name, "--network", net, IMAGE, "sleep", "300")
        assert _veths() - veths_before, "the container on the network got no veth"
        delay = rng.uniform(0, 0.1)
        where = f"seed {SEED} rm -f on a network round {r} after {delay:.3f}s"
        crash_during(w, ["rm", "-f", name], delay, where)
        p = w.docker("rm", "-f", name)
        assert p.returncode == 0 or "No such container" in p.stderr, describe(p)
        wait_for(lambda: _veths() <= veths_before, timeout=10,
                 what=f"[{where}] veths left: {sorted(_veths() - veths_before)}")
        delay = rng.uniform(0, 0.05)
        where = f"seed {SEED} network rm round {r} after {delay:.3f}s"
        crash_during(w, ["network", "rm", net], delay, where)
        p = w.docker("network", "rm", net)
        assert p.returncode == 0 or "not found" in p.stderr.lower(), describe(p)
        w.removed_networks[net] = nid
        w.check(where + ", retried")
