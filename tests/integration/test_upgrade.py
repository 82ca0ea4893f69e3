"""A data root written by an earlier release opens with every container, image and volume.

`tests/fixtures/dataroot-v1.tar.gz` is a data root made by berth at c5536ce (records that
store Docker's wire state, before the container state machine and record versions): the
busybox image and a second tag, a volume holding a file, and containers created, exited (3),
stopped (137), one that filled the volume, and one running with `--restart unless-stopped`
whose shim was gone when the data root was packed (as after a host reboot). Records hold
absolute paths, so it unpacks where it was made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import REPO, Daemon, describe

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
