"""The clients themselves against berth: the docker CLI's view of the server, the Python docker
SDK (docker-py from PyPI) plus raw HTTP edge cases, and the `berth` CLI (Docker's command names,
output and exit codes with DOCKER_HOST set; `berth runtime`; a client without daemon code).

Most feature tests elsewhere drive the docker CLI; these cover what is specific to each client."""

from __future__ import annotations

import json
import re
import subprocess
import time

import docker
import pytest

from conftest import BERTH, BERTHD, IMAGE, RUNTIME, describe


def test_version_shows_server(berth):
    out = berth.docker_ok("version")
    assert re.search(r"^Server:", out, re.M), out
    assert re.search(r"API version:\s+1\.\d+", out), out


def test_info(berth):
    out = berth.docker_ok("info", "--format", "{{.ServerVersion}} {{.OperatingSystem}}")
    assert out.strip(), out


def test_no_swarm_as_docker_says_it(berth):
    """Issue 15 item 4: `docker info` shows swarm inactive, and the swarm commands fail with
    dockerd's message (the docker CLI reads the 503 as "no swarm")."""
    assert berth.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    for args in (["service", "ls"], ["node", "ls"], ["secret", "ls"], ["config", "ls"]):
        p = berth.docker(*args)
        assert p.returncode != 0, describe(p)
        assert "This node is not a swarm manager." in p.stderr, describe(p)


# -- the Python docker SDK, and raw HTTP --------------------------------------------------------


def test_ping_and_version(berth):
    c = berth.client
    assert c.ping() is True
    v = c.version()
    assert v["ApiVersion"].startswith("1.")
    assert v["Os"] == "linux"
    assert v["Arch"] == "amd64"
    assert "MinAPIVersion" in v


def test_ping_headers(berth):
    status, headers, body = berth.request("GET", "/_ping")
    assert status == 200 and body == b"OK"
    lower = {k.lower(): v for k, v in headers.items()}
    assert "api-version" in lower, headers
    status, _, body = berth.request("HEAD", "/_ping")
    assert status == 200


def test_versioned_paths(berth):
    for prefix in ("/v1.24", "/v1.41", "/v1.50"):
        status, _, body = berth.request("GET", prefix + "/version")
        assert status == 200, (prefix, body)
        assert "ApiVersion" in json.loads(body)


def test_run_remove_output(berth):
    out = berth.client.containers.run(IMAGE, ["echo", "hello sdk"], remove=True)
    assert out == b"hello sdk\n"


def test_run_nonzero_raises_container_error(berth):
    with pytest.raises(docker.errors.ContainerError) as ei:
        berth.client.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 3"], remove=True,
                                    stderr=True)
    assert ei.value.exit_status == 3


def test_detached_lifecycle(berth, names):
    name = names()
    c = berth.client.containers.run(IMAGE, ["sh", "-c", "echo started; exec sleep 300"],
                                    detach=True, name=name, labels={"berth.test": "sdk"})
    try:
        c.reload()
        assert c.status == "running"
        assert c.name == name
        assert c.labels.get("berth.test") == "sdk"

        # logs
        for _ in range(50):
            if c.logs() == b"started\n":
                break
            time.sleep(0.1)
        assert c.logs() == b"started\n"

        # exec
        r = c.exec_run(["echo", "x"])
        assert r.exit_code == 0 and r.output == b"x\n"
        r = c.exec_run(["sh", "-c", "exit 9"])
        assert r.exit_code == 9

        # list with filters
        listed = berth.client.containers.list(filters={"label": "berth.test=sdk"})
        assert c.id in [x.id for x in listed]

        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
        assert c.attrs["State"]["ExitCode"] in (137, 143)
        assert c.wait(timeout=10)["StatusCode"] in (137, 143)
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        berth.client.containers.get(c.id)


def test_images_list_and_get(berth):
    images = berth.client.images.list()
    tags = [t for img in images for t in img.tags]
    assert "busybox:latest" in tags, tags
    img = berth.client.images.get("busybox:latest")
    assert img.id.startswith("sha256:")
    assert img.attrs["Config"]["Cmd"] == ["sh"]
    assert img.attrs["RootFS"]["Type"] == "layers"
    assert berth.client.images.get(img.id).id == img.id
    assert berth.client.images.get(img.id[len("sha256:"):][:12]).id == img.id


def test_not_found_errors(berth):
    with pytest.raises(docker.errors.NotFound):
        berth.client.containers.get("no-such-container-berth")
    with pytest.raises(docker.errors.ImageNotFound):
        berth.client.images.get("no-such-image-berth:latest")
    with pytest.raises(docker.errors.ImageNotFound):
        berth.client.containers.create("no-such-image-berth:latest", ["true"])


def test_name_conflict_is_409(berth, names):
    name = names()
    berth.client.containers.create(IMAGE, ["true"], name=name)
    with pytest.raises(docker.errors.APIError) as ei:
        berth.client.containers.create(IMAGE, ["true"], name=name)
    assert ei.value.status_code == 409
    assert "already in use" in str(ei.value)


def test_malformed_json_is_400(berth):
    api = berth.client.api
    res = api._post(api._url("/containers/create"), data="{this is not json",
                    headers={"Content-Type": "application/json"})
    assert res.status_code == 400, res.text
    # the error body is Docker's {"message": ...}
    assert "message" in res.json()


def test_malformed_json_raw_http(berth):
    before = set(berth.docker_ok("ps", "-aq", "--no-trunc").split())
    status, headers, body = berth.request(
        "POST", "/v1.41/containers/create", body=b'{"Image": "busybox", "Cmd": [',
        headers={"Content-Type": "application/json"})
    assert status == 400, body
    assert json.loads(body)["message"]
    # wrong type for a field
    status, _, body = berth.request(
        "POST", "/v1.41/containers/create", body=b'{"Image": "busybox", "Cmd": 42}',
        headers={"Content-Type": "application/json"})
    assert status == 400, body
    # nothing was created by the rejected requests
    assert set(berth.docker_ok("ps", "-aq", "--no-trunc").split()) == before


def test_unknown_route_is_404(berth):
    status, _, body = berth.request("GET", "/v1.41/no/such/route")
    assert status == 404, body


def test_unknown_container_http_404(berth):
    status, _, body = berth.request("GET", "/v1.41/containers/no-such-container-berth/json")
    assert status == 404
    assert "No such container" in json.loads(body)["message"]


def test_bad_api_version(berth):
    status, _, body = berth.request("GET", "/v1.0/version")
    assert status == 400, body


# -- the berth CLI ------------------------------------------------------------------------------


def test_version(berth):
    p = berth.berth_cli("version")
    assert p.returncode == 0, describe(p)
    assert "Server" in p.stdout, p.stdout


def test_run_rm_echo(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "echo", "hi")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "hi\n"


def test_run_exit_code(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "sh", "-c", "exit 7")
    assert p.returncode == 7, describe(p)


def test_run_stdin(berth):
    p = berth.berth_cli("run", "--rm", "-i", IMAGE, "cat", input="to berth\n")
    assert p.returncode == 0, describe(p)
    assert p.stdout == "to berth\n"


def test_ps_images_inspect_logs_exec_rm(berth, names):
    name = names()
    p = berth.berth_cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
                        "echo logged; exec sleep 300")
    assert p.returncode == 0, describe(p)
    cid = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), p.stdout

    p = berth.berth_cli("ps", "-a", "--format", "{{.Names}}")
    assert p.returncode == 0, describe(p)
    assert name in p.stdout.split()

    p = berth.berth_cli("ps")
    assert p.returncode == 0, describe(p)
    header = p.stdout.splitlines()[0]
    for col in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"):
        assert col in header, header
    assert any(ln.startswith(cid[:12]) and ln.rstrip().endswith(name)
               for ln in p.stdout.splitlines()[1:]), p.stdout

    p = berth.berth_cli("images")
    assert p.returncode == 0, describe(p)
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s", p.stdout, re.M), p.stdout

    p = berth.berth_cli("inspect", name)
    assert p.returncode == 0, describe(p)
    info = json.loads(p.stdout)
    assert isinstance(info, list) and info[0]["Id"] == cid
    assert info[0]["State"]["Running"] is True
    assert info[0]["Config"]["Image"] == IMAGE

    p = berth.berth_cli("inspect", "-f", "{{.State.Status}}", name)
    assert p.stdout.strip() == "running", describe(p)

    for _ in range(50):
        p = berth.berth_cli("logs", name)
        if p.stdout == "logged\n":
            break
        time.sleep(0.1)
    assert p.returncode == 0 and p.stdout == "logged\n", describe(p)

    p = berth.berth_cli("exec", name, "echo", "x")
    assert p.returncode == 0 and p.stdout == "x\n", describe(p)
    p = berth.berth_cli("exec", "-i", name, "cat", input="via exec\n")
    assert p.returncode == 0 and p.stdout == "via exec\n", describe(p)

    p = berth.berth_cli("rm", "-f", name)
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip() == name
    p = berth.berth_cli("ps", "-a", "--format", "{{.Names}}")
    assert name not in p.stdout.split()


def test_berth_runtime_runs_berth_runtime(prerequisites):
    # `berth runtime ARGS` execs the berth-runtime next to berth with ARGS untouched
    for args in (["--help"], ["--version"], ["list", "--help"], []):
        via = subprocess.run([str(BERTH), "runtime", *args], capture_output=True, text=True,
                             timeout=10)
        own = subprocess.run([str(RUNTIME), *args], capture_output=True, text=True, timeout=10)
        assert (via.returncode, via.stdout, via.stderr) == \
            (own.returncode, own.stdout, own.stderr), describe(via) + "\n" + describe(own)
    p = subprocess.run([str(BERTH), "runtime", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("usage: berth-runtime"), describe(p)


def test_the_client_links_neither_daemon_nor_runtime(prerequisites):
    # strings of the engine, the daemon and the runtime crates: in their binaries, not in berth
    client = BERTH.read_bytes()
    daemon = BERTHD.read_bytes()
    runtime = RUNTIME.read_bytes()
    for marker, home in ((b"error gathering device information", daemon),
                         (b"berth daemon: starting the runtime", daemon),
                         (b"memfd_create for the sealed runtime binary", runtime),
                         (b"usage: berth-runtime [--root DIR]", runtime)):
        assert marker in home, marker
        assert marker not in client, f"berth links the code behind {marker!r} again"
    assert len(client) < len(daemon), (len(client), len(daemon))


def test_unknown_image_125(berth):
    p = berth.berth_cli("run", "--rm", "no-such-image-berth:latest", "true")
    assert p.returncode == 125, describe(p)
    assert "No such image" in p.stderr or "Unable to find image" in p.stderr, describe(p)


def test_unknown_flag_125(berth):
    p = berth.berth_cli("run", "--nosuchflag", IMAGE, "true")
    assert p.returncode == 125, describe(p)


def test_command_not_found_127(berth):
    p = berth.berth_cli("run", "--rm", IMAGE, "nosuchcmd")
    assert p.returncode == 127, describe(p)


def test_rm_unknown(berth):
    p = berth.berth_cli("rm", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such container: nope" in p.stderr, describe(p)


def test_load_and_save_roundtrip(berth, tmp_path):
    out = tmp_path / "saved.tar"
    p = berth.berth_cli("save", "-o", str(out), "busybox:latest")
    assert p.returncode == 0, describe(p)
    assert out.stat().st_size > 1_000_000
    p = berth.berth_cli("load", "-i", str(out))
    assert p.returncode == 0, describe(p)
    assert "busybox:latest" in p.stdout, p.stdout
