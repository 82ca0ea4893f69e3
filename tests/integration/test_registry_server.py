"""`berth registry serve`, berth's own OCI distribution registry, driven by real clients.

- the distribution-spec conformance suite (../shared/peers/oci-conformance.test) with every
  workflow enabled (pull, push, content discovery with referrers, content management): every
  spec that runs passes, and the only specs not run are the suite's own alternatives;
- the berth daemon pushes to it and pulls from it; skopeo copies into it and out of it;
- a SIGKILL of the server in the middle of an upload leaves no partial blob, and the upload
  resumes after a restart; a whole push retried after a kill succeeds;
- `berth registry gc --dry-run` deletes nothing, `gc` deletes only unreferenced blobs and keeps
  the blobs of a push that is still running;
- access: htpasswd Basic auth with `docker login`, Docker token auth with per-repository rules,
  TLS and the TOML configuration, `/metrics` and the access log;
- the pull-through cache (`--proxy`) in front of Debian's docker-registry, serving its cache
  with the upstream down, also as the berth daemon's docker.io mirror; sigstore signatures (peers' skopeo 1.13) stored and verified.

Needs root (the berth daemon), skopeo, htpasswd, openssl, docker-registry, and the peers
directory (REPO/../shared or /work/shared). A missing prerequisite fails.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import lzma
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import BERTH, BUSYBOX_ARCHIVE, IMAGE, REPO, berth_ok, describe, free_port

REGISTRY_BIN = BERTH.parent / "berth-registry"
SKOPEO = "/usr/bin/skopeo"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def peers_dir() -> Path:
    for d in (REPO.parent / "shared" / "peers", Path("/work/shared/peers")):
        if (d / "oci-conformance.test.xz").is_file():
            return d
    pytest.fail("oci-conformance.test.xz not found in REPO/../shared/peers or /work/shared/peers",
                pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def prerequisites_here():
    missing = [str(p) for p in (REGISTRY_BIN, Path(SKOPEO)) if not p.is_file()]
    missing += [t for t in ("htpasswd", "openssl", "docker-registry", "curl")
                if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing: {missing} (cargo build --release -p berth-registry-server; "
                    "apt-get install skopeo apache2-utils openssl docker-registry curl)",
                    pytrace=False)


class BerthRegistry:
    """`berth registry serve` on 127.0.0.1 with its own storage root."""

    def __init__(self, root: str | None = None, delete: bool = True, extra: list[str] | None = None):
        self.dir = tempfile.mkdtemp(prefix="berth-regsrv.")
        self.root = root or os.path.join(self.dir, "root")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.args = [str(BERTH), "registry", "serve", "--addr", self.host, "--root", self.root]
        if delete:
            self.args.append("--delete-enabled")
        self.args += extra or []
        self.log_path = os.path.join(self.dir, "registry.log")
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth registry exited: {open(self.log_path).read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("berth registry did not start")

    def kill(self, sig=signal.SIGKILL) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        self.log.close()
        return rc

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def push_blob(self, repo: str, data: bytes) -> str:
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data,
                                {"Content-Type": "application/octet-stream"})
        assert st == 201, (st, h)
        return d

    def push_manifest(self, repo: str, ref: str, manifest: dict) -> str:
        data = json.dumps(manifest).encode()
        st, h, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data,
                                   {"Content-Type": manifest["mediaType"]})
        assert st == 201, (st, body)
        return h["docker-content-digest"]

    def blob_files(self) -> set[str]:
        out = set()
        for dirpath, _, files in os.walk(os.path.join(self.root, "blobs")):
            out.update(files)
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def berth_registry():
    r = BerthRegistry()
    yield r
    r.stop()


def image_manifest(config: str, config_size: int, layers: list[tuple[str, int]]) -> dict:
    return {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                    "size": s} for d, s in layers],
    }


# ---- the conformance suite ----

# The suite's alternatives: each pair below cannot both run (one runs only when the other is
# skipped); these are the only specs allowed not to run.
ALTERNATIVES = {
    "OCI Distribution Conformance Tests Pull Setup Get tag name from environment",
    "OCI Distribution Conformance Tests Content Discovery Setup Populate registry with test tags (no push)",
    "OCI Distribution Conformance Tests Push Cross-Repository Blob Mount Cross-mounting of nonexistent blob should yield session id",
    "OCI Distribution Conformance Tests Push Cross-Repository Blob Mount Cross-mounting without from, and automatic content discovery enabled should return a 201",
}


def test_conformance_suite_passes_every_spec(berth_registry, tmp_path):
    suite = tmp_path / "oci-conformance.test"
    suite.write_bytes(lzma.decompress((peers_dir() / "oci-conformance.test.xz").read_bytes()))
    suite.chmod(0o755)
    env = dict(os.environ,
               OCI_ROOT_URL=f"http://{berth_registry.host}",
               OCI_NAMESPACE="conf/test", OCI_CROSSMOUNT_NAMESPACE="conf/other",
               OCI_TEST_PULL="1", OCI_TEST_PUSH="1", OCI_TEST_CONTENT_DISCOVERY="1",
               OCI_TEST_CONTENT_MANAGEMENT="1",
               # runs the "automatic content discovery disabled → 202" spec (berth mounts only
               # with `from`)
               OCI_AUTOMATIC_CROSSMOUNT="0",
               OCI_DEBUG="0", OCI_HIDE_SKIPPED_WORKFLOWS="0")
    p = subprocess.run([str(suite)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    junit = tmp_path / "junit.xml"
    assert junit.is_file(), describe(p)
    passed, failed, skipped = [], [], []
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = tc.get("name")
        if not name.startswith("OCI Distribution Conformance Tests"):
            continue  # the suite's "html custom reporter" entry is not a spec
        if tc.find("failure") is not None or tc.find("error") is not None:
            failed.append(name)
        elif tc.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    assert not failed, f"failed specs: {failed}\n{p.stdout[-4000:]}"
    assert set(skipped) <= ALTERNATIVES, f"skipped beyond the suite's alternatives: {skipped}"
    # 79 specs: 75 run and pass, the 4 alternatives above cannot run
    assert len(passed) + len(skipped) == 79, (len(passed), skipped)
    assert len(passed) == 75, (len(passed), skipped)
    assert p.returncode == 0, describe(p)
    # the referrers workflow ran and passed (it is part of content discovery)
    assert any("listing references" in n for n in passed), passed


def test_delete_disabled_answers_405_unsupported():
    reg = BerthRegistry(delete=False)
    try:
        d = reg.push_blob("x/y", b"blob")
        st, _, body = reg.request("DELETE", f"/v2/x/y/blobs/{d}")
        assert st == 405, st
        assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
        st, _, _ = reg.request("GET", f"/v2/x/y/blobs/{d}")
        assert st == 200
    finally:
        reg.stop()


def test_errors_ranges_and_headers(berth_registry):
    r = berth_registry
    st, h, _ = r.request("GET", "/v2/")
    assert st == 200 and h["docker-distribution-api-version"] == "registry/2.0"
    data = bytes(range(256)) * 40
    d = r.push_blob("a/b", data)
    st, h, body = r.request("GET", f"/v2/a/b/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert st == 206 and body == data[10:20] and h["content-range"] == f"bytes 10-19/{len(data)}"
    st, _, _ = r.request("GET", f"/v2/a/b/blobs/{d}", headers={"Range": "bytes=99999-"})
    assert st == 416
    st, _, body = r.request("GET", f"/v2/other/blobs/{d}")
    assert st == 404 and json.loads(body)["errors"][0]["code"] == "BLOB_UNKNOWN"
    # a wrong digest stores nothing
    before = r.blob_files()
    st, _, body = r.request("POST", "/v2/a/b/blobs/uploads/?digest=sha256:" + "0" * 64, b"x")
    assert st == 400 and json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
    assert r.blob_files() == before
    # a manifest whose blobs are missing
    m = image_manifest("sha256:" + "1" * 64, 2, [])
    st, _, body = r.request("PUT", "/v2/a/b/manifests/t", json.dumps(m).encode(),
                            {"Content-Type": OCI_MANIFEST})
    assert st == 400 and json.loads(body)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    st, _, body = r.request("GET", "/v2/a/b/tags/list")
    assert st == 200 and json.loads(body)["tags"] == []
    st, _, body = r.request("GET", "/v2/Bad/tags/list")
    assert st == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    # tags pagination and the catalog
    cfg = r.push_blob("a/b", b"{}")
    for t in ("c", "a", "b"):
        r.push_manifest("a/b", t, image_manifest(cfg, 2, []))
    st, h, body = r.request("GET", "/v2/a/b/tags/list?n=2")
    assert json.loads(body)["tags"] == ["a", "b"]
    assert h["link"] == '</v2/a/b/tags/list?n=2&last=b>; rel="next"'
    st, h, body = r.request("GET", "/v2/a/b/tags/list?n=2&last=b")
    assert json.loads(body)["tags"] == ["c"] and "link" not in h
    st, _, body = r.request("GET", "/v2/_catalog")
    assert json.loads(body)["repositories"] == ["a/b"]


# ---- real clients ----


def test_berth_daemon_push_and_pull(daemon, berth_registry):
    name = f"{berth_registry.host}/test/bb:v1"
    berth_ok(daemon, "tag", IMAGE, name)
    out = berth_ok(daemon, "push", name)
    line = [l for l in out.splitlines() if l.startswith("v1: digest: sha256:")]
    assert line, out
    digest = line[0].split()[2]
    out2 = berth_ok(daemon, "push", name)
    assert "Layer already exists" in out2 and f"v1: digest: {digest}" in out2, out2
    image_id = daemon.inspect(name, "{{.Id}}")
    berth_ok(daemon, "rmi", name)
    out = berth_ok(daemon, "pull", name)
    assert f"Digest: {digest}" in out and "Downloaded newer image" in out, out
    assert daemon.inspect(name, "{{.Id}}") == image_id
    p = daemon.run(name, "echo", "pulled-from-berth-registry")
    assert p.returncode == 0 and "pulled-from-berth-registry" in p.stdout, describe(p)


def skopeo(*args, timeout=120) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, describe(p)
    return p


def test_skopeo_copies_in_and_out(daemon, berth_registry, tmp_path):
    host = berth_registry.host
    # into berth's registry from an archive, then run by the berth daemon
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{BUSYBOX_ARCHIVE}",
           f"docker://{host}/sk/bb:in")
    berth_ok(daemon, "pull", f"{host}/sk/bb:in")
    p = daemon.run(f"{host}/sk/bb:in", "echo", "via-skopeo")
    assert p.returncode == 0 and "via-skopeo" in p.stdout, describe(p)
    # out of it: what berth pushed, read back by skopeo, layer digests intact
    name = f"{host}/sk/bb:out"
    berth_ok(daemon, "tag", IMAGE, name)
    berth_ok(daemon, "push", name)
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{out}:v1")
    idx = json.loads((out / "index.json").read_text())
    mdig = idx["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs" / "sha256" / mdig).read_bytes())
    for l in manifest["layers"]:
        h = l["digest"].split(":")[1]
        assert hashlib.sha256((out / "blobs" / "sha256" / h).read_bytes()).hexdigest() == h
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}").stdout)
    assert info["Layers"] == [l["digest"] for l in manifest["layers"]]


# ---- crash safety ----


def test_sigkill_mid_upload_leaves_no_blob_and_the_upload_resumes():
    reg = BerthRegistry()
    try:
        data = os.urandom(8 * 1024 * 1024)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, _ = reg.request("POST", "/v2/crash/x/blobs/uploads/")
        assert st == 202
        loc = h["location"]
        # A chunk sent halfway, then the server is killed while it reads the rest.
        s = socket.create_connection(("127.0.0.1", reg.port))
        half = len(data) // 2
        s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: {reg.host}\r\n"
                   f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
                   f"Content-Range: 0-{len(data) - 1}\r\n\r\n").encode() + data[:half])
        time.sleep(0.5)
        assert reg.kill() == -signal.SIGKILL
        s.close()
        assert reg.blob_files() == set(), "no partial blob in the store"
        reg.start()
        st, _, _ = reg.request("HEAD", f"/v2/crash/x/blobs/{digest}")
        assert st == 404
        # The session survived the restart: the client asks where it stands and resumes.
        st, h, _ = reg.request("GET", loc)
        assert st == 204, st
        have = int(h["range"].split("-")[1]) + 1
        assert 0 < have <= half, h["range"]
        st, h, body = reg.request("PATCH", loc, data[have:],
                                  {"Content-Range": f"{have}-{len(data) - 1}",
                                   "Content-Type": "application/octet-stream"})
        assert st == 202, body
        st, h, body = reg.request("PUT", f"{loc}?digest={digest}")
        assert st == 201, body
        st, _, body = reg.request("GET", f"/v2/crash/x/blobs/{digest}")
        assert st == 200 and body == data
    finally:
        reg.stop()


def test_push_retried_after_sigkill_succeeds(daemon):
    reg = BerthRegistry()
    try:
        # an image with a 48 MiB random layer, so the kill lands inside its upload
        cname = f"big-{os.getpid()}"
        daemon.docker_ok("run", "--name", cname, IMAGE, "sh", "-c",
                         "head -c 50331648 /dev/urandom > /big", timeout=120)
        name = f"{reg.host}/retry/big:v1"
        daemon.docker_ok("commit", cname, name, timeout=120)
        daemon.docker_ok("rm", cname)
        p = subprocess.Popen([str(BERTH), "push", name], env=daemon.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        uploads = os.path.join(reg.root, "uploads")

        def uploading() -> bool:
            for dirpath, _, files in os.walk(uploads):
                if "data" in files and os.path.getsize(os.path.join(dirpath, "data")) > 0:
                    return True
            return False

        deadline = time.time() + 60
        while not uploading():
            assert time.time() < deadline and p.poll() is None, "the push never started uploading"
            time.sleep(0.01)
        reg.kill()
        out, _ = p.communicate(timeout=120)
        assert p.returncode != 0, out
        assert not any(f.startswith("v1") for f in out.splitlines()), out
        big_blobs = [f for f in reg.blob_files()]
        for b in big_blobs:
            path = os.path.join(reg.root, "blobs", "sha256", b[:2], b)
            assert hashlib.sha256(open(path, "rb").read()).hexdigest() == b, "a partial blob"
        reg.start()
        out = berth_ok(daemon, "push", name, timeout=300)
        assert "v1: digest: sha256:" in out, out
        berth_ok(daemon, "rmi", name)
        berth_ok(daemon, "pull", name, timeout=300)
        r = daemon.run(name, "sh", "-c", "wc -c < /big")
        assert r.returncode == 0 and r.stdout.strip() == "50331648", describe(r)
    finally:
        reg.stop()


def test_sigterm_finishes_an_upload_in_flight():
    reg = BerthRegistry()
    try:
        data = os.urandom(4 * 1024 * 1024)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, _ = reg.request("POST", "/v2/term/x/blobs/uploads/")
        loc = h["location"]
        s = socket.create_connection(("127.0.0.1", reg.port))
        s.sendall((f"PUT {loc}?digest={digest} HTTP/1.1\r\nHost: {reg.host}\r\n"
                   f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
                   "\r\n").encode() + data[:1024])
        time.sleep(0.3)
        reg.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert reg.proc.poll() is None, "exited with an upload in flight"
        s.sendall(data[1024:])
        resp = s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 201"), resp
        s.close()
        assert reg.proc.wait(30) == 0
        reg.log.close()
        assert digest.split(":")[1] in reg.blob_files()
    finally:
        reg.stop()


# ---- garbage collection ----


def gc(reg: BerthRegistry, *args) -> str:
    p = subprocess.run([str(BERTH), "registry", "gc", "--root", reg.root, *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, describe(p)
    return p.stdout


def test_gc_keeps_everything_referenced_and_a_concurrent_pushs_blobs(daemon, berth_registry):
    r = berth_registry
    kept = f"{r.host}/gc/kept:v1"
    berth_ok(daemon, "tag", IMAGE, kept)
    berth_ok(daemon, "push", kept)
    # an image that is deleted: its blobs become garbage
    gone_cfg = r.push_blob("gc/gone", b'{"gone": true}')
    gone_layer = r.push_blob("gc/gone", os.urandom(4096))
    gone = r.push_manifest("gc/gone", "v1", image_manifest(gone_cfg, 14, [(gone_layer, 4096)]))
    st, _, _ = r.request("DELETE", f"/v2/gc/gone/manifests/{gone}")
    assert st == 202
    time.sleep(2.5)
    # a push in progress: its layer is uploaded, its manifest not yet
    pending_layer_data = os.urandom(2048)
    pending_layer = r.push_blob("gc/pending", pending_layer_data)
    garbage = {d.split(":")[1] for d in (gone_cfg, gone_layer, gone)}
    before = r.blob_files()
    out = gc(r, "--dry-run", "--grace-seconds", "2")
    listed = {l.split()[2].split(":")[1] for l in out.splitlines() if l.startswith("would delete")}
    assert listed == garbage, out
    assert r.blob_files() == before, "--dry-run deleted something"
    out = gc(r, "--grace-seconds", "2")
    assert r.blob_files() == before - garbage, out
    assert pending_layer.split(":")[1] in r.blob_files()
    # the concurrent push completes
    cfg = r.push_blob("gc/pending", b"{}")
    r.push_manifest("gc/pending", "v1", image_manifest(cfg, 2, [(pending_layer, 2048)]))
    st, _, body = r.request("GET", f"/v2/gc/pending/blobs/{pending_layer}")
    assert st == 200 and body == pending_layer_data
    # the referenced image is whole
    berth_ok(daemon, "rmi", kept)
    berth_ok(daemon, "pull", kept)
    p = daemon.run(kept, "echo", "after-gc")
    assert p.returncode == 0 and "after-gc" in p.stdout, describe(p)
    # a second run finds nothing more
    out = gc(r, "--grace-seconds", "0")
    assert "deleted 0 blob(s)" in out, out


# ---- access: htpasswd Basic auth with docker login, TLS, configuration file ----


def test_htpasswd_login_push_pull(daemon_factory, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "alice", "s3cret"], check=True,
                   capture_output=True)
    reg = BerthRegistry(extra=["--htpasswd", str(htpasswd)])
    d = daemon_factory()
    try:
        st, h, body = reg.request("GET", "/v2/")
        assert st == 401 and h["www-authenticate"] == 'Basic realm="berth-registry"', (st, h)
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
        name = f"{reg.host}/private/bb:v1"
        d.docker_ok("tag", IMAGE, name)
        p = d.docker("push", name, timeout=60)
        assert p.returncode != 0 and "unauthorized" in (p.stdout + p.stderr).lower(), describe(p)
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.host, input="wrong\n")
        assert p.returncode != 0 and "unauthorized" in p.stderr.lower(), describe(p)
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, describe(p)
        d.docker_ok("push", name, timeout=120)
        d.docker_ok("rmi", name)
        out = berth_ok(d, "pull", name)
        assert "Downloaded newer image" in out, out
    finally:
        reg.stop()


def test_tls_and_config_file(daemon_factory, tmp_path):
    from test_registry import make_tls
    ca, cert, key = make_tls(str(tmp_path))
    cfg = tmp_path / "registry.toml"
    cfg.write_text(f'[storage]\ndelete_enabled = true\n[tls]\ncertificate = "{cert}"\n'
                   f'key = "{key}"\n')
    reg = BerthRegistry(delete=False, extra=["--config", str(cfg)])
    certs_d = tmp_path / "certs.d"
    (certs_d / reg.host).mkdir(parents=True)
    shutil.copy(ca, certs_d / reg.host / "ca.crt")
    old = os.environ.get("BERTH_CERTS_D")
    os.environ["BERTH_CERTS_D"] = str(certs_d)
    try:
        d = daemon_factory()
    finally:
        if old is None:
            os.environ.pop("BERTH_CERTS_D", None)
        else:
            os.environ["BERTH_CERTS_D"] = old
    try:
        name = f"{reg.host}/tls/bb:v1"
        berth_ok(d, "tag", IMAGE, name)
        berth_ok(d, "push", name)
        berth_ok(d, "rmi", name)
        out = berth_ok(d, "pull", name)
        assert "Downloaded newer image" in out, out
        # plain HTTP gets no HTTP answer from a TLS port
        with socket.create_connection(("127.0.0.1", reg.port), timeout=5) as s:
            s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
            assert not s.recv(200).startswith(b"HTTP/1.0 200")
        # delete_enabled from the file applies
        p = subprocess.run(["curl", "-fsS", "--cacert", ca, "-X", "DELETE", "-o", "/dev/null",
                            "-w", "%{http_code}", f"https://{reg.host}/v2/tls/bb/manifests/v1"],
                           capture_output=True, text=True, timeout=30)
        assert p.stdout == "202", describe(p)
    finally:
        reg.stop()


def test_bad_configuration_is_refused(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[storage]\ndelete = true\n")
    p = subprocess.run([str(BERTH), "registry", "serve", "--config", str(cfg), "--root",
                        str(tmp_path / "root")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "unknown field `delete`" in p.stderr, describe(p)
    assert not (tmp_path / "root").exists(), "nothing made for a refused configuration"
    hp = tmp_path / "htpasswd"
    hp.write_text("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    p = subprocess.run([str(BERTH), "registry", "serve", "--htpasswd", str(hp), "--root",
                        str(tmp_path / "root2")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "only bcrypt" in p.stderr, describe(p)


def test_metrics_and_access_log(berth_registry):
    r = berth_registry
    r.push_blob("m/x", b"metrics")
    st, h, body = r.request("GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    text = body.decode()
    assert 'berth_registry_requests_total{method="POST",status="201"} 1' in text, text
    assert "berth_registry_uploads_total 1" in text, text
    assert "berth_registry_storage_bytes 7" in text, text
    lines = [json.loads(l) for l in open(r.log_path) if l.startswith("{")]
    access = [l for l in lines if l.get("target") == "access"]
    assert any(l["fields"]["method"] == "POST" and l["fields"]["status"] == 201 for l in access), access


def test_token_auth_per_repository_permissions(daemon_factory, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "alice", "s3cret"], check=True,
                   capture_output=True)
    subprocess.run(["htpasswd", "-Bb", str(htpasswd), "bob", "hunter2"], check=True,
                   capture_output=True)
    cfg = tmp_path / "registry.toml"
    cfg.write_text(f'[auth.token]\nhtpasswd = "{htpasswd}"\n'
                   '[[auth.token.access]]\naccount = "alice"\nrepository = "team/*"\n'
                   'actions = ["pull", "push", "delete"]\n'
                   '[[auth.token.access]]\naccount = "*"\nrepository = "*"\nactions = ["pull"]\n')
    reg = BerthRegistry(extra=["--config", str(cfg)])
    d = daemon_factory()
    try:
        st, h, body = reg.request("GET", "/v2/team/bb/tags/list")
        assert st == 401, st
        assert h["www-authenticate"] == (f'Bearer realm="http://{reg.host}/token",'
                                         'service="berth-registry",scope="repository:team/bb:pull"'), h
        st, _, _ = reg.request("GET", "/token?scope=repository:team/bb:push",
                               headers={"Authorization": "Basic YWxpY2U6bm8="})  # alice:no
        assert st == 401
        name = f"{reg.host}/team/bb:v1"
        d.docker_ok("tag", IMAGE, name)
        p = d.docker("push", name, timeout=60)
        assert p.returncode != 0, describe(p)
        p = d.docker("login", "-u", "bob", "--password-stdin", reg.host, input="wrong\n")
        assert p.returncode != 0, describe(p)
        # bob may pull everything but push nothing
        p = d.docker("login", "-u", "bob", "--password-stdin", reg.host, input="hunter2\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, describe(p)
        p = d.docker("push", name, timeout=60)
        assert p.returncode != 0, describe(p)
        # alice pushes to team/*
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert p.returncode == 0, describe(p)
        d.docker_ok("push", name, timeout=120)
        d.docker_ok("rmi", name)
        # bob pulls it
        d.docker_ok("login", "-u", "bob", "--password-stdin", reg.host, input="hunter2\n")
        out = berth_ok(d, "pull", name)
        assert "Downloaded newer image" in out, out
        # and cannot delete (only alice's rule has delete)
        st, _, body = reg.request("GET", "/token?service=berth-registry&scope=repository:team/bb:pull,delete",
                                  headers={"Authorization": "Basic Ym9iOmh1bnRlcjI="})  # bob:hunter2
        tok = json.loads(body)["token"]
        st, h, _ = reg.request("DELETE", "/v2/team/bb/manifests/v1",
                               headers={"Authorization": f"Bearer {tok}"})
        assert st == 401 and 'error="insufficient_scope"' in h["www-authenticate"], (st, h)
    finally:
        reg.stop()


# ---- pull-through cache ----


def test_proxy_caches_and_serves_when_the_upstream_is_down(daemon):
    from conftest import Registry
    upstream = Registry()  # Debian's docker-registry
    cache = None
    try:
        up = f"{upstream.host}/lib/bb:v1"
        berth_ok(daemon, "tag", IMAGE, up)
        berth_ok(daemon, "push", up)
        image_id = daemon.inspect(up, "{{.Id}}")
        cache = BerthRegistry(extra=["--proxy", f"http://{upstream.host}"])
        via = f"{cache.host}/lib/bb:v1"
        out = berth_ok(daemon, "pull", via)
        assert "Downloaded newer image" in out, out
        assert daemon.inspect(via, "{{.Id}}") == image_id
        # a proxy takes no pushes
        st, _, body = cache.request("POST", "/v2/lib/bb/blobs/uploads/")
        assert st == 405 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
        # an image the upstream does not have is unknown here too
        st, _, _ = cache.request("GET", "/v2/lib/nothing/manifests/v1")
        assert st == 404
        # upstream gone: the cache serves what it holds
        upstream.proc.terminate()
        upstream.proc.wait(10)
        berth_ok(daemon, "rmi", via, up)
        out = berth_ok(daemon, "pull", via)
        assert "Downloaded newer image" in out, out
        p = daemon.run(via, "echo", "from-the-cache")
        assert p.returncode == 0 and "from-the-cache" in p.stdout, describe(p)
    finally:
        if cache:
            cache.stop()
        upstream.stop()


# ---- signatures travel ----


def test_sigstore_signatures_are_stored_and_verified(tmp_path, berth_registry):
    """skopeo 1.13 (peers) signs into berth's registry (a `sha256-<hex>.sig` tag holding a
    cosign simple-signing layer) and verifies from it; a tampered policy key is refused."""
    sk = tmp_path / "skopeo"
    sk.write_bytes(lzma.decompress((peers_dir() / "skopeo.xz").read_bytes()))
    sk.chmod(0o755)
    host = berth_registry.host
    (tmp_path / "pass").write_text("pw")
    regd = tmp_path / "regd"
    regd.mkdir()
    (regd / "local.yaml").write_text(f"docker:\n  {host}:\n    use-sigstore-attachments: true\n")
    (tmp_path / "accept.json").write_text('{"default":[{"type":"insecureAcceptAnything"}]}')

    def run(*args):
        p = subprocess.run([str(sk), "--registries.d", str(regd), *args], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        return p

    p = run("generate-sigstore-key", "--output-prefix", "k", "--passphrase-file", "pass")
    assert p.returncode == 0, describe(p)
    p = run("--policy", "accept.json", "copy", "--dest-tls-verify=false",
            "--sign-by-sigstore-private-key", "k.private", "--sign-passphrase-file", "pass",
            f"docker-archive:{BUSYBOX_ARCHIVE}", f"docker://{host}/signed/bb:v1")
    assert p.returncode == 0, describe(p)
    st, h, _ = berth_registry.request("HEAD", "/v2/signed/bb/manifests/v1")
    digest = h["docker-content-digest"]
    st, _, body = berth_registry.request("GET", "/v2/signed/bb/tags/list")
    assert f"sha256-{digest.split(':')[1]}.sig" in json.loads(body)["tags"], body
    policy = {"default": [{"type": "reject"}], "transports": {"docker": {
        f"{host}/signed/bb": [{"type": "sigstoreSigned", "keyPath": str(tmp_path / "k.pub"),
                               "signedIdentity": {"type": "matchRepository"}}]}}}
    (tmp_path / "verify.json").write_text(json.dumps(policy))
    p = run("--policy", "verify.json", "copy", "--src-tls-verify=false",
            f"docker://{host}/signed/bb:v1", f"dir:{tmp_path / 'out'}")
    assert p.returncode == 0, describe(p)
    # another key does not verify it
    p = run("generate-sigstore-key", "--output-prefix", "other", "--passphrase-file", "pass")
    assert p.returncode == 0, describe(p)
    policy["transports"]["docker"][f"{host}/signed/bb"][0]["keyPath"] = str(tmp_path / "other.pub")
    (tmp_path / "verify2.json").write_text(json.dumps(policy))
    p = run("--policy", "verify2.json", "copy", "--src-tls-verify=false",
            f"docker://{host}/signed/bb:v1", f"dir:{tmp_path / 'out2'}")
    assert p.returncode != 0, describe(p)


def test_multiarch_index_pushed_by_skopeo_pulled_by_berth(daemon, berth_registry, tmp_path):
    from test_registry import make_multiarch_layout
    layout = str(tmp_path / "layout")
    configs = make_multiarch_layout(layout)
    name = f"{berth_registry.host}/multi/img:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{name}")
    st, h, body = berth_registry.request(
        "GET", "/v2/multi/img/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    assert st == 200 and h["content-type"] == "application/vnd.oci.image.index.v1+json"
    assert len(json.loads(body)["manifests"]) == 2
    berth_ok(daemon, "pull", name)
    assert daemon.inspect(name, "{{.Id}}") == configs["amd64"]
    berth_ok(daemon, "pull", "--platform", "linux/arm64", name)
    assert daemon.inspect(name, "{{.Id}}") == configs["arm64"]
    # the same as a Docker schema2 manifest list of schema2 manifests
    skopeo("copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{layout}:v1",
           f"docker://{berth_registry.host}/multi/docker:v1")
    st, h, body = berth_registry.request(
        "GET", "/v2/multi/docker/manifests/v1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json"})
    assert st == 200, body
    assert h["content-type"] == "application/vnd.docker.distribution.manifest.list.v2+json", h
    docker_name = f"{berth_registry.host}/multi/docker:v1"
    berth_ok(daemon, "pull", docker_name)
    assert daemon.inspect(docker_name, "{{.Architecture}}") == "amd64"
    # an index whose children are not in the repository is refused
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "2" * 64,
                          "size": 10}]}
    st, _, body = berth_registry.request("PUT", "/v2/multi/img/manifests/bad",
                                         json.dumps(idx).encode(),
                                         {"Content-Type": idx["mediaType"]})
    assert st == 400 and json.loads(body)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


def test_berth_daemon_uses_the_cache_as_its_docker_io_mirror(daemon_factory, daemon):
    """docker.io is unreachable here: a pull of `busybox:cachetest` can only succeed through
    the daemon's `registry-mirrors` entry, berth's registry caching Debian's docker-registry."""
    from conftest import Registry
    from test_registry_transfers import mirrored_daemon
    upstream = Registry()
    cache = None
    try:
        seeded = f"{upstream.host}/library/busybox:cachetest"
        berth_ok(daemon, "tag", IMAGE, seeded)
        berth_ok(daemon, "push", seeded)
        cache = BerthRegistry(extra=["--proxy", f"http://{upstream.host}"])
        d = mirrored_daemon(daemon_factory, [f"http://{cache.host}"])
        out = berth_ok(d, "pull", "busybox:cachetest")
        assert "Downloaded newer image for busybox:cachetest" in out, out
        assert d.inspect("busybox:cachetest", "{{.Id}}") == daemon.inspect(seeded, "{{.Id}}")
        upstream.proc.terminate()
        upstream.proc.wait(10)
        berth_ok(d, "rmi", "busybox:cachetest")
        out = berth_ok(d, "pull", "busybox:cachetest")
        assert "Downloaded newer image for busybox:cachetest" in out, out
    finally:
        if cache:
            cache.stop()
        upstream.stop()
