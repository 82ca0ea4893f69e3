"""`docker update` of a running container's limits (checked in its cgroup) and restart
policy, and `docker rename`."""

from __future__ import annotations

import json
import os
import time

from conftest import IMAGE, describe


def cgroup_file(cid: str, v1: tuple[str, str], v2: str) -> str:
    for p in (f"/sys/fs/cgroup/{v1[0]}/berth/{cid}/{v1[1]}", f"/sys/fs/cgroup/berth/{cid}/{v2}"):
        if os.path.exists(p):
            return p
    raise AssertionError(f"no cgroup file for {cid}: {v1} / {v2}")


def read(p: str) -> str:
    with open(p) as f:
        return f.read().strip()


def test_update_limits_of_a_running_container(berth, names):
    c = names()
    berth.docker_ok("run", "-d", "--name", c, "-m", "64m", IMAGE, "sleep", "60")
    cid = berth.inspect(c)["Id"]
    mem = cgroup_file(cid, ("memory", "memory.limit_in_bytes"), "memory.max")
    assert read(mem) == str(64 << 20)
    out = berth.docker_ok("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "40", c)
    assert out.strip() == c
    assert read(mem) == str(96 << 20)
    assert read(cgroup_file(cid, ("pids", "pids.max"), "pids.max")) == "40"
    h = berth.inspect(c)["HostConfig"]
    assert (h["Memory"], h["MemorySwap"], h["PidsLimit"]) == (96 << 20, 192 << 20, 40)
    # Bad values are refused and change nothing.
    p = berth.docker("update", "--memory", "1m", c)
    assert p.returncode != 0 and "Minimum memory limit" in p.stderr, describe(p)
    p = berth.docker("update", "--memory", "512m", c)
    assert p.returncode != 0 and "memoryswap" in p.stderr, describe(p)
    assert read(mem) == str(96 << 20)
    assert berth.inspect(c)["HostConfig"]["Memory"] == 96 << 20


def test_update_restart_policy(berth, names):
    c = names()
    berth.docker_ok("create", "--name", c, IMAGE, "sh", "-c", "exit 1")
    berth.docker_ok("update", "--restart", "on-failure:2", c)
    assert berth.inspect(c)["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    berth.docker_ok("start", c)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and berth.inspect(c)["RestartCount"] < 2:
        time.sleep(0.2)
    assert berth.inspect(c)["RestartCount"] == 2
    r = names()
    berth.docker_ok("create", "--rm", "--name", r, IMAGE, "true")
    p = berth.docker("update", "--restart", "always", r)
    assert p.returncode != 0 and "AutoRemove" in p.stderr, describe(p)
    p = berth.docker("update", "--memory", "64m", "no-such-container-x")
    assert p.returncode != 0 and "No such container" in p.stderr, describe(p)


def test_rename(berth, names):
    a, b, other = names(), names(), names()
    berth.docker_ok("run", "-d", "--name", a, IMAGE, "sleep", "60")
    berth.docker_ok("create", "--name", other, IMAGE, "true")
    t0 = time.time()
    berth.docker_ok("rename", a, b)
    assert berth.inspect(b)["Name"] == "/" + b
    p = berth.docker("inspect", a)
    assert p.returncode != 0
    p = berth.docker("rename", b, other)
    assert p.returncode != 0 and "is already in use" in p.stderr, describe(p)
    p = berth.docker("rename", b, "bad/name")
    assert p.returncode != 0 and "Invalid container name" in p.stderr, describe(p)
    assert berth.inspect(b)["Name"] == "/" + b
    out = berth.docker_ok("events", "--since", f"{t0:.3f}", "--until", f"{time.time() + 0.5:.3f}",
                          "--filter", "event=rename", "--format", "{{json .Actor.Attributes}}")
    attrs = json.loads(out.splitlines()[0])
    assert attrs["oldName"] == a and attrs["name"] == b
    p = berth.berth_cli("rename", b, a)
    assert p.returncode == 0, describe(p)
    assert berth.inspect(a)["Name"] == "/" + a


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
