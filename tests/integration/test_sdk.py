"""The Python docker SDK (docker-py from PyPI) against berth, plus raw HTTP edge cases."""

from __future__ import annotations

import json
import time

import docker
import pytest

from conftest import IMAGE


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
