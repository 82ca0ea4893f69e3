"""Builds (`POST /build`, classic builder protocol) and `commit`, driven by the real docker CLI
(`DOCKER_BUILDKIT=0 docker build`), `berth build`, and Debian's docker-compose.

None of these tests needs the bridge network (RUN steps work with `--bridge none`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import IMAGE, describe, mounts_under, run_cmd

SEVEN_STEPS = """FROM busybox
RUN mkdir -p /app/{token}
COPY big.bin /app/{token}/
ENV APP_MODE=prod
WORKDIR /app
EXPOSE 8080
CMD ["sh", "-c", "ls /app/{token}"]
"""


def legacy_build(berth, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(berth.env, DOCKER_BUILDKIT="0")
    return run_cmd(["/usr/local/bin/docker", "build", *map(str, args)], env=env,
                   timeout=timeout)


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
