"""Named and anonymous volumes through the real docker CLI, the Python SDK and the berth CLI:
data kept across containers and daemon restarts, Docker's copy-up, anonymous volumes removed
with their container, in-use refusals, filters, prune, local driver options, --volumes-from."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile

import pytest

from conftest import IMAGE, describe, mountinfo_lines_mentioning


def volname() -> str:
    return "bt-vol-" + secrets.token_hex(4)


@pytest.fixture
def vols(berth):
    made: list[str] = []

    def new() -> str:
        n = volname()
        made.append(n)
        return n

    yield new
    for n in made:
        berth.docker("volume", "rm", "-f", n)


def test_named_volume_keeps_data_across_containers(berth, vols):
    v = vols()
    berth.sh("echo kept > /data/f && chmod 640 /data/f", "-v", f"{v}:/data")
    out = berth.sh("cat /data/f && stat -c %a /data/f", "-v", f"{v}:/data:ro")
    assert out.split() == ["kept", "640"], out
    p = berth.run("-v", f"{v}:/data:ro", IMAGE, "sh", "-c", "echo x > /data/g")
    assert p.returncode != 0 and "Read-only file system" in p.stderr, describe(p)
    info = json.loads(berth.docker_ok("volume", "inspect", v))[0]
    assert info["Name"] == v and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Mountpoint"].endswith(f"/volumes/{v}/_data")
    with open(os.path.join(info["Mountpoint"], "f")) as f:
        assert f.read() == "kept\n"


def test_copy_up_fills_a_new_volume_from_the_image(berth, vols):
    v, nocopy = vols(), vols()
    # busybox's /etc has passwd: a new, empty volume mounted there receives it.
    out = berth.sh("ls /etc", "-v", f"{v}:/etc")
    assert "passwd" in out, out
    assert "passwd" in berth.sh("ls /data", "-v", f"{v}:/data")
    # nocopy: left empty (but for the mount points of /etc/hosts, hostname, resolv.conf).
    assert "passwd" not in berth.sh("ls -A /etc", "-v", f"{nocopy}:/etc:nocopy")
    # A volume with content is not filled again: /usr/sbin's content does not appear.
    out = berth.sh("ls /usr/sbin", "-v", f"{v}:/usr/sbin")
    assert "passwd" in out and "chroot" not in out, out


def test_anonymous_volumes_go_with_rm_v_and_run_rm(berth, names):
    before = set(berth.docker_ok("volume", "ls", "-q").split())
    c = names()
    berth.docker_ok("create", "--name", c, "-v", "/scratch", IMAGE, "true")
    mounts = berth.inspect(c)["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume", mounts
    anon = mounts[0]["Name"]
    assert len(anon) == 64 and anon not in before
    labels = json.loads(berth.docker_ok("volume", "inspect", anon))[0]["Labels"]
    assert "com.docker.volume.anonymous" in labels
    berth.docker_ok("rm", "-v", c)
    assert anon not in berth.docker_ok("volume", "ls", "-q").split()
    # --rm removes anonymous volumes too.
    berth.sh("touch /scratch/x", "-v", "/scratch")
    assert set(berth.docker_ok("volume", "ls", "-q").split()) <= before | set()
    # plain rm keeps it.
    c2 = names()
    berth.docker_ok("create", "--name", c2, "-v", "/scratch", IMAGE, "true")
    anon2 = berth.inspect(c2)["Mounts"][0]["Name"]
    berth.docker_ok("rm", c2)
    assert anon2 in berth.docker_ok("volume", "ls", "-q").split()
    berth.docker_ok("volume", "rm", anon2)


def test_volume_in_use_is_refused_and_changes_nothing(berth, vols, names):
    v = vols()
    berth.docker_ok("volume", "create", v)
    c = names()
    berth.docker_ok("create", "--name", c, "-v", f"{v}:/d", IMAGE, "true")
    for args in (("volume", "rm", v), ("volume", "rm", "-f", v)):
        p = berth.docker(*args)
        assert p.returncode != 0 and "volume is in use" in p.stderr, describe(p)
    assert v in berth.docker_ok("volume", "ls", "-q").split()
    berth.docker_ok("rm", c)
    berth.docker_ok("volume", "rm", v)
    p = berth.docker("volume", "rm", v)
    assert p.returncode != 0 and "no such volume" in p.stderr, describe(p)
    p = berth.docker("volume", "inspect", v)
    assert p.returncode != 0 and "no such volume" in p.stderr.lower(), describe(p)


def test_bad_names_options_and_mounts(berth, vols):
    before = berth.docker_ok("volume", "ls", "-q")
    for args, want in [
        (("volume", "create", "a"), "too short"),
        (("volume", "create", "bad/name"), "includes invalid characters"),
        (("volume", "create", "-o", "foo=bar", vols()), 'invalid option key: "foo"'),
        (("volume", "create", "-d", "nosuch", vols()), 'plugin "nosuch" not found'),
        (("volume", "create", "-o", "type=tmpfs", vols()), "missing device"),
    ]:
        p = berth.docker(*args)
        assert p.returncode != 0 and want in p.stderr, describe(p)
    p = berth.run("-v", "bad$name:/d", IMAGE, "true")
    assert p.returncode == 125 and "includes invalid characters" in p.stderr, describe(p)
    p = berth.run("-v", f"{vols()}:/d", "-v", f"{vols()}:/d", IMAGE, "true")
    assert p.returncode == 125 and "Duplicate mount point" in p.stderr, describe(p)
    assert berth.docker_ok("volume", "ls", "-q") == before


def test_ls_filters_format_and_sdk(berth, vols, names):
    a, b = vols(), vols()
    berth.docker_ok("volume", "create", "--label", "tier=db", a)
    berth.docker_ok("volume", "create", b)
    c = names()
    berth.docker_ok("create", "--name", c, "-v", f"{a}:/d", IMAGE, "true")
    dangling = berth.docker_ok("volume", "ls", "-q", "--filter", "dangling=true").split()
    assert b in dangling and a not in dangling
    assert berth.docker_ok("volume", "ls", "-q", "--filter", "label=tier=db").split() == [a]
    assert set(berth.docker_ok("volume", "ls", "-q", "--filter", f"name={a[:-2]}").split()) >= {a}
    out = berth.docker_ok("volume", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", f"name={b}")
    assert out.strip() == f"{b} local", out
    table = berth.docker_ok("volume", "ls", "--filter", f"name={b}")
    assert table.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"], table
    p = berth.docker("volume", "ls", "--filter", "bogus=1")
    assert p.returncode != 0 and "invalid filter" in p.stderr, describe(p)
    sdk = berth.client
    v = sdk.volumes.create(name=vols(), labels={"k": "v"})
    assert sdk.volumes.get(v.name).attrs["Labels"] == {"k": "v"}
    assert v.name in [x.name for x in sdk.volumes.list()]
    v.remove()
    import docker

    with pytest.raises(docker.errors.NotFound):
        sdk.volumes.get(v.name)


def test_prune_removes_only_unused_and_frees_the_bytes(berth, vols, names):
    keep, named, = vols(), vols()
    berth.docker_ok("volume", "create", keep)
    berth.docker_ok("volume", "create", named)
    berth.sh("dd if=/dev/zero of=/d/blob bs=1k count=300 2>/dev/null", "-v", f"{named}:/d")
    c = names()
    berth.docker_ok("create", "--name", c, "-v", f"{keep}:/d", "-v", "/anon", IMAGE, "true")
    anon_used = [m["Name"] for m in berth.inspect(c)["Mounts"] if m["Destination"] == "/anon"][0]
    # Default prune: anonymous unused volumes only.
    berth.docker_ok("volume", "prune", "-f")
    left = berth.docker_ok("volume", "ls", "-q").split()
    assert {keep, named, anon_used} <= set(left)
    out = berth.docker_ok("volume", "prune", "-a", "-f", "--filter", f"label!=nothing")
    assert named in out and keep not in out, out
    assert "Total reclaimed space: 307.2kB" in out, out
    left = berth.docker_ok("volume", "ls", "-q").split()
    assert named not in left and keep in left and anon_used in left


def test_tmpfs_and_bind_local_driver_options(berth, vols):
    t = vols()
    berth.docker_ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", t)
    out = berth.sh("grep ' /t ' /proc/mounts; df -k /t | tail -1", "-v", f"{t}:/t")
    assert "tmpfs" in out and " 2048 " in out, out
    # The last user gone, the tmpfs is unmounted on the host.
    mp = json.loads(berth.docker_ok("volume", "inspect", t))[0]["Mountpoint"]
    assert not mountinfo_lines_mentioning(mp), mountinfo_lines_mentioning(mp)
    host = tempfile.mkdtemp(prefix="bt-bindvol-")
    try:
        with open(os.path.join(host, "hello"), "w") as f:
            f.write("from-host\n")
        b = vols()
        berth.docker_ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host}", b)
        assert berth.sh("cat /b/hello", "-v", f"{b}:/b").strip() == "from-host"
        assert not mountinfo_lines_mentioning(json.loads(berth.docker_ok("volume", "inspect", b))[0]["Mountpoint"])
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_volumes_from_and_mount_flag(berth, vols, names):
    v = vols()
    src = names()
    berth.docker_ok("run", "--name", src, "--mount", f"type=volume,source={v},target=/shared", "-v", "/anon", IMAGE, "sh", "-c", "echo one > /shared/x; echo two > /anon/y")
    out = berth.sh("cat /shared/x /anon/y", "--volumes-from", src)
    assert out.split() == ["one", "two"], out
    p = berth.run("--volumes-from", f"{src}:ro", IMAGE, "sh", "-c", "echo z > /shared/z")
    assert p.returncode != 0 and "Read-only" in p.stderr, describe(p)
    p = berth.run("--volumes-from", "no-such-container-xyz", IMAGE, "true")
    assert p.returncode == 125 and "No such container" in p.stderr, describe(p)


def _image_with_volume(berth) -> str:
    """An image whose config declares VOLUME /data with a seed file there (docker import)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add("/bin/busybox", arcname="bin/busybox")
        for app in ("sh", "cat", "ls", "echo"):
            i = tarfile.TarInfo(f"bin/{app}")
            i.type, i.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(i)
        d = tarfile.TarInfo("data")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        t.addfile(d)
        data = b"seeded\n"
        f = tarfile.TarInfo("data/seed")
        f.size = len(data)
        t.addfile(f, io.BytesIO(data))
    tag = "bt-volimage:" + secrets.token_hex(3)
    p = berth.docker("import", "--change", "VOLUME /data", "-", tag, input=buf.getvalue(), text=False)
    assert p.returncode == 0, describe(p)
    return tag


def test_image_volume_becomes_an_anonymous_volume_with_its_content(berth, names):
    tag = _image_with_volume(berth)
    try:
        c = names()
        berth.docker_ok("run", "--name", c, tag, "/bin/cat", "/data/seed")
        assert berth.docker_ok("logs", c) == "seeded\n"
        m = berth.inspect(c)["Mounts"]
        assert [x["Destination"] for x in m] == ["/data"] and m[0]["Type"] == "volume", m
        berth.docker_ok("rm", "-v", c)
        assert m[0]["Name"] not in berth.docker_ok("volume", "ls", "-q").split()
    finally:
        berth.docker("rmi", tag)


def test_named_volume_survives_daemon_restart_and_berth_cli(daemon_factory):
    d = daemon_factory()
    v = volname()
    assert d.berth_cli("volume", "create", "--label", "a=b", v).stdout.strip() == v
    d.sh("echo persisted > /v/f", "-v", f"{v}:/v")
    d.stop()
    d.start()
    assert d.sh("cat /v/f", "-v", f"{v}:/v").strip() == "persisted"
    out = d.berth_cli("volume", "ls", "--format", "{{.Name}} {{.Labels}}").stdout
    assert f"{v} a=b" in out, out
    p = d.berth_cli("volume", "rm", v)
    assert p.returncode == 0 and p.stdout.strip() == v, describe(p)


def test_cp_reaches_volumes_of_a_running_container(berth, vols, names, tmp_path):
    v = vols()
    c = names()
    berth.docker_ok("run", "-d", "--name", c, "-v", f"{v}:/data", IMAGE, "sleep", "60")
    src = tmp_path / "in.txt"
    src.write_text("into-the-volume\n")
    berth.docker_ok("cp", str(src), f"{c}:/data/in.txt")
    assert berth.docker_ok("exec", c, "cat", "/data/in.txt") == "into-the-volume\n"
    mp = json.loads(berth.docker_ok("volume", "inspect", v))[0]["Mountpoint"]
    assert open(os.path.join(mp, "in.txt")).read() == "into-the-volume\n"
    berth.docker_ok("exec", c, "sh", "-c", "echo from-inside > /data/out.txt")
    berth.docker_ok("cp", f"{c}:/data/out.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "from-inside\n"


def test_cp_and_archive_reach_volumes_and_binds_of_created_and_stopped_containers(berth, names,
                                                                                 tmp_path):
    """As dockerd: `docker cp` and the archive API (HEAD, GET, PUT) on a created or stopped
    container see its volumes and bind mounts (without starting it); read-only ones refuse a
    PUT; nothing stays mounted afterwards."""
    n, vol = names(), f"cpvol-{secrets.token_hex(4)}"
    host = tmp_path / "bound"
    host.mkdir()
    (host / "from-host.txt").write_text("host side\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    berth.docker_ok("volume", "create", vol)
    try:
        berth.docker_ok("create", "--name", n, "-v", f"{vol}:/data", "-v", f"{host}:/bound",
                        "-v", f"{ro}:/ro:ro", IMAGE, "sh", "-c",
                        "cat /data/in.txt /bound/in.txt")
        src = tmp_path / "in.txt"
        src.write_text("copied in\n")
        # created, never started: PUT into the volume and the bind
        berth.docker_ok("cp", str(src), f"{n}:/data/in.txt")
        berth.docker_ok("cp", str(src), f"{n}:/bound/in.txt")
        assert (host / "in.txt").read_text() == "copied in\n", "written through the bind"
        assert berth.inspect(n, "{{.State.Status}}") == "created"
        # HEAD and GET through the API, on the bind
        st, headers, _ = berth.request("HEAD", f"/containers/{n}/archive?path=/bound/from-host.txt")
        assert st == 200, headers
        stat = json.loads(__import__("base64").b64decode(headers["X-Docker-Container-Path-Stat"]))
        assert stat["name"] == "from-host.txt" and stat["size"] == len("host side\n"), stat
        out = tmp_path / "out"
        berth.docker_ok("cp", f"{n}:/bound/from-host.txt", str(out))
        assert out.read_text() == "host side\n"
        p = berth.docker("cp", str(src), f"{n}:/ro/x.txt")
        assert p.returncode != 0 and not (ro / "x.txt").exists(), describe(p)
        # the container sees what was copied in; stopped now, copy out of the volume
        assert berth.docker_ok("start", "-a", n) == "copied in\ncopied in\n"
        out2 = tmp_path / "out2"
        berth.docker_ok("cp", f"{n}:/data/in.txt", str(out2))
        assert out2.read_text() == "copied in\n"
        st, _, body = berth.request("GET", f"/containers/{n}/archive?path=/data")
        assert st == 200, body
        names_in = tarfile.open(fileobj=io.BytesIO(body)).getnames()
        assert "data/in.txt" in names_in, names_in
        assert not [l for l in mountinfo_lines_mentioning(berth.data_root) if "/cp-" in l]
    finally:
        berth.docker("rm", "-f", n)
        berth.docker("volume", "rm", vol)
