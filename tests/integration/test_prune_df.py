"""`system df` and the prunes: prune frees the bytes `system df` said it would, filters narrow
what goes, and nothing in use is touched."""

from __future__ import annotations

import json
import re
import time

from conftest import IMAGE, describe


def df_rows(d) -> dict[str, dict]:
    out = d.docker_ok("system", "df", "--format", "{{json .}}")
    return {r["Type"]: r for r in map(json.loads, out.splitlines())}


def to_bytes(s: str) -> float:
    m = re.match(r"([\d.]+)([kMG]?B)", s)
    assert m, s
    return float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]


def test_prune_frees_what_df_said(daemon_factory):
    d = daemon_factory()
    # A stopped container with 200 kB written, an anonymous volume with 300 kB, a running one.
    d.docker_ok("run", "--name", "dead", "-v", "/anon", IMAGE, "sh", "-c",
                "dd if=/dev/zero of=/blob bs=1k count=200 2>/dev/null; dd if=/dev/zero of=/anon/v bs=1k count=300 2>/dev/null")
    d.docker_ok("rm", "dead")  # the anonymous volume outlives a plain rm
    d.docker_ok("run", "--name", "dead2", IMAGE, "sh", "-c", "dd if=/dev/zero of=/blob bs=1k count=200 2>/dev/null")
    d.docker_ok("run", "-d", "--name", "alive", IMAGE, "sleep", "60")
    rows = df_rows(d)
    assert rows["Containers"]["TotalCount"] == "2" and rows["Containers"]["Active"] == "1", rows
    assert rows["Containers"]["Reclaimable"].startswith("204.8kB"), rows
    assert rows["Local Volumes"]["Reclaimable"].startswith("307.2kB"), rows
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1", rows
    out = d.docker_ok("system", "prune", "-f", "--volumes")
    assert "Deleted Containers:" in out and "Deleted Volumes:" in out, out
    total = re.search(r"Total reclaimed space: (\S+)", out).group(1)
    assert abs(to_bytes(total) - (204.8e3 + 307.2e3)) < 1e3, out
    rows = df_rows(d)
    assert rows["Containers"]["TotalCount"] == "1", rows
    assert rows["Local Volumes"]["TotalCount"] == "0", rows
    assert d.inspect("alive", "{{.State.Running}}") == "true"
    # Verbose output has the three sections.
    v = d.docker_ok("system", "df", "-v")
    for s in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:"):
        assert s in v, v
    b = d.berth_cli("system", "df")
    assert b.returncode == 0 and b.stdout.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], describe(b)


def test_container_prune_filters(berth, names):
    old, new, labelled = names(), names(), names()
    berth.docker_ok("create", "--name", old, IMAGE, "true")
    time.sleep(1.5)
    cut = int(time.time())
    berth.docker_ok("create", "--name", new, IMAGE, "true")
    berth.docker_ok("create", "--name", labelled, "--label", "keep=yes", IMAGE, "true")
    out = berth.docker_ok("container", "prune", "-f", "--filter", f"until={cut}", "--filter", "label!=keep")
    ids = {berth.inspect(n)["Id"] for n in (new, labelled)}
    assert all(i not in out for i in ids), out
    assert berth.docker("inspect", old).returncode != 0
    out = berth.docker_ok("container", "prune", "-f", "--filter", "label=keep=yes")
    assert berth.docker("inspect", labelled).returncode != 0
    assert berth.docker("inspect", new).returncode == 0
    p = berth.docker("container", "prune", "-f", "--filter", "colour=red")
    assert p.returncode != 0 and "invalid filter" in p.stderr, describe(p)
    p = berth.docker("container", "prune", "-f", "--filter", "until=yesterday")
    assert p.returncode != 0, describe(p)
