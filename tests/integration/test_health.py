"""Health checks: `--health-*` flags, status in ps and inspect (with its log), the
health_status events, and --no-healthcheck."""

from __future__ import annotations

import json
import time

from conftest import IMAGE, describe


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
