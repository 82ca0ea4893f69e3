"""`ADD <url>` (with `--checksum`) and build secrets (`berth build --secret`, `RUN
--mount=type=secret`).

Downloads come from a local HTTP server on 127.0.0.1 (a thread of this test process), never
the internet. None of these tests needs the bridge network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import pytest

from conftest import describe, run_cmd

SERVED_MTIME = 1_500_000_000  # 2017-07-14T02:40:00Z, sent as Last-Modified


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A static file server on 127.0.0.1: (directory it serves, base URL)."""
    root = tmp_path_factory.mktemp("www")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve(root: Path, name: str, content: bytes) -> None:
    path = root / name
    path.write_bytes(content)
    os.utime(path, (SERVED_MTIME, SERVED_MTIME))


def legacy_build(berth, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(berth.env, DOCKER_BUILDKIT="0")
    return run_cmd(["/usr/local/bin/docker", "build", *map(str, args)], env=env,
                   timeout=timeout)


def context(tmp: Path, dockerfile: str) -> Path:
    ctx = tmp / f"ctx-{uuid.uuid4().hex[:8]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def tag() -> str:
    return f"bx-{uuid.uuid4().hex[:10]}"


def in_image(berth, image: str, script: str) -> str:
    p = berth.run(image, "sh", "-c", script)
    assert p.returncode == 0, describe(p)
    return p.stdout


# --- ADD <url> -------------------------------------------------------------------------------


def test_add_url_to_a_file_keeps_mode_0600_and_last_modified(berth, web, tmp_path):
    root, base = web
    name = f"data-{uuid.uuid4().hex[:6]}.txt"
    serve(root, name, b"remote content\n")
    t = tag()
    ctx = context(tmp_path, f"FROM busybox\nADD {base}/{name} /got.txt\n")
    p = legacy_build(berth, "-t", t, ctx)
    assert p.returncode == 0, describe(p)
    out = in_image(berth, t, "cat /got.txt; stat -c '%a %u:%g %Y' /got.txt")
    assert out == f"remote content\n600 0:0 {SERVED_MTIME}\n"


def test_add_url_to_a_dir_takes_the_url_name_and_never_extracts(berth, web, tmp_path):
    root, base = web
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"inside the archive\n"
        info = tarfile.TarInfo("inner.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    name = f"bundle-{uuid.uuid4().hex[:6]}.tar.gz"
    serve(root, name, buf.getvalue())
    t = tag()
    ctx = context(tmp_path, f"FROM busybox\n"
                            f"ADD --chown=12:34 --chmod=640 {base}/{name}?x=1 /dl/\n")
    p = legacy_build(berth, "-t", t, ctx)
    assert p.returncode == 0, describe(p)
    out = in_image(berth, t, f"ls /dl; stat -c '%a %u:%g %s' /dl/{name}")
    assert out == f"{name}\n640 12:34 {len(buf.getvalue())}\n"


def test_add_url_checksum_ok_and_mismatch(berth, web, tmp_path):
    root, base = web
    name = f"sum-{uuid.uuid4().hex[:6]}.bin"
    content = os.urandom(4096)
    serve(root, name, content)
    good = "sha256:" + hashlib.sha256(content).hexdigest()
    t = tag()
    ctx = context(tmp_path, f"FROM busybox\nADD --checksum={good} {base}/{name} /f.bin\n")
    p = legacy_build(berth, "-t", t, ctx)
    assert p.returncode == 0, describe(p)
    assert in_image(berth, t, "sha256sum /f.bin").split()[0] == good[7:]

    bad = "sha256:" + "0" * 64
    before = berth.image_ids()
    ctx = context(tmp_path, f"FROM busybox\nADD --checksum={bad} {base}/{name} /f.bin\n")
    p = legacy_build(berth, "-t", tag(), ctx)
    assert p.returncode != 0, describe(p)
    assert f"digest mismatch {good}: {bad}" in p.stderr, describe(p)
    assert berth.image_ids() == before, "a failed checksum committed an image"


def test_add_url_404_is_a_clear_error(berth, web, tmp_path):
    _, base = web
    url = f"{base}/missing-{uuid.uuid4().hex[:6]}"
    before = berth.image_ids()
    ctx = context(tmp_path, f"FROM busybox\nADD {url} /x\n")
    p = legacy_build(berth, ctx)
    assert p.returncode != 0, describe(p)
    # python's http.server says "File not found"; dockerd quotes the status line as sent.
    assert f"failed to GET {url} with status 404 File not found" in p.stderr, describe(p)
    assert berth.image_ids() == before


def test_add_url_cache_follows_the_remote_content(berth, web, tmp_path):
    root, base = web
    name = f"cached-{uuid.uuid4().hex[:6]}.txt"
    serve(root, name, b"one\n")
    ctx = context(tmp_path, f"FROM busybox\nADD {base}/{name} /c.txt\nRUN cat /c.txt\n")
    t = tag()
    first = legacy_build(berth, "-t", t, ctx)
    assert first.returncode == 0, describe(first)
    assert "Using cache" not in first.stdout
    second = legacy_build(berth, "-t", t, ctx)
    assert second.returncode == 0, describe(second)
    assert second.stdout.count("Using cache") == 2, second.stdout
    serve(root, name, b"two\n")
    third = legacy_build(berth, "-t", t, ctx)
    assert third.returncode == 0, describe(third)
    assert "Using cache" not in third.stdout, third.stdout
    assert in_image(berth, t, "cat /c.txt") == "two\n"


# --- secrets ---------------------------------------------------------------------------------


def secret_dirs(berth) -> list[str]:
    base = Path(berth.exec_root) / "build-secrets"
    return sorted(os.listdir(base)) if base.exists() else []


def test_secret_is_mounted_and_never_committed(berth, tmp_path):
    value = f"s3cret-{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "tok.txt"
    secret.write_text(value)
    t = tag()
    ctx = context(tmp_path,
                  "FROM busybox\n"
                  "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && "
                  f"test \"$(cat /run/secrets/tok)\" = {value} && "
                  "touch /tmp/seen-size-$(wc -c < /run/secrets/tok)\n")
    p = berth.berth_cli("build", "--secret", f"id=tok,src={secret}", "-t", t, ctx,
                        timeout=120)
    assert p.returncode == 0, describe(p)
    assert in_image(berth, t, "ls -A /run/secrets 2>/dev/null | wc -l").strip() == "0"
    assert f"seen-size-{len(value)}" in in_image(berth, t, "ls /tmp")
    assert secret_dirs(berth) == [], "the build's secret files were left behind"


def test_secret_leaves_no_trace_in_the_image(berth, tmp_path):
    value = f"zz-{uuid.uuid4().hex}"
    secret = tmp_path / "s"
    secret.write_text(value)
    t = tag()
    ctx = context(tmp_path,
                  "FROM busybox\n"
                  "RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo ok > /ok\n")
    p = berth.berth_cli("build", "--secret", f"id=tok,src={secret}", "-t", t, ctx,
                        timeout=120)
    assert p.returncode == 0, describe(p)
    assert in_image(berth, t, "cat /ok; ls -A /run/secrets 2>&1 || true").startswith("ok\n")
    assert in_image(berth, t, "test -e /run/secrets/tok || echo absent") == "absent\n"
    assert value not in berth.docker_ok("history", "--no-trunc", t)
    assert value not in berth.docker_ok("inspect", t)
    saved = berth.docker("save", t, text=False, timeout=60)
    assert saved.returncode == 0
    assert value.encode() not in saved.stdout


def test_secret_from_env_and_for_a_non_root_user(berth, tmp_path):
    value = f"env-{uuid.uuid4().hex[:8]}"
    t = tag()
    ctx = context(tmp_path,
                  "FROM busybox\n"
                  "USER 1000:1000\n"
                  "RUN --mount=type=secret,id=tok,uid=1000 "
                  f"test \"$(cat /run/secrets/tok)\" = {value}\n")
    env = dict(berth.env, MY_TOKEN=value)
    p = run_cmd([str(Path(__file__).parents[2] / "target/release/berth"), "build",
                 "--secret", "id=tok,env=MY_TOKEN", "-t", t, str(ctx)], env=env, timeout=120)
    assert p.returncode == 0, describe(p)
    # A bare id names an environment variable when one is set.
    ctx = context(tmp_path,
                  "FROM busybox\n"
                  f"RUN --mount=type=secret,id=MY_TOKEN test \"$(cat /run/secrets/MY_TOKEN)\" = {value}\n")
    p = run_cmd([str(Path(__file__).parents[2] / "target/release/berth"), "build",
                 "--secret", "id=MY_TOKEN", str(ctx)], env=env, timeout=120)
    assert p.returncode == 0, describe(p)


def test_missing_required_secret_fails_and_cleans_up(berth, tmp_path):
    secret = tmp_path / "other"
    secret.write_text("x")
    ctx = context(tmp_path,
                  "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n")
    p = berth.berth_cli("build", "--secret", f"id=other,src={secret}", ctx, timeout=120)
    assert p.returncode != 0, describe(p)
    assert "secret nope not found" in p.stderr, describe(p)
    assert secret_dirs(berth) == []
    # Not required: the step runs without the file.
    ctx = context(tmp_path,
                  "FROM busybox\nRUN --mount=type=secret,id=nope test ! -e /run/secrets/nope\n")
    p = berth.berth_cli("build", ctx, timeout=120)
    assert p.returncode == 0, describe(p)


def test_failing_step_removes_the_secret_files(berth, tmp_path):
    secret = tmp_path / "tok"
    secret.write_text("v")
    ctx = context(tmp_path, "FROM busybox\nRUN --mount=type=secret,id=tok false\n")
    p = berth.berth_cli("build", "--secret", f"id=tok,src={secret}", ctx, timeout=120)
    assert p.returncode == 1, describe(p)
    assert "returned a non-zero code: 1" in p.stderr
    assert secret_dirs(berth) == []


def test_bad_secret_specs(berth, tmp_path):
    ctx = context(tmp_path, "FROM busybox\n")
    p = berth.berth_cli("build", "--secret", "id=a,bogus=1", ctx)
    assert p.returncode == 125, describe(p)
    assert ('invalid argument "id=a,bogus=1" for "--secret" flag: '
            "unexpected key 'bogus' in 'bogus=1'") in p.stderr
    p = berth.berth_cli("build", "--secret", "src=/etc/hostname", ctx)
    assert p.returncode == 125 and "secret missing ID" in p.stderr, describe(p)
    p = berth.berth_cli("build", "--secret", "id=a,type=ssh", ctx)
    assert p.returncode == 125 and 'unsupported secret type "ssh"' in p.stderr, describe(p)
    p = berth.berth_cli("build", "--secret", f"id=a,src={tmp_path}/absent", ctx)
    assert p.returncode == 1 and "failed to stat" in p.stderr, describe(p)
    # A malformed header straight to the API is a 400.
    status, _, body = berth.request("POST", "/build", body=b"",
                                    headers={"X-Berth-Build-Secrets": "%%%"})
    assert status == 400, body
    assert b"invalid X-Berth-Build-Secrets header" in body
