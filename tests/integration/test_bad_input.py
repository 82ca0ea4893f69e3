"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import json
import os
import tarfile
import uuid

import pytest

import make_image  # scripts/make_image.py (conftest puts scripts/ on sys.path)
from conftest import IMAGE, describe


def files_named(root: str, name: str) -> list[str]:
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if n == name:
                hits.append(os.path.join(dirpath, n))
    return hits


def layer_with(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    lb = make_image.LayerBuilder()
    lb.file("ok.txt", b"fine\n")
    for ti, data in entries:
        lb.raw(ti, data)
    return lb.finish()


def reg(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.REGTYPE
    ti.mode = 0o644
    return ti, data


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    ti.mode = 0o777
    return ti, None


def test_corrupt_archive(berth, tmp_path):
    before = berth.image_ids()
    bad = tmp_path / "random.tar"
    bad.write_bytes(os.urandom(64 * 1024))
    p = berth.docker("load", "-i", str(bad))
    assert p.returncode != 0, describe(p)
    assert p.stderr.strip(), describe(p)
    assert berth.image_ids() == before


def test_truncated_archive(berth, tmp_path):
    from conftest import ensure_busybox_archive

    before = berth.image_ids()
    data = ensure_busybox_archive().read_bytes()
    bad = tmp_path / "truncated.tar"
    bad.write_bytes(data[: len(data) // 2])
    p = berth.docker("load", "-i", str(bad))
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before


def test_layer_digest_mismatch(berth, tmp_path):
    """manifest.json names a layer blob whose content does not hash to its diff_id."""
    before = berth.image_ids()
    layer = layer_with([])
    arch = str(tmp_path / "mismatch.tar")
    cfg = make_image.image_config(["sha256:" + "0" * 64])
    make_image.write_docker_archive(arch, [layer], f"mismatch-{uuid.uuid4().hex[:6]}:x", cfg)
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before


@pytest.mark.parametrize("entry", ["../../{marker}", "../../../../../../../../../../tmp/{marker}",
                                   "a/../../../{marker}"])
def test_path_traversal_layer_refused(berth, tmp_path, entry):
    """A layer entry that climbs out of the layer is refused (dockerd 20.10 instead confines it
    to the layer root through a chroot; berth's rule is: bad input is an error, nothing changes).
    """
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    before = berth.image_ids()
    layer = layer_with([reg(entry.format(marker=marker))])
    arch = str(tmp_path / "evil.tar")
    tag = f"evil-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    # nothing written outside: not in the daemon's tree, not in /tmp, not at /
    assert files_named(berth.base, marker) == []
    assert not os.path.exists(f"/tmp/{marker}")
    assert not os.path.exists(f"/{marker}")
    assert berth.image_ids() == before
    assert tag.split(":")[0] not in berth.docker_ok("images", "--format", "{{.Repository}}")


def test_hardlink_escape_refused(berth, tmp_path):
    before = berth.image_ids()
    layer = layer_with([link("passwd-link", "../../../../../../../../etc/passwd",
                             tarfile.LNKTYPE)])
    arch = str(tmp_path / "hardlink.tar")
    make_image.write_docker_archive(arch, [layer], f"hardlink-{uuid.uuid4().hex[:6]}:latest")
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before
    assert files_named(berth.base, "passwd-link") == []


def test_symlink_escape_writes_nothing_outside(berth, tmp_path):
    """A symlink to / followed by a file through it: either refused, or kept inside the layer."""
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    layer = layer_with([link("esc", "../../../../../../../../../../tmp"),
                        reg(f"esc/{marker}")])
    arch = str(tmp_path / "symlink.tar")
    tag = f"symesc-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert not os.path.exists(f"/tmp/{marker}"), describe(p)
    if p.returncode == 0:
        berth.docker("rmi", tag)


def test_absolute_path_entry_stays_inside(berth, tmp_path):
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    layer = layer_with([reg(f"/tmp/{marker}")])
    arch = str(tmp_path / "abs.tar")
    tag = f"abs-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert not os.path.exists(f"/tmp/{marker}"), describe(p)
    if p.returncode == 0:
        berth.docker("rmi", tag)


def test_unknown_run_flag(berth):
    p = berth.docker("run", "--nosuchflag", IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "unknown flag" in p.stderr


def test_inspect_unknown_object(berth):
    p = berth.docker("inspect", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such object: nope" in p.stderr, describe(p)


def test_rm_unknown_container(berth):
    p = berth.docker("rm", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such container: nope" in p.stderr, describe(p)


def test_invalid_container_name(berth):
    p = berth.docker("create", "--name", "bad/name!", IMAGE, "true")
    assert p.returncode != 0, describe(p)
    assert "Invalid container name" in p.stderr, describe(p)


def test_invalid_memory_value(berth):
    before = set(berth.docker_ok("ps", "-aq", "--no-trunc").split())
    p = berth.docker("run", "--rm", "--memory", "1k", IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "Minimum memory limit allowed is 6MB" in p.stderr, describe(p)
    assert set(berth.docker_ok("ps", "-aq", "--no-trunc").split()) == before


def test_bind_mount_missing_source(berth):
    before = set(berth.docker_ok("ps", "-aq", "--no-trunc").split())
    p = berth.docker("run", "--rm", "--mount",
                     f"type=bind,source=/nonexistent-{uuid.uuid4().hex[:6]},target=/data",
                     IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "does not exist" in p.stderr, describe(p)
    assert set(berth.docker_ok("ps", "-aq", "--no-trunc").split()) == before


def test_archive_paths_with_a_nul_byte_are_the_clients_error(berth, names):
    # Found by fuzzing: these answered 500. No Linux path holds a NUL byte: 400, with a JSON
    # message, for stat (HEAD), get and put alike.
    c = names()
    berth.docker_ok("create", "--name", c, IMAGE, "true")
    for method, body in (("HEAD", None), ("GET", None), ("PUT", b"not a tar")):
        status, _, data = berth.request(method, f"/containers/{c}/archive?path=/a%00b", body=body)
        assert status == 400, (method, status, data)
        if method != "HEAD":
            assert "NUL" in json.loads(data)["message"], data
    status, _, data = berth.request("GET", "/containers/99999999999999999999/archive?path=/etc")
    assert status == 404, (status, data)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_an_oversized_json_body_is_413_and_never_held(daemon_factory):
    # A 256 MiB `POST /containers/create` was accepted and grew the daemon by over a GiB.
    d = daemon_factory(load=False)
    before = _rss_kib(d.proc.pid)
    big = b'{"Image": "busybox", "Env": ["X=' + b"x" * (64 << 20) + b'"]}'
    status, _, data = d.request("POST", "/containers/create", body=big,
                                headers={"Content-Type": "application/json"}, timeout=120)
    assert status == 413, (status, data[:200])
    assert "max-json-body" in json.loads(data)["message"]
    grown = _rss_kib(d.proc.pid) - before
    assert grown < 32 * 1024, f"daemon RSS grew by {grown} KiB"
    assert d.docker_ok("ps", "-aq").strip() == "", "a refused create left a container"
    assert d.ping()


def test_the_json_body_cap_is_configurable(daemon_factory):
    d = daemon_factory(start=False)
    d.extra_args = ["--max-json-body", "2k"]
    d.start()
    d.load_busybox()
    body = json.dumps({"Image": IMAGE, "Env": ["X=" + "x" * 4096]})
    status, _, data = d.request("POST", "/containers/create", body=body,
                                headers={"Content-Type": "application/json"})
    assert status == 413, (status, data)
    small = json.dumps({"Image": IMAGE, "Cmd": ["true"]})
    status, _, data = d.request("POST", "/containers/create", body=small,
                                headers={"Content-Type": "application/json"})
    assert status == 201, (status, data)


def test_a_layer_past_the_size_cap_is_refused_and_leaves_nothing(daemon_factory):
    # `max-layer-size` caps what one layer may expand to (a 2 MiB gzip layer can hold 2 GiB of
    # zeros); the busybox layer (about 2 MiB) is past a 1 MiB cap.
    from conftest import ensure_busybox_archive
    d = daemon_factory(start=False)
    d.extra_args = ["--max-layer-size", "1m"]
    d.start()
    p = d.docker("load", "-i", str(ensure_busybox_archive()), timeout=120)
    assert p.returncode != 0, describe(p)
    assert "max-layer-size" in p.stdout + p.stderr, describe(p)
    assert d.docker_ok("images", "-q").strip() == ""
    image_root = os.path.join(d.data_root, "image")
    for sub in ("layers", "tmp", "ingest"):
        left = os.listdir(os.path.join(image_root, sub)) if os.path.isdir(
            os.path.join(image_root, sub)) else []
        assert left == [], (sub, left)
    assert d.ping()
