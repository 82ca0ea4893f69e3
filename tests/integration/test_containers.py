"""Containers through their lifecycle, mostly with the real docker CLI: run and exit codes,
create/start/stop/kill/rm, `wait`, pause, name conflicts; events and restart policies with
dockerd's rules; health checks; `docker update` of limits and policy; `docker rename`.

Logs, exec, ttys, `cp` and `stats` are in test_containers_io.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time

from conftest import DOCKER as DOCKER_CLI, IMAGE, describe, wait_for


HEX64 = re.compile(r"^[0-9a-f]{64}$")


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


def test_wait_returns_exit_code(berth, names):
    name = names()
    berth.docker_ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 0.5; exit 3")
    assert berth.docker_ok("wait", name, timeout=30).strip() == "3"


def test_inspect_state_status_created(berth, names):
    name = names()
    berth.docker_ok("create", "--name", name, IMAGE, "true")
    assert berth.inspect(name, "{{.State.Status}}") == "created"


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


def test_kill_answers_after_the_container_exited(berth, names):
    """Issue 15 item 1: SIGKILL is answered once the container is seen exited, as dockerd:
    an inspect straight after `docker kill` shows it stopped, exit code 137."""
    for _ in range(5):
        name = names()
        berth.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
        berth.docker_ok("kill", name)
        state = json.loads(berth.docker_ok("inspect", name))[0]["State"]
        assert (state["Running"], state["Status"], state["ExitCode"]) == (False, "exited", 137)


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


# -- events and restart policies ----------------------------------------------------------------
# `docker events`, `GET /events` and the SDK's stream; restart policies with dockerd's rules:
# on-failure:N, always after a daemon restart, unless-stopped staying stopped, stop/kill
# cancelling a pending restart.


def test_run_events_in_order_with_exit_code(berth, names):
    c = names()
    t0 = time.time()
    p = berth.run("--name", c, IMAGE, "sh", "-c", "exit 3")
    assert p.returncode == 3, describe(p)
    t1 = time.time() + 1
    out = berth.docker_ok("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}",
                          "--filter", f"container={c}", "--format", "{{json .}}")
    evs = [json.loads(l) for l in out.splitlines() if l.strip()]
    actions = [e["Action"] for e in evs]
    assert actions == ["create", "start", "die", "destroy"], actions
    die = evs[2]
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["name"] == c
    assert die["Actor"]["Attributes"]["image"] == IMAGE
    assert die["Type"] == "container" and die["status"] == "die" and die["from"] == IMAGE
    # The default format, and type/event filters.
    out = berth.docker_ok("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}",
                          "--filter", f"container={c}", "--filter", "event=die")
    lines = out.splitlines()
    assert len(lines) == 1 and " container die " in lines[0] and f"name={c}" in lines[0], out
    assert "exitCode=3" in lines[0]


def test_live_stream_through_the_sdk_and_volume_events(berth, names):
    got: list[dict] = []
    ready = threading.Event()
    since = time.time()

    def listen():
        stream = berth.client.events(decode=True, since=since,
                                     filters={"type": ["container", "volume"]})
        ready.set()
        for e in stream:
            got.append(e)
            if e.get("Type") == "volume" and e.get("Action") == "destroy":
                stream.close()
                return

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    assert ready.wait(10)
    c = names()
    vol = "bt-ev-" + c[-8:]
    berth.docker_ok("volume", "create", vol)
    berth.docker_ok("run", "-d", "--name", c, IMAGE, "sleep", "30")
    berth.docker_ok("pause", c)
    berth.docker_ok("unpause", c)
    berth.docker_ok("stop", "-t", "1", c)
    berth.docker_ok("rm", c)
    berth.docker_ok("volume", "rm", vol)
    th.join(20)
    mine = [(e["Type"], e["Action"]) for e in got
            if e["Actor"]["ID"] == vol or e["Actor"]["Attributes"].get("name") == c]
    assert mine == [("volume", "create"), ("container", "create"), ("container", "start"),
                    ("container", "pause"), ("container", "unpause"), ("container", "kill"),
                    ("container", "die"), ("container", "stop"), ("container", "destroy"),
                    ("volume", "destroy")], mine


def test_bad_event_filters_are_refused(berth):
    p = berth.docker("events", "--filter", "type=bogus", "--until", "1")
    assert p.returncode != 0 and "Invalid filter value for type: bogus" in p.stderr, describe(p)
    import urllib.parse

    q = urllib.parse.quote('{"colour":{"x":true}}')
    status, _, body = berth.request("GET", "/events?filters=" + q)
    assert status == 400 and b"invalid filter" in body, body


def test_on_failure_restarts_n_times(berth, names):
    c = names()
    berth.docker_ok("run", "-d", "--name", c, "--restart", "on-failure:3", IMAGE, "sh", "-c", "exit 2")
    def done():
        s = berth.inspect(c)
        return s if (s["RestartCount"] == 3 and not s["State"]["Running"]
                     and not s["State"]["Restarting"]) else None
    s = wait_for(done, timeout=30)
    assert s, berth.inspect(c)
    assert s["State"]["ExitCode"] == 2 and s["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    # A success is not restarted.
    ok = names()
    berth.docker_ok("run", "-d", "--name", ok, "--restart", "on-failure", IMAGE, "true")
    time.sleep(1.5)
    assert berth.inspect(ok)["RestartCount"] == 0


def test_stop_cancels_always_and_bad_policies(berth, names):
    c = names()
    berth.docker_ok("run", "-d", "--name", c, "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2; exit 1")
    assert wait_for(lambda: berth.inspect(c)["RestartCount"] >= 2, timeout=20)
    berth.docker_ok("stop", "-t", "1", c)
    n = berth.inspect(c)["RestartCount"]
    time.sleep(2)
    s = berth.inspect(c)
    assert not s["State"]["Running"] and not s["State"]["Restarting"], s["State"]
    assert s["RestartCount"] == n
    for bad, msg in [("sometimes", "invalid restart policy"), ("always:3", "maximum retry count")]:
        p = berth.docker("run", "-d", "--restart", bad, IMAGE, "true")
        assert p.returncode != 0 and msg in p.stderr, describe(p)
    p = berth.docker("run", "--rm", "--restart", "always", IMAGE, "true")
    assert p.returncode != 0 and "conflicting options" in p.stderr.lower(), describe(p)


def test_policies_after_a_daemon_restart(daemon_factory):
    d = daemon_factory()
    d.docker_ok("run", "-d", "--name", "always", "--restart", "always", IMAGE, "sleep", "300")
    d.docker_ok("run", "-d", "--name", "unless", "--restart", "unless-stopped", IMAGE, "sleep", "300")
    d.docker_ok("run", "-d", "--name", "plain", IMAGE, "sleep", "300")
    for n in ("always", "unless", "plain"):
        d.docker_ok("stop", "-t", "1", n)
    d.stop()
    d.start()
    state = lambda n: d.inspect(n, "{{.State.Status}}")
    assert wait_for(lambda: state("always") == "running", timeout=15), state("always")
    assert state("unless") == "exited"
    assert state("plain") == "exited"


# -- health checks ------------------------------------------------------------------------------
# `--health-*` flags, status in ps and inspect (with its log), the health_status events, and
# --no-healthcheck.


def wait_status(berth, c, want, timeout=20.0):
    deadline = time.monotonic() + timeout
    s = None
    while time.monotonic() < deadline:
        s = berth.inspect(c)["State"].get("Health")
        if s and s["Status"] == want:
            return s
        time.sleep(0.2)
    raise AssertionError(f"{c}: health {s}")


def test_failing_check_turns_unhealthy_with_event(berth, names):
    c = names()
    t0 = time.time()
    berth.docker_ok("run", "-d", "--name", c, "--health-cmd", "echo probing; test -e /tmp/ok",
                    "--health-interval", "300ms", "--health-retries", "2", "--health-timeout", "2s",
                    IMAGE, "sleep", "60")
    h = berth.inspect(c)["State"]["Health"]
    assert h["Status"] in ("starting", "unhealthy"), h
    h = wait_status(berth, c, "unhealthy")
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1 and "probing" in h["Log"][-1]["Output"], h["Log"]
    assert "(unhealthy)" in berth.docker_ok("ps", "--filter", f"name={c}", "--format", "{{.Status}}")
    berth.docker_ok("exec", c, "touch", "/tmp/ok")
    wait_status(berth, c, "healthy")
    assert "(healthy)" in berth.docker_ok("ps", "--filter", f"name={c}", "--format", "{{.Status}}")
    out = berth.docker_ok("events", "--since", f"{t0:.3f}", "--until", f"{time.time() + 0.5:.3f}",
                          "--filter", f"container={c}", "--filter", "event=health_status",
                          "--format", "{{.Action}}")
    assert out.split("\n")[:2] == ["health_status: unhealthy", "health_status: healthy"], out
    cfg = berth.inspect(c)["Config"]["Healthcheck"]
    assert cfg["Test"] == ["CMD-SHELL", "echo probing; test -e /tmp/ok"]
    assert cfg["Interval"] == 300_000_000 and cfg["Retries"] == 2


def test_timeout_and_no_healthcheck(berth, names):
    c = names()
    berth.docker_ok("run", "-d", "--name", c, "--health-cmd", "sleep 5",
                    "--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "1",
                    IMAGE, "sleep", "60")
    h = wait_status(berth, c, "unhealthy")
    assert "Health check exceeded timeout (300ms)" in h["Log"][-1]["Output"], h
    n = names()
    berth.docker_ok("run", "-d", "--name", n, "--no-healthcheck", IMAGE, "sleep", "60")
    s = berth.inspect(n)
    assert s["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert s["State"].get("Health") is None
    p = berth.docker("run", "--no-healthcheck", "--health-cmd", "true", IMAGE, "true")
    assert p.returncode != 0 and "conflicts with --health-* options" in p.stderr, describe(p)


def test_berth_cli_health_flags(berth, names):
    c = names()
    p = berth.berth_cli("run", "-d", "--name", c, "--health-cmd", "true", "--health-interval", "200ms",
                        IMAGE, "sleep", "60")
    assert p.returncode == 0, describe(p)
    wait_status(berth, c, "healthy")
    out = berth.berth_cli("ps", "--filter", f"name={c}").stdout
    assert "(healthy)" in out, out


# -- update and rename --------------------------------------------------------------------------
# `docker update` of a running container's limits (checked in its cgroup) and restart policy,
# and `docker rename`.


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


def test_conflict_errors_are_worded_as_dockerds(berth, names):
    """Scripts match dockerd's messages (dockerd 20.10's words), so berth uses them."""
    up, created = names(), names()
    berth.docker_ok("run", "-d", "--name", up, IMAGE, "sleep", "300")
    berth.docker_ok("create", "--name", created, IMAGE, "true")
    up_id, created_id = berth.inspect(up, "{{.Id}}"), berth.inspect(created, "{{.Id}}")
    expected = {
        ("rm", up): f"You cannot remove a running container {up_id}. Stop the container "
                    "before attempting removal or force remove",
        ("kill", created): f"Cannot kill container: {created}: Container {created_id} is not "
                           "running",
        ("pause", created): f"Container {created_id} is not running",
        ("unpause", up): f"Container {up_id} is not paused",
        ("exec", created, "true"): f"Container {created_id} is not running",
        ("stop", "nosuch-ctr"): "No such container: nosuch-ctr",
        ("create", "--name", up, IMAGE): f'Conflict. The container name "/{up}" is already in '
                                          f'use by container "{up_id}". You have to remove (or '
                                          "rename) that container to be able to reuse that "
                                          "name.",
        ("rmi", "nosuch-img"): "No such image: nosuch-img:latest",
    }
    for argv, message in expected.items():
        p = berth.docker(*argv)
        assert p.returncode != 0, describe(p)
        assert f"Error response from daemon: {message}" in p.stderr, describe(p)
    berth.docker_ok("pause", up)
    try:
        p = berth.docker("pause", up)
        assert f"Error response from daemon: Container {up_id} is already paused" in p.stderr
        p = berth.docker("rm", up)
        assert (f"You cannot remove a paused container {up_id}. Unpause and then stop the "
                "container before attempting removal or force remove") in p.stderr, describe(p)
    finally:
        berth.docker_ok("unpause", up)


def test_rmi_force_of_a_missing_image_reports_and_succeeds(berth):
    """As the docker CLI: `rmi -f` of an image that does not exist prints the error and exits
    0; without -f it exits 1. Both clients."""
    from conftest import BERTH

    for cli in ([DOCKER_CLI], [str(BERTH)]):
        p = subprocess.run([*cli, "rmi", "-f", "nosuch-img-x"], env=berth.env,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, describe(p)
        assert "Error response from daemon: No such image: nosuch-img-x:latest" in p.stderr
        p = subprocess.run([*cli, "rmi", "nosuch-img-x"], env=berth.env,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, describe(p)
        assert "No such image: nosuch-img-x:latest" in p.stderr


def test_plugins_list_is_empty(berth):
    st, _, body = berth.request("GET", "/plugins")
    assert (st, json.loads(body)) == (200, []), body
    p = berth.docker("plugin", "ls", "--format", "{{.Name}}")
    assert p.returncode == 0 and p.stdout.strip() == "", describe(p)
