"""What an image costs on disk (issue 14, item 6): a pulled layer is kept once unpacked and once
as the blob the registry served, never as an uncompressed tar beside them; a committed layer as
one gzip blob; a loaded layer as its tar as given; `save` regenerates the tars (their sha256 are
the diff IDs, and the archive loads as the same image); a push to another registry sends the
blobs as pulled (same digests); and a data root written by an earlier berth (each layer's
uncompressed tar under its diff ID) still runs, saves and pushes.

Needs `docker-registry` and `skopeo` (a gzip'd image made by another tool than berth); a
missing one fails the test.
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

from conftest import IMAGE, REGISTRY, Registry, berth_ok, describe, ensure_busybox_archive

SKOPEO = shutil.which("skopeo")


def skopeo(*args) -> str:
    assert SKOPEO, "skopeo is not installed (apt-get install skopeo)"
    p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, describe(p)
    return p.stdout


def blob_names(daemon) -> set[str]:
    d = os.path.join(daemon.data_root, "image", "blobs", "sha256")
    return {"sha256:" + n for n in os.listdir(d)}


def manifest_of(registry, name: str) -> dict:
    return json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                             f"docker://{registry.host}/{name}"))


def push_with_skopeo(registry, name: str) -> dict:
    """The busybox image gzip'd by skopeo (bytes berth never made) at `name`; its manifest."""
    assert os.path.exists(REGISTRY), "docker-registry is not installed"
    skopeo("copy", "--dest-tls-verify=false", "--dest-compress-format", "gzip",
           f"docker-archive:{ensure_busybox_archive()}", f"docker://{registry.host}/{name}")
    return manifest_of(registry, name)


def saved_layers(archive: str) -> list[bytes]:
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        return [t.extractfile(p).read() for p in manifest[0]["Layers"]]


def check_save_round_trips(daemon, daemon_factory, name: str) -> None:
    """`save` gives tars whose sha256 are the image's diff IDs, loading elsewhere as the same
    image."""
    diff_ids = json.loads(daemon.inspect(name, "{{json .RootFS.Layers}}"))
    out = tempfile.mktemp(prefix="berth-save.", suffix=".tar")
    try:
        berth_ok(daemon, "save", "-o", out, name)
        layers = saved_layers(out)
        assert ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers] == diff_ids
        other = daemon_factory(load=False)
        berth_ok(other, "load", "-i", out)
        assert other.inspect(name, "{{.Id}}") == daemon.inspect(name, "{{.Id}}")
    finally:
        if os.path.exists(out):
            os.unlink(out)


def test_a_pulled_image_keeps_the_blobs_as_pulled_and_no_uncompressed_copy(daemon_factory,
                                                                           registry):
    m = push_with_skopeo(registry, "disk/bb:v1")
    layer_digests = [l["digest"] for l in m["layers"]]
    d = daemon_factory(load=False)
    name = f"{registry.host}/disk/bb:v1"
    berth_ok(d, "pull", name)
    diff_ids = json.loads(d.inspect(name, "{{json .RootFS.Layers}}"))
    image_id = d.inspect(name, "{{.Id}}")
    # The config and the blobs as pulled, nothing else: no uncompressed tar under a diff ID.
    assert blob_names(d) == {image_id, *layer_digests}, (blob_names(d), diff_ids)
    # Sizes are the uncompressed layers', as before (and as dockerd shows them).
    sizes = [len(l) for l in saved_layers_of(d, name)]
    assert int(d.inspect(name, "{{.Size}}")) == sum(sizes)
    p = d.run(name, "echo", "pulled-ok")
    assert p.returncode == 0 and "pulled-ok" in p.stdout, describe(p)
    check_save_round_trips(d, daemon_factory, name)
    # A push to another registry sends the same bytes: the same layer digests.
    other = Registry()
    try:
        again = f"{other.host}/disk/copy:v1"
        berth_ok(d, "tag", name, again)
        out = berth_ok(d, "push", again)
        assert "Pushed" in out, out
        pushed = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{again}"))
        assert [l["digest"] for l in pushed["layers"]] == layer_digests, pushed
        assert [l["size"] for l in pushed["layers"]] == [l["size"] for l in m["layers"]]
        # Removing the image leaves no blob behind.
        berth_ok(d, "rmi", "-f", image_id)
        assert blob_names(d) == set(), blob_names(d)
    finally:
        other.stop()


def saved_layers_of(daemon, name: str) -> list[bytes]:
    out = tempfile.mktemp(prefix="berth-save.", suffix=".tar")
    try:
        berth_ok(daemon, "save", "-o", out, name)
        return saved_layers(out)
    finally:
        if os.path.exists(out):
            os.unlink(out)


def test_a_loaded_image_keeps_its_tars_once(daemon_factory):
    d = daemon_factory()  # loads the busybox archive
    diff_ids = json.loads(d.inspect(IMAGE, "{{json .RootFS.Layers}}"))
    image_id = d.inspect(IMAGE, "{{.Id}}")
    # The config and each layer's tar as the archive gave it (as containerd keeps an import).
    assert blob_names(d) == {image_id, *diff_ids}, blob_names(d)
    check_save_round_trips(d, daemon_factory, IMAGE)


def test_a_committed_layer_keeps_one_gzip_blob(daemon_factory):
    d = daemon_factory()
    berth_ok(d, "run", "--name", "maker", IMAGE, "sh", "-c", "seq 1 20000 > /data.txt")
    berth_ok(d, "commit", "maker", "committed:1")
    diff_ids = json.loads(d.inspect("committed:1", "{{json .RootFS.Layers}}"))
    new = diff_ids[-1]
    names = blob_names(d)
    assert new not in names, names
    with open(os.path.join(d.data_root, "image/layerblobs", new[7:] + ".json")) as f:
        rec = json.load(f)
    assert rec["compression"] == "gzip" and rec["blob"] in names, rec
    with open(os.path.join(d.data_root, "image/blobs/sha256", rec["blob"][7:]), "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    check_save_round_trips(d, daemon_factory, "committed:1")
    p = d.run("committed:1", "tail", "-n1", "/data.txt")
    assert p.returncode == 0 and p.stdout.strip() == "20000", describe(p)


def to_old_form(data_root: str) -> int:
    """Rewrites an image store as berth wrote it before: each layer's uncompressed tar under its
    diff ID, no record, no compressed blob. Returns how many layers had a record."""
    image = os.path.join(data_root, "image")
    records = os.path.join(image, "layerblobs")
    n = 0
    for rec_name in os.listdir(records):
        with open(os.path.join(records, rec_name)) as f:
            rec = json.load(f)
        blob = os.path.join(image, "blobs/sha256", rec["blob"][7:])
        tar = os.path.join(image, "blobs/sha256", rec_name.removesuffix(".json"))
        if rec["compression"] == "gzip":
            with gzip.open(blob) as src, open(tar, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.unlink(blob)
        else:
            assert rec["compression"] == "none" and blob == tar, rec
        os.unlink(os.path.join(records, rec_name))
        n += 1
    return n


def test_a_data_root_of_the_old_form_still_works(daemon_factory, registry):
    d = daemon_factory()
    berth_ok(d, "run", "--name", "maker", IMAGE, "sh", "-c", "echo committed > /c.txt")
    berth_ok(d, "commit", "maker", "committed:1")
    diff_ids = json.loads(d.inspect("committed:1", "{{json .RootFS.Layers}}"))
    size = d.inspect("committed:1", "{{.Size}}")
    history = berth_ok(d, "history", "--no-trunc", "committed:1")
    d.stop()
    assert to_old_form(d.data_root) == len(set(diff_ids))
    assert set(diff_ids) <= blob_names(d)
    d.start()
    assert d.inspect("committed:1", "{{.Size}}") == size
    assert berth_ok(d, "history", "--no-trunc", "committed:1") == history
    p = d.run("committed:1", "cat", "/c.txt")
    assert p.returncode == 0 and "committed" in p.stdout, describe(p)
    check_save_round_trips(d, daemon_factory, "committed:1")
    name = f"{registry.host}/old/bb:v1"
    berth_ok(d, "tag", "committed:1", name)
    out = berth_ok(d, "push", name)
    assert "Pushed" in out, out
    fresh = daemon_factory(load=False)
    berth_ok(fresh, "pull", name)
    assert fresh.inspect(name, "{{.Id}}") == d.inspect("committed:1", "{{.Id}}")
