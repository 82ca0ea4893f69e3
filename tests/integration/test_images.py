"""Images: listing, `commit`, `system df` and the prunes (prune frees the bytes `system df`
said it would, filters narrow what goes, nothing in use is touched), and tags that remember
(berth only): `berth image log NAME:TAG` lists the images a tag pointed to, newest first;
`berth image rollback NAME:TAG` points it back one version; `image prune` (also `-a`) keeps the
images a tag's log names; the log survives a daemon restart.

Loading hostile archives is in test_security.py, pull and push in test_registry*.py. The prune
tests run on private daemons (prune -a would empty the shared one). None of these tests needs
the bridge network."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
import uuid

from conftest import IMAGE, REGISTRY, Registry, describe


def test_images_lists_busybox(berth):
    out = berth.docker_ok("images")
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s", out, re.M), out
    out = berth.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "busybox:latest" in out.split()
    out = berth.docker_ok("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox")
    assert out.strip() == "linux/amd64"


# -- commit -------------------------------------------------------------------------------------


def test_commit_shows_changes_and_whiteouts(berth, names):
    n = names()
    token = uuid.uuid4().hex[:8]
    berth.docker_ok("run", "-d", "--name", n, IMAGE, "sh", "-c",
                    f"echo {token} > /hello; mkdir -p /d/e; rm /etc/group; sleep 300")
    berth.docker_ok("exec", n, "sh", "-c", "test -f /hello")
    out = berth.docker_ok("commit", "-m", "my message", "-a", "me <m@e>", n,
                          f"committed-{token}:v1").strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", out), out
    assert berth.inspect(n, "{{.State.Status}}") == "running"  # paused and unpaused
    p = berth.run(f"committed-{token}:v1", "sh", "-c",
                  "cat /hello; test -d /d/e && echo dir; ls /etc/group || echo gone")
    assert p.stdout.split() == [token, "dir", "gone"], describe(p)
    img = berth.inspect(f"committed-{token}:v1")
    top = berth.docker_ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                          f"committed-{token}:v1").splitlines()[0]
    assert top == f"sh -c echo {token} > /hello; mkdir -p /d/e; rm /etc/group; sleep 300|my message"
    assert img["Comment"] == "my message"
    assert img["Author"] == "me <m@e>"
    assert img["Config"]["Cmd"] == ["sh", "-c",
                                    f"echo {token} > /hello; mkdir -p /d/e; rm /etc/group; "
                                    "sleep 300"]
    # -c changes the config; the berth CLI does the same as docker's.
    p = berth.berth_cli("commit", "-c", 'CMD ["cat", "/hello"]', "-c", "ENV X=y", n,
                        f"committed-{token}:v2")
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip().startswith("sha256:")
    p = berth.run(f"committed-{token}:v2")
    assert p.stdout.strip() == token, describe(p)
    assert "X=y" in berth.inspect(f"committed-{token}:v2")["Config"]["Env"]


def test_commit_without_changes_adds_no_layer(berth, names):
    n = names()
    berth.docker_ok("create", "--name", n, IMAGE, "true")
    img = berth.docker_ok("commit", n).strip()
    layers = berth.inspect(img)["RootFS"]["Layers"]
    assert layers == berth.inspect(IMAGE)["RootFS"]["Layers"]
    berth.docker_ok("rmi", img)


def test_commit_bad_input(berth, names):
    p = berth.docker("commit", "no-such-container-xyz")
    assert p.returncode != 0
    assert "No such container: no-such-container-xyz" in p.stderr
    n = names()
    berth.docker_ok("create", "--name", n, IMAGE, "true")
    before = berth.image_ids()
    p = berth.docker("commit", n, "Bad:Ref")
    assert p.returncode != 0
    assert "invalid reference format" in p.stderr
    assert berth.image_ids() == before


# -- `system df` and the prunes -----------------------------------------------------------------


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


# -- tag logs: `berth image log` and `image rollback` -------------------------------------------


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


def test_commit_records_the_parent_image(berth, names):
    """As dockerd for a committed image: `Parent` is the container's image id (and the
    image list's ParentId); loaded images have none."""
    n = names()
    berth.docker_ok("run", "--name", n, IMAGE, "sh", "-c", "echo x > /f")
    base = berth.inspect(IMAGE, "{{.Id}}")
    assert berth.inspect(IMAGE, "{{.Parent}}") == ""
    new = berth.docker_ok("commit", n).strip()
    assert berth.inspect(new, "{{.Parent}}") == base
    summary = [i for i in berth.client.api.images(all=True) if i["Id"] == new]
    assert summary and summary[0]["ParentId"] == base, summary
    berth.docker_ok("rmi", new)


def test_load_errors_arrive_in_the_stream_with_200(berth):
    """dockerd answers 200 and puts a load's failure in the JSON stream; the docker CLI
    prints it and fails."""
    st, _, body = berth.request("POST", "/images/load", body=b"garbage\n",
                                headers={"Content-Type": "application/x-tar"})
    assert st == 200, body
    lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
    assert lines and lines[-1]["error"] == lines[-1]["errorDetail"]["message"], lines
    assert lines[-1]["error"], lines
    p = berth.docker("load", input="garbage\n")
    assert p.returncode == 1 and p.stderr.strip(), describe(p)
