"""Registry transfers beyond the basics, against Debian's docker-registry (distribution 2.8) on
127.0.0.1: chunked blob uploads (forced small through the daemon's environment), Bearer tokens
that expire or are revoked mid-operation (a recording HTTP proxy in front of the registry acts
as token server and gatekeeper), and `registry-mirrors` for docker.io (docker.io itself is
unreachable here, so a pull of `busybox:…` can only succeed through a mirror).

The daemons run without the bridge network.
"""

import base64
import http.client
import http.server
import io
import json
import os
import socket
import tarfile
import threading
import time

import pytest

from conftest import IMAGE, REGISTRY, Registry, berth_ok, describe, free_port


pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY),
                                reason="docker-registry is not installed")


class RegistryProxy:
    """An HTTP proxy to a registry that records every request and can stand in for auth.

    token_expires_in: act as a Bearer token server (`/token`) and refuse /v2/ requests without
    a valid token; tokens are answered with this `expires_in` and refused once older than
    token_valid_for. basic_ping: answer `GET /v2/` without credentials with a Basic challenge
    (other requests pass). delay: seconds to hold each /v2/ request.
    """

    def __init__(self, target_port: int, token_expires_in: float | None = None,
                 token_valid_for: float | None = None, basic_ping: bool = False,
                 delay: float = 0.0):
        self.records: list[dict] = []
        self.tokens: dict[str, float] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _answer(self, status: int, headers: dict, body: bytes = b""):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _record(self, status: int):
                with proxy.lock:
                    proxy.records.append({
                        "method": self.command, "path": self.path, "status": status,
                        "auth": self.headers.get("Authorization", ""),
                        "range": self.headers.get("Content-Range", ""),
                    })

            def _handle(self):
                body = self._body()
                if token_expires_in is not None and self.path.startswith("/token"):
                    with proxy.lock:
                        token = f"tok{len(proxy.tokens) + 1}-{os.urandom(4).hex()}"
                        proxy.tokens[token] = time.monotonic()
                    self._record(200)
                    self._answer(200, {"Content-Type": "application/json"}, json.dumps(
                        {"token": token, "expires_in": token_expires_in}).encode())
                    return
                auth = self.headers.get("Authorization", "")
                if token_expires_in is not None:
                    issued = proxy.tokens.get(auth.removeprefix("Bearer "))
                    if issued is None or time.monotonic() - issued > token_valid_for:
                        self._record(401)
                        realm = f"http://127.0.0.1:{proxy.port}/token"
                        self._answer(401, {
                            "WWW-Authenticate": f'Bearer realm="{realm}",service="proxy"',
                            "Content-Type": "application/json",
                        }, b'{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}')
                        return
                if basic_ping and self.path == "/v2/" and not auth:
                    self._record(401)
                    self._answer(401, {"WWW-Authenticate": 'Basic realm="mirror"'})
                    return
                if delay and self.path.startswith("/v2/"):
                    time.sleep(delay)
                up = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                up.putrequest(self.command, self.path, skip_host=True,
                              skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "authorization"):
                        up.putheader(k, v)
                up.putheader("Content-Length", str(len(body)))
                up.endheaders(body)
                resp = up.getresponse()
                data = resp.read()
                headers = {k: v for k, v in resp.getheaders()
                           if k.lower() not in ("content-length", "transfer-encoding",
                                                "connection")}
                up.close()
                self._record(resp.status)
                self._answer(resp.status, headers, data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def of(self, method: str) -> list[dict]:
        with self.lock:
            return [r for r in self.records if r["method"] == method]

    def stale_token_refusals(self) -> int:
        with self.lock:
            return sum(1 for r in self.records if r["status"] == 401 and r["auth"])

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def random_layer_tar(size: int) -> bytes:
    buf = io.BytesIO()
    payload = os.urandom(size)
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("big.bin")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def chunked_daemon(daemon_factory, monkeypatch, chunk: int):
    """A private daemon that uploads every blob over `chunk` bytes in `chunk`-byte PATCHes."""
    monkeypatch.setenv("BERTH_REGISTRY_CHUNKED_THRESHOLD", str(chunk))
    monkeypatch.setenv("BERTH_REGISTRY_CHUNK_SIZE", str(chunk))
    d = daemon_factory(load=False)
    monkeypatch.delenv("BERTH_REGISTRY_CHUNKED_THRESHOLD")
    monkeypatch.delenv("BERTH_REGISTRY_CHUNK_SIZE")
    return d


def push_digest(out: str, tag: str) -> str:
    line = [l for l in out.splitlines() if l.startswith(f"{tag}: digest: sha256:")]
    assert line, out
    return line[0].split()[2]


# ---- chunked uploads ---------------------------------------------------------------------------

def test_chunked_push_then_pull_by_digest_into_fresh_daemon(daemon_factory, monkeypatch,
                                                            registry):
    src = chunked_daemon(daemon_factory, monkeypatch, 1 << 20)
    proxy = RegistryProxy(registry.port)
    try:
        name = f"{proxy.host}/chunk/big:v1"
        p = src.docker("import", "-", name, input=random_layer_tar(5 << 20), text=False,
                       timeout=120)
        assert p.returncode == 0, describe(p)
        out = berth_ok(src, "push", name)
        assert "Pushed" in out, out
        digest = push_digest(out, "v1")
        patches = proxy.of("PATCH")
        # 5 MiB of random data gzips to a little over 5 MiB: six chunks, in order.
        assert len(patches) >= 6, proxy.records
        ranges = [tuple(int(x) for x in r["range"].split("-")) for r in patches]
        assert ranges[0] == (0, (1 << 20) - 1), ranges
        for (a0, a1), (b0, _) in zip(ranges, ranges[1:]):
            assert b0 == a1 + 1, ranges
        assert all(r["status"] == 202 for r in patches), patches
        # Each PATCH went to the Location the previous answer named (it changes each time).
        assert len({r["path"] for r in patches}) == len(patches), patches
        # The config blob is small: one PUT carrying it, no PATCH.
        assert len(proxy.of("PUT")) >= 2
    finally:
        proxy.stop()
    dst = daemon_factory(load=False)
    by_digest = f"{registry.host}/chunk/big@{digest}"
    out = berth_ok(dst, "pull", by_digest)
    assert f"Digest: {digest}" in out, out
    assert dst.inspect(by_digest, "{{.Id}}") == src.inspect(name, "{{.Id}}")
    assert dst.inspect(by_digest, "{{json .RootFS.Layers}}") == \
        src.inspect(name, "{{json .RootFS.Layers}}")
    # Pushing again from the fresh daemon keeps the digest the chunks made.
    berth_ok(dst, "tag", by_digest, f"{registry.host}/chunk/again:v1")
    out = berth_ok(dst, "push", f"{registry.host}/chunk/again:v1")
    assert push_digest(out, "v1") == digest, out


def test_small_blobs_stay_monolithic(daemon, registry):
    proxy = RegistryProxy(registry.port)
    try:
        name = f"{proxy.host}/mono/bb:v1"
        berth_ok(daemon, "tag", IMAGE, name)
        berth_ok(daemon, "push", name)
        assert proxy.of("PATCH") == [], proxy.records
        puts = proxy.of("PUT")
        assert any("/blobs/uploads/" in r["path"] and "digest=sha256" in r["path"] for r in puts)
    finally:
        proxy.stop()


# ---- token refresh -----------------------------------------------------------------------------

def test_token_revoked_mid_push_and_pull_is_fetched_again(daemon_factory, monkeypatch, registry):
    """Tokens claim 300 s but stop working after 1 s: each 401 mid-operation costs a retry."""
    src = chunked_daemon(daemon_factory, monkeypatch, 256 << 10)
    proxy = RegistryProxy(registry.port, token_expires_in=300, token_valid_for=1.0, delay=0.12)
    try:
        name = f"{proxy.host}/tok/big:v1"
        p = src.docker("import", "-", name, input=random_layer_tar(3 << 20), text=False,
                       timeout=120)
        assert p.returncode == 0, describe(p)
        out = berth_ok(src, "push", name, timeout=180)
        digest = push_digest(out, "v1")
        assert proxy.stale_token_refusals() >= 1, proxy.records
        assert len(proxy.tokens) >= 2
        dst = daemon_factory(load=False)
        time.sleep(1.1)
        before = len(proxy.tokens)
        out = berth_ok(dst, "pull", name, timeout=180)
        assert f"Digest: {digest}" in out, out
        assert len(proxy.tokens) > before
        assert dst.inspect(name, "{{.Id}}") == src.inspect(name, "{{.Id}}")
    finally:
        proxy.stop()


def test_token_renewed_before_expires_in(daemon_factory, monkeypatch, registry):
    """Tokens live 1.5 s (taken until 2.5 s): renewed in time, no request is refused."""
    src = chunked_daemon(daemon_factory, monkeypatch, 256 << 10)
    proxy = RegistryProxy(registry.port, token_expires_in=1.5, token_valid_for=2.5, delay=0.25)
    try:
        name = f"{proxy.host}/tok2/big:v1"
        p = src.docker("import", "-", name, input=random_layer_tar(3 << 20), text=False,
                       timeout=120)
        assert p.returncode == 0, describe(p)
        t0 = time.monotonic()
        berth_ok(src, "push", name, timeout=180)
        assert time.monotonic() - t0 > 2.5, "the push ended before a token expired"
        assert len(proxy.tokens) >= 2, proxy.records
        assert proxy.stale_token_refusals() == 0, [r for r in proxy.records if r["status"] == 401]
    finally:
        proxy.stop()


# ---- registry mirrors --------------------------------------------------------------------------

def mirrored_daemon(daemon_factory, mirrors: list[str]):
    d = daemon_factory(start=False)
    cfg = os.path.join(d.base, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"registry-mirrors": mirrors}, f)
    argv = d.argv
    d.argv = lambda **o: argv(**o) + ["--config-file", cfg]
    d.start()
    return d


def dead_port() -> int:
    port = free_port()
    with socket.socket() as s:  # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_pull_from_docker_io_goes_through_mirrors_in_order(daemon_factory, registry):
    seed = daemon_factory()
    on_mirror = f"{registry.host}/library/busybox:mirrortest"
    berth_ok(seed, "tag", IMAGE, on_mirror)
    digest = push_digest(berth_ok(seed, "push", on_mirror), "mirrortest")
    d = mirrored_daemon(daemon_factory,
                        [f"http://127.0.0.1:{dead_port()}", f"http://{registry.host}/"])
    out = berth_ok(d, "pull", "busybox:mirrortest")
    assert "mirrortest: Pulling from library/busybox" in out, out
    assert f"Digest: {digest}" in out, out
    assert "Status: Downloaded newer image for busybox:mirrortest" in out, out
    assert out.strip().endswith("docker.io/library/busybox:mirrortest"), out
    assert json.loads(d.inspect("busybox:mirrortest", "{{json .RepoTags}}")) == \
        ["busybox:mirrortest"]
    assert f"busybox@{digest}" in json.loads(d.inspect("busybox:mirrortest",
                                                       "{{json .RepoDigests}}"))
    assert d.inspect("docker.io/library/busybox:mirrortest", "{{.Id}}") == \
        seed.inspect(on_mirror, "{{.Id}}")
    # What no mirror has is asked of docker.io last, and its answer is the error (it cannot be
    # reached here), as dockerd reports the last endpoint's failure.
    p = d.berth_cli("pull", "busybox:nowhere", timeout=120)
    assert p.returncode == 1, describe(p)
    assert "registry-1.docker.io" in p.stderr, describe(p)
    # Without mirrors docker.io is the only endpoint: the same pull fails.
    plain = daemon_factory(load=False)
    p = plain.berth_cli("pull", "busybox:mirrortest", timeout=120)
    assert p.returncode != 0, describe(p)


def test_docker_io_credentials_are_not_sent_to_mirrors(daemon_factory, registry):
    seed = daemon_factory()
    berth_ok(seed, "tag", IMAGE, f"{registry.host}/library/busybox:creds")
    berth_ok(seed, "push", f"{registry.host}/library/busybox:creds")
    proxy = RegistryProxy(registry.port, basic_ping=True)
    try:
        d = mirrored_daemon(daemon_factory, [f"http://{proxy.host}"])
        hub = base64.b64encode(b"hubuser:hubsecret").decode()
        with open(os.path.join(d.docker_config, "config.json"), "w") as f:
            json.dump({"auths": {"https://index.docker.io/v1/": {"auth": hub}}}, f)
        out = d.docker_ok("pull", "busybox:creds", timeout=120)
        assert "Downloaded newer image for busybox:creds" in out, out
        # The same through the API with the credentials in X-Registry-Auth.
        d.docker_ok("rmi", "busybox:creds")
        x_auth = base64.urlsafe_b64encode(json.dumps(
            {"username": "hubuser", "password": "hubsecret"}).encode()).decode()
        status, _, body = d.request("POST", "/images/create?fromImage=busybox&tag=creds",
                                    headers={"X-Registry-Auth": x_auth}, timeout=120)
        assert status == 200 and b"Downloaded newer image" in body, body
        assert len(proxy.of("GET")) >= 4, proxy.records
        assert all(r["auth"] == "" for r in proxy.records), proxy.records
        # The control: pulled from that host by its own name, the credentials do go.
        status, _, body = d.request(
            "POST", f"/images/create?fromImage={proxy.host}/library/busybox&tag=creds",
            headers={"X-Registry-Auth": x_auth}, timeout=120)
        assert status == 200 and b"Digest: sha256:" in body, body
        sent = "Basic " + base64.b64encode(b"hubuser:hubsecret").decode()
        assert any(r["auth"] == sent for r in proxy.records), proxy.records
    finally:
        proxy.stop()


@pytest.fixture
def second_registry():
    r = Registry()
    yield r
    r.stop()


def test_mirror_lacking_the_image_falls_through_to_the_next(daemon_factory, registry,
                                                            second_registry):
    """The first mirror is a real registry that answers but lacks the image: the pull goes on
    to the second mirror (by tag and by digest), as dockerd's does."""
    seed = daemon_factory()
    # The first mirror answers /v2/ and holds another repository only.
    berth_ok(seed, "tag", IMAGE, f"{registry.host}/library/other:x")
    berth_ok(seed, "push", f"{registry.host}/library/other:x")
    on_second = f"{second_registry.host}/library/busybox:fallthrough"
    berth_ok(seed, "tag", IMAGE, on_second)
    digest = push_digest(berth_ok(seed, "push", on_second), "fallthrough")
    d = mirrored_daemon(daemon_factory,
                        [f"http://{registry.host}", f"http://{second_registry.host}"])
    out = berth_ok(d, "pull", "busybox:fallthrough")
    assert f"Digest: {digest}" in out, out
    assert "Status: Downloaded newer image for busybox:fallthrough" in out, out
    assert d.inspect("busybox:fallthrough", "{{.Id}}") == seed.inspect(on_second, "{{.Id}}")
    assert f"busybox@{digest}" in json.loads(d.inspect("busybox:fallthrough",
                                                       "{{json .RepoDigests}}"))
    # By digest, with the docker CLI.
    d.docker_ok("rmi", "busybox:fallthrough")
    out = d.docker_ok("pull", f"busybox@{digest}", timeout=120)
    assert f"Digest: {digest}" in out, out
    # The distribution inspect falls through as well.
    status, _, body = d.request("GET", "/distribution/busybox:fallthrough/json", timeout=120)
    assert status == 200, body
    assert json.loads(body)["Descriptor"]["digest"] == digest
    # What the first mirror does hold still comes from it.
    out = berth_ok(d, "pull", "other:x")
    assert "Status: Downloaded newer image for other:x" in out, out


def test_pull_that_no_endpoint_has_fails_with_the_last_answer(daemon_factory, registry,
                                                              second_registry, monkeypatch):
    """Two mirrors that lack the image, then docker.io (stood in for by a third local registry
    through $BERTH_DOCKER_IO_ENDPOINT, since Docker Hub cannot be reached here): an image only
    docker.io has is pulled from it; one nobody has fails with its answer, Docker's "manifest
    unknown" wording, exit code 1, and leaves nothing behind."""
    upstream = Registry()
    try:
        seed = daemon_factory()
        on_upstream = f"{upstream.host}/library/busybox:upstream"
        berth_ok(seed, "tag", IMAGE, on_upstream)
        digest = push_digest(berth_ok(seed, "push", on_upstream), "upstream")
        monkeypatch.setenv("BERTH_DOCKER_IO_ENDPOINT", f"http://{upstream.host}")
        d = mirrored_daemon(daemon_factory,
                            [f"http://{registry.host}", f"http://{second_registry.host}"])
        monkeypatch.delenv("BERTH_DOCKER_IO_ENDPOINT")
        out = berth_ok(d, "pull", "busybox:upstream")
        assert f"Digest: {digest}" in out, out
        assert "Status: Downloaded newer image for busybox:upstream" in out, out
        before = d.image_ids()
        for cli in (d.berth_cli, d.docker):
            p = cli("pull", "busybox:nowhere", timeout=120)
            assert p.returncode == 1, describe(p)
            assert p.stderr.strip() == ("Error response from daemon: manifest for "
                                        "busybox:nowhere not found: manifest unknown: "
                                        "manifest unknown"), describe(p)
        missing = "sha256:" + "0" * 64
        p = d.docker("pull", f"busybox@{missing}", timeout=120)
        assert p.returncode == 1, describe(p)
        assert f"manifest for busybox@{missing} not found: manifest unknown" in p.stderr, \
            describe(p)
        status, _, body = d.request("POST", "/images/create?fromImage=busybox&tag=nowhere",
                                    timeout=120)
        assert status == 404, body
        assert d.image_ids() == before
    finally:
        upstream.stop()
