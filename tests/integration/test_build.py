"""Builds (`POST /build`, classic builder protocol), driven by the real docker CLI
(`DOCKER_BUILDKIT=0 docker build`), `berth build`, Debian's docker-compose and the Python SDK:
steps, cache, multi-stage, .dockerignore, RUN mounts, heredocs; `ADD <url>` (with
`--checksum`) and build secrets (`berth build --secret`, `RUN --mount=type=secret`).

`ADD <url>` downloads come from a local HTTP server on 127.0.0.1 (a thread of this test
process), never the internet. `commit` is in test_images.py. None of these tests needs the
bridge network (RUN steps work with `--bridge none`)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import pytest

from conftest import IMAGE, describe, legacy_build, mounts_under, run_cmd


SEVEN_STEPS = """FROM busybox
RUN mkdir -p /app/{token}
COPY big.bin /app/{token}/
ENV APP_MODE=prod
WORKDIR /app
EXPOSE 8080
CMD ["sh", "-c", "ls /app/{token}"]
"""


def build_ok(berth, *args) -> str:
    p = legacy_build(berth, *args)
    assert p.returncode == 0, describe(p)
    return p.stdout


def seven_step_context(tmp: Path) -> tuple[Path, str]:
    token = uuid.uuid4().hex[:10]
    ctx = tmp / "ctx"
    ctx.mkdir()
    (ctx / "big.bin").write_bytes(os.urandom(1024 * 1024))
    (ctx / "Dockerfile").write_text(SEVEN_STEPS.format(token=token))
    return ctx, token


def container_count(berth) -> int:
    return len(berth.docker_ok("ps", "-aq").split())


def built_id(output: str) -> str:
    m = re.search(r"Successfully built ([0-9a-f]{12})", output)
    assert m, output
    return m.group(1)


def test_seven_step_build_config_history_and_files(berth, tmp_path):
    ctx, token = seven_step_context(tmp_path)
    tag = f"b7-{token}"
    out = build_ok(berth, "-t", tag, ctx)
    for n in range(1, 8):
        assert f"Step {n}/7 : " in out, out
    assert "Step 1/7 : FROM busybox" in out
    assert out.count(" ---> Running in ") == 1, out
    assert "Removing intermediate container" in out
    assert f"Successfully tagged {tag}:latest" in out
    img = berth.inspect(tag)
    cfg = img["Config"]
    assert cfg["Cmd"] == ["sh", "-c", f"ls /app/{token}"]
    assert "APP_MODE=prod" in cfg["Env"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    base_layers = len(berth.inspect(IMAGE)["RootFS"]["Layers"])
    assert len(img["RootFS"]["Layers"]) == base_layers + 2  # RUN and COPY only
    hist = json.loads(berth.docker_ok("history", "--no-trunc", "--format", "{{json .}}",
                                      tag).splitlines()[0])
    assert hist["CreatedBy"].startswith('/bin/sh -c #(nop)  CMD ["sh" "-c"')
    lines = berth.docker_ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}",
                            tag).splitlines()
    assert lines[1].startswith("/bin/sh -c #(nop)  EXPOSE 8080|0B")
    assert lines[2].startswith("/bin/sh -c #(nop) WORKDIR /app|")
    assert lines[3].startswith("/bin/sh -c #(nop)  ENV APP_MODE=prod|0B")
    assert lines[4].startswith("/bin/sh -c #(nop) COPY file:") and "/app/" in lines[4]
    assert lines[4].endswith("|1.05MB")
    assert lines[5].startswith(f"/bin/sh -c mkdir -p /app/{token}|")
    p = berth.run(tag)
    assert p.returncode == 0 and p.stdout.strip() == "big.bin", describe(p)
    p = berth.run(tag, "sh", "-c", f"stat -c %s /app/{token}/big.bin; pwd; echo $APP_MODE")
    assert p.stdout.split() == ["1048576", "/app", "prod"], describe(p)


def test_unchanged_rebuild_is_all_cache_and_changed_file_reruns_from_copy(berth, tmp_path):
    ctx, token = seven_step_context(tmp_path)
    first = build_ok(berth, "-t", f"bc-{token}", ctx)
    before = container_count(berth)
    again = build_ok(berth, "-t", f"bc-{token}", ctx)
    assert again.count(" ---> Using cache") == 6, again
    assert "Running in" not in again, again
    assert built_id(again) == built_id(first)
    assert container_count(berth) == before
    # A changed COPY source: the RUN before it stays cached, everything from the COPY re-runs.
    (ctx / "big.bin").write_bytes(os.urandom(1024 * 1024))
    third = build_ok(berth, "-t", f"bc-{token}", ctx)
    steps = third.split("Step ")[1:]
    assert " ---> Using cache" in steps[1], third
    for s in steps[2:]:
        assert "Using cache" not in s, third
    assert built_id(third) != built_id(first)


def test_no_cache_runs_every_step(berth, tmp_path):
    ctx, token = seven_step_context(tmp_path)
    build_ok(berth, ctx)
    out = build_ok(berth, "--no-cache", ctx)
    assert "Using cache" not in out, out
    assert " ---> Running in " in out


def test_multistage_target_and_copy_from(berth, tmp_path):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(f"""FROM busybox AS builder
RUN echo built-{token} > /out.txt
FROM busybox AS broken
RUN exit 7
FROM busybox
COPY --from=builder /out.txt /final.txt
CMD ["cat", "/final.txt"]
""")
    out = build_ok(berth, "-t", f"ms-{token}", tmp_path)
    assert "exit 7" not in out, "a stage the target does not need was built"
    p = berth.run(f"ms-{token}")
    assert p.stdout.strip() == f"built-{token}", describe(p)
    out = build_ok(berth, "--target", "builder", "-t", f"msb-{token}", tmp_path)
    assert "Step 2/2" in out
    p = berth.run(f"msb-{token}", "cat", "/out.txt")
    assert p.stdout.strip() == f"built-{token}"
    p = berth.run(f"msb-{token}", "ls", "/final.txt")
    assert p.returncode != 0
    p = legacy_build(berth, "--target", "nope", tmp_path)
    assert p.returncode != 0
    assert "nope" in p.stderr


def test_dockerignore_keeps_files_out(berth, tmp_path):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nCOPY . /ctx-{token}\n")
    (tmp_path / ".dockerignore").write_text("secret*\n*.log\n!keep.log\n")
    (tmp_path / "secret.key").write_text("s")
    (tmp_path / "debug.log").write_text("d")
    (tmp_path / "keep.log").write_text("k")
    (tmp_path / "app.txt").write_text("a")
    build_ok(berth, "-t", f"di-{token}", tmp_path)
    p = berth.run(f"di-{token}", "ls", f"/ctx-{token}")
    names = set(p.stdout.split())
    assert {"app.txt", "keep.log", "Dockerfile"} <= names, describe(p)
    assert "secret.key" not in names and "debug.log" not in names


def test_failing_run_reports_code_and_leaves_nothing(berth, tmp_path):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(
        f"FROM busybox\nRUN echo visible-{token}; exit 3\nRUN echo never\n")
    before = container_count(berth)
    mounts_before = set(mounts_under(berth.data_root))
    p = legacy_build(berth, tmp_path)
    assert p.returncode == 3, describe(p)
    assert f"visible-{token}" in p.stdout
    assert (f"The command '/bin/sh -c echo visible-{token}; exit 3' returned a non-zero "
            "code: 3") in p.stderr, describe(p)
    assert "never" not in p.stdout
    assert container_count(berth) == before
    assert set(mounts_under(berth.data_root)) == mounts_before
    leftovers = [d for d in os.listdir(os.path.join(berth.data_root, "tmp"))
                 if d.startswith("build-")]
    assert leftovers == []


def test_dockerfile_errors(berth, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nFORM x\n")
    p = legacy_build(berth, tmp_path)
    assert p.returncode != 0
    assert "dockerfile parse error on line 2: unknown instruction: FORM" in p.stderr, describe(p)
    (tmp_path / "Dockerfile").write_text("FROM no-such-image-berth-test\n")
    p = legacy_build(berth, tmp_path)
    assert p.returncode != 0
    assert "no-such-image-berth-test" in p.stderr


def test_berth_build_cli(berth, tmp_path):
    ctx, token = seven_step_context(tmp_path)
    p = berth.berth_cli("build", "-t", f"bb-{token}", "--build-arg", "UNUSED=1",
                        "--label", f"org.test={token}", str(ctx), timeout=120)
    assert p.returncode == 0, describe(p)
    assert "Step 1/8 : FROM busybox" in p.stdout, p.stdout
    assert f"Successfully tagged bb-{token}:latest" in p.stdout
    assert berth.inspect(f"bb-{token}")["Config"]["Labels"] == {"org.test": token}
    iid = tmp_path / "iid"
    p = berth.berth_cli("build", "-q", "--iidfile", str(iid), "-f", str(ctx / "Dockerfile"),
                        str(ctx), timeout=120)
    assert p.returncode == 0, describe(p)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", p.stdout.strip()), p.stdout
    assert iid.read_text() == p.stdout.strip()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
    p = berth.berth_cli("build", str(ctx), timeout=120)
    assert p.returncode == 4
    assert "returned a non-zero code: 4" in p.stderr
    p = berth.berth_cli("build", "-", input="FROM busybox\nENV X=1\n", timeout=120)
    assert p.returncode == 0, describe(p)
    assert "Step 2/2 : ENV X=1" in p.stdout


def test_builder_prune_clears_the_cache(berth, tmp_path):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN echo {token}\n")
    build_ok(berth, tmp_path)
    assert "Using cache" in build_ok(berth, tmp_path)
    p = berth.berth_cli("builder", "prune", "-f")
    assert p.returncode == 0, describe(p)
    assert "Total reclaimed space:" in p.stdout
    assert "Using cache" not in build_ok(berth, tmp_path)
    assert "Using cache" in build_ok(berth, tmp_path)
    out = berth.docker_ok("builder", "prune", "-f")
    assert "Total reclaimed space:" in out
    assert "Using cache" not in build_ok(berth, tmp_path)


def test_compose_build(berth, tmp_path):
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose missing (apt-get install docker-compose; scripts/setup.sh)"
    token = uuid.uuid4().hex[:8]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        f"FROM busybox\nRUN echo {token} > /token\nCMD [\"cat\", \"/token\"]\n")
    (tmp_path / "docker-compose.yml").write_text(
        f"version: '3'\nservices:\n  web:\n    build: ./app\n    image: compose-{token}:latest\n")
    env = dict(berth.env, DOCKER_BUILDKIT="0", COMPOSE_DOCKER_CLI_BUILD="0")
    p = subprocess.run([compose, "-p", f"p{token}", "build"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    r = berth.run(f"compose-{token}:latest")
    assert r.stdout.strip() == token, describe(r)


def test_run_mounts_chown_add_and_heredocs(berth, tmp_path):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text(f"bind-{token}\n")
    (tmp_path / "Dockerfile").write_text(f"""FROM busybox
COPY --chown=nobody:nogroup sub /data-{token}/
RUN --mount=type=cache,target=/cache-{token} echo x >> /cache-{token}/log && wc -l < /cache-{token}/log
RUN --mount=type=bind,source=sub,target=/bind-{token} cat /bind-{token}/a.txt > /from-bind
COPY <<EOT /heredoc.txt
doc-{token}
EOT
""")
    out = build_ok(berth, "-t", f"mounts-{token}", tmp_path)
    assert "Running in" in out
    p = berth.run(f"mounts-{token}", "sh", "-c",
                  f"stat -c '%u:%g' /data-{token}/a.txt; cat /from-bind /heredoc.txt; "
                  f"ls -d /cache-{token} /bind-{token} 2>&1 || true")
    lines = p.stdout.splitlines()
    assert lines[:3] == ["65534:65534", f"bind-{token}", f"doc-{token}"], describe(p)
    # The mount points of the RUN steps are not part of the image.
    assert "No such file or directory" in p.stdout and lines[3:] != [], describe(p)
    assert all("No such file" in line for line in lines[3:]), describe(p)
    # The cache mount keeps its content across builds.
    again = build_ok(berth, "--no-cache", tmp_path)
    assert re.search(r"^2$", again, re.M), again


def test_python_sdk_build_and_commit(berth, tmp_path, names):
    token = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN echo {token} > /t\n")
    image, logs = berth.client.images.build(path=str(tmp_path), tag=f"sdk-{token}", rm=True)
    assert f"sdk-{token}:latest" in image.tags
    assert any("Step 2/2" in (entry.get("stream") or "") for entry in logs)
    out = berth.client.containers.run(f"sdk-{token}", ["cat", "/t"], remove=True)
    assert out.decode().strip() == token
    n = names()
    c = berth.client.containers.create(IMAGE, ["sh"], name=n)
    committed = c.commit(repository=f"sdk-commit-{token}", tag="v1", message="m",
                         conf={"Cmd": ["echo", token]})
    assert committed.attrs["Comment"] == "m"
    assert berth.client.containers.run(committed.id, remove=True).decode().strip() == token


# -- ADD <url> ----------------------------------------------------------------------------------


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


# -- secrets ------------------------------------------------------------------------------------


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
