"""Tags remember (berth only): `berth image log NAME:TAG` lists the images a tag pointed to,
newest first; `berth image rollback NAME:TAG` points it back one version; `image prune` (also
`-a`) keeps the images a tag's log names; the log survives a daemon restart.

The prune tests run on a private daemon (prune -a would empty the shared one). None of these
tests needs the bridge network."""

from __future__ import annotations

import io
import os
import json
import re
import tarfile
import time
import uuid

from conftest import IMAGE, describe


def build(d, tag: str, marker: str) -> str:
    """`berth build -t TAG -` of a busybox child whose /marker holds `marker`; returns its ID."""
    dockerfile = f"FROM {IMAGE}\nRUN echo {marker} > /marker\n"
    p = d.berth_cli("build", "-q", "-t", tag, "-", input=dockerfile, timeout=120)
    assert p.returncode == 0, describe(p)
    return p.stdout.strip().splitlines()[-1]


def log_rows(d, tag: str) -> list[list[str]]:
    p = d.berth_cli("image", "log", "--no-trunc", "--format", "{{.ID}} {{.How}} {{.Previous}}",
                    tag)
    assert p.returncode == 0, describe(p)
    return [line.split() for line in p.stdout.splitlines()]


def marker(d, tag: str) -> str:
    p = d.berth_cli("run", "--rm", tag, "cat", "/marker", timeout=60)
    assert p.returncode == 0, describe(p)
    return p.stdout.strip()


def test_log_prune_rollback_and_restart(daemon_factory):
    d = daemon_factory()
    old = build(d, "tl/app:1", "old-content")
    new = build(d, "tl/app:1", "new-content")
    assert old != new and old.startswith("sha256:")

    # The log: newest first, with how and the previous image.
    assert log_rows(d, "tl/app:1") == [[new, "build", old], [old, "build"]]
    p = d.berth_cli("image", "log", "tl/app:1")
    assert p.returncode == 0, describe(p)
    lines = p.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["IMAGE ID", "CREATED", "WHEN", "HOW"], lines
    assert lines[1].startswith(new[7:19]) and lines[1].rstrip().endswith("build"), lines
    assert "ago" in lines[1], lines
    assert lines[2].startswith(old[7:19]), lines
    q = d.berth_cli("image", "log", "-q", "tl/app:1")
    assert q.stdout.split() == [new[7:19], old[7:19]], describe(q)

    # The old image is untagged like any other (`<none>`, dangling) ...
    dangling = d.docker_ok("images", "-q", "--no-trunc", "--filter", "dangling=true").split()
    assert old in dangling and new not in dangling
    listed = d.docker_ok("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert f"{old} <none>:<none>" in listed.splitlines(), listed
    # ... but prune keeps it (and, with -a, the tag's current image), as the log names both.
    d.docker_ok("image", "prune", "-f")
    d.docker_ok("image", "prune", "-a", "-f")
    ids = d.image_ids()
    assert old in ids and new in ids, ids
    tags = d.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert IMAGE + ":latest" not in tags, "prune -a still removes unused tags without history"

    # Rollback goes back to the old image, says so, and announces it as a tag event.
    since = str(int(time.time()) - 1)
    p = d.berth_cli("image", "rollback", "tl/app:1")
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip() == f"Rolled back tl/app:1: sha256:{new[7:19]} -> sha256:{old[7:19]}"
    assert d.inspect("tl/app:1", "{{.Id}}") == old
    assert marker(d, "tl/app:1") == "old-content"
    events = d.docker_ok("events", "--since", since, "--until", str(int(time.time()) + 1),
                         "--filter", "type=image", "--format", "{{.Action}} {{.ID}} {{.Actor.Attributes.name}}")
    assert f"tag {old} tl/app:1" in events.splitlines(), events
    assert log_rows(d, "tl/app:1")[0] == [old, "rollback", new]

    # Nothing earlier: a clear error, exit 1, and nothing changes.
    before = log_rows(d, "tl/app:1")
    p = d.berth_cli("image", "rollback", "tl/app:1")
    assert p.returncode == 1, describe(p)
    assert "tl/app:1 has no earlier image to roll back to" in p.stderr, describe(p)
    assert d.inspect("tl/app:1", "{{.Id}}") == old
    assert log_rows(d, "tl/app:1") == before

    # The log survives a daemon restart, and so does the protection from prune.
    d.stop()
    d.start()
    assert log_rows(d, "tl/app:1") == before
    d.docker_ok("image", "prune", "-a", "-f")
    assert new in d.image_ids()

    # Removing a logged image by ID still works; the log then shows it as removed.
    d.docker_ok("rmi", new)
    assert new not in d.image_ids()
    p = d.berth_cli("image", "log", "--no-trunc", "--format", "{{.ID}} {{.CreatedSince}}",
                    "tl/app:1")
    assert f"{new} <removed>" in p.stdout.splitlines(), describe(p)


def test_walks_back_two_versions_and_refuses_a_removed_image(daemon_factory):
    d = daemon_factory()
    v1 = build(d, "walk:latest", "v1")
    v2 = build(d, "walk", "v2")
    v3 = build(d, "walk", "v3")
    assert len({v1, v2, v3}) == 3
    d.berth_cli("image", "rollback", "walk")
    assert d.inspect("walk", "{{.Id}}") == v2
    # A second rollback goes back one more version (it does not toggle back to v3).
    p = d.berth_cli("image", "rollback", "walk")
    assert p.returncode == 0, describe(p)
    assert marker(d, "walk") == "v1"

    # Move forward again, remove the image a rollback would go to: refused, nothing changes.
    d.docker_ok("tag", v3, "walk")
    assert log_rows(d, "walk")[0] == [v3, "tag", v1]
    d.docker_ok("rmi", v1)
    p = d.berth_cli("image", "rollback", "walk")
    assert p.returncode == 1, describe(p)
    assert f"its previous image {v1} was removed" in p.stderr, describe(p)
    assert d.inspect("walk", "{{.Id}}") == v3


def test_unknown_tag_and_api(berth):
    token = uuid.uuid4().hex[:8]
    p = berth.berth_cli("image", "rollback", f"nosuch-{token}")
    assert p.returncode == 1, describe(p)
    assert f"No such image: nosuch-{token}:latest" in p.stderr, describe(p)
    p = berth.berth_cli("image", "log", f"nosuch-{token}:v1")
    assert p.returncode == 1, describe(p)
    assert f"No such image: nosuch-{token}:v1" in p.stderr, describe(p)

    status, _, body = berth.request("GET", f"/v1.50/images/nosuch-{token}/log")
    assert status == 404, body
    assert json.loads(body)["message"] == f"No such image: nosuch-{token}:latest"

    # A fresh tag has one entry and nothing to roll back to (409).
    tag = f"tl-api-{token}:v1"
    berth.docker_ok("tag", IMAGE, tag)
    try:
        busybox_id = berth.inspect(IMAGE, "{{.Id}}")
        status, _, body = berth.request("GET", f"/images/{tag}/log")
        assert status == 200, body
        entries = json.loads(body)
        assert len(entries) == 1 and entries[0]["Id"] == busybox_id, entries
        assert entries[0]["How"] == "tag" and "Previous" not in entries[0], entries
        assert isinstance(entries[0]["Created"], int) and entries[0]["Time"], entries
        status, _, body = berth.request("POST", f"/images/{tag}/rollback")
        assert status == 409, body
        assert json.loads(body)["message"] == f"{tag} has no earlier image to roll back to"
    finally:
        berth.docker("rmi", tag)
    # The tag is gone and with it its log.
    status, _, _ = berth.request("GET", f"/images/{tag}/log")
    assert status == 404


def rootfs_tar(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("marker")
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_import_moves_are_logged_and_rolled_back_over_the_api(berth):
    tag = f"tl-imp-{uuid.uuid4().hex[:8]}:1"
    made: list[str] = []
    try:
        for content in (b"one", b"two"):
            p = berth.docker("import", "-", tag, input=rootfs_tar(content), text=False)
            assert p.returncode == 0, describe(p)
            made.append(p.stdout.decode().strip())
        a, b = made
        assert log_rows(berth, tag) == [[b, "import", a], [a, "import"]]
        status, _, body = berth.request("POST", f"/images/{tag}/rollback")
        assert status == 200, body
        assert json.loads(body) == {"Tag": tag, "From": b, "To": a}
        assert berth.inspect(tag, "{{.Id}}") == a
    finally:
        berth.docker("rmi", tag)
        for image_id in made:
            berth.docker("rmi", image_id)


def test_load_commit_and_pull_moves_are_logged(daemon_factory):
    from test_registry import REGISTRY, Registry  # the registry server those tests start

    d = daemon_factory()
    busybox_id = d.inspect(IMAGE, "{{.Id}}")
    assert log_rows(d, IMAGE) == [[busybox_id, "load"]]

    d.docker_ok("create", "--name", "tl-commit", IMAGE, "true")
    committed = d.docker_ok("commit", "tl-commit", "tl-commit:1").strip()
    d.docker_ok("rm", "tl-commit")
    assert log_rows(d, "tl-commit:1") == [[committed, "commit"]]

    if not os.path.exists(REGISTRY):
        return
    registry = Registry()
    try:
        name = f"{registry.host}/tl/bb:v1"
        d.docker_ok("tag", IMAGE, name)
        d.docker_ok("push", name, timeout=120)
        built = build(d, name, "local")
        d.docker_ok("pull", name, timeout=120)
        assert d.inspect(name, "{{.Id}}") == busybox_id
        assert log_rows(d, name) == [
            [busybox_id, "pull", built],
            [built, "build", busybox_id],
            [busybox_id, "tag"],
        ]
    finally:
        registry.stop()
