"""Events (`docker events`, `GET /events`, the SDK's stream) and restart policies with
dockerd's rules: on-failure:N, always after a daemon restart, unless-stopped staying stopped,
stop/kill cancelling a pending restart."""

from __future__ import annotations

import json
import threading
import time

from conftest import IMAGE, describe


def wait_for(pred, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


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
