"""Registry pull and push against Debian's real registry server (distribution 2.8), started by
these tests on 127.0.0.1: plain HTTP round trips with the berth and docker CLIs, Docker's error
wording, htpasswd Basic auth with `login`, TLS with a CA the test makes, images written and read
by skopeo, the Bearer token flow, a pull cut off halfway, tampered blobs.

Needs `docker-registry` (and `apache2-utils` for htpasswd, `openssl` for TLS); the daemons run
without the bridge network. The `registry` and `daemon` fixtures are in conftest.py; chunked
uploads, token refresh and mirrors are in test_registry_transfers.py.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import IMAGE, REGISTRY, Registry, berth_ok, describe


pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY),
                                reason="docker-registry is not installed")


def test_berth_push_rmi_pull_run(daemon, registry):
    name = f"{registry.host}/test/bb:v1"
    berth_ok(daemon, "tag", IMAGE, name)
    out = berth_ok(daemon, "push", name)
    assert "The push refers to repository" in out, out
    assert "Pushed" in out, out
    line = [l for l in out.splitlines() if l.startswith("v1: digest: sha256:")]
    assert line, out
    digest = line[0].split()[2]
    # A second push uploads nothing and keeps the digest.
    out2 = berth_ok(daemon, "push", name)
    assert "Layer already exists" in out2, out2
    assert f"v1: digest: {digest}" in out2, out2

    image_id = daemon.inspect(name, "{{.Id}}")
    berth_ok(daemon, "rmi", name)
    out = berth_ok(daemon, "pull", name)
    assert "v1: Pulling from test/bb" in out, out
    assert "Pull complete" in out or "Already exists" in out, out
    assert f"Digest: {digest}" in out, out
    assert f"Status: Downloaded newer image for {name}" in out, out
    assert out.strip().endswith(name), out
    assert daemon.inspect(name, "{{.Id}}") == image_id
    digests = json.loads(daemon.inspect(name, "{{json .RepoDigests}}"))
    assert f"{registry.host}/test/bb@{digest}" in digests, digests
    p = daemon.run(name, "echo", "pulled-ok")
    assert p.returncode == 0 and "pulled-ok" in p.stdout, describe(p)
    out = berth_ok(daemon, "pull", name)
    assert f"Status: Image is up to date for {name}" in out, out
    # pull and push are image events.
    ev = daemon.docker_ok("events", "--since", "10m", "--until", f"{time.time() + 1:.3f}", "--filter", "type=image",
                          "--format", "{{.Action}} {{.Actor.ID}}")
    assert f"push {name}" in ev and f"pull {name}" in ev, ev


def test_pull_into_empty_store_and_by_digest(daemon_factory, registry):
    src = daemon_factory()
    name = f"{registry.host}/fresh/bb:latest"
    berth_ok(src, "tag", IMAGE, name)
    out = berth_ok(src, "push", name)
    digest = [l for l in out.splitlines() if "digest:" in l][0].split()[2]
    dst = daemon_factory(load=False)
    out = berth_ok(dst, "pull", f"{registry.host}/fresh/bb@{digest}")
    assert "Pull complete" in out, out
    assert f"Digest: {digest}" in out, out
    assert dst.inspect(f"{registry.host}/fresh/bb@{digest}", "{{.Id}}") == \
        src.inspect(name, "{{.Id}}")
    p = dst.run(f"{registry.host}/fresh/bb@{digest}", "echo", "by-digest")
    assert p.returncode == 0 and "by-digest" in p.stdout, describe(p)


def test_docker_cli_push_and_pull(daemon, registry):
    name = f"{registry.host}/dock/bb:t1"
    daemon.docker_ok("tag", IMAGE, name)
    out = daemon.docker_ok("push", name, timeout=120)
    assert "t1: digest: sha256:" in out, out
    daemon.docker_ok("rmi", name)
    out = daemon.docker_ok("pull", name, timeout=120)
    assert "Status: Downloaded newer image for" in out, out
    assert "Digest: sha256:" in out, out
    out = daemon.docker_ok("pull", name, timeout=120)
    assert "Status: Image is up to date for" in out, out
    # The SDK sees the same image, with its repo digest.
    img = daemon.client.images.get(name)
    assert any(d.startswith(f"{registry.host}/dock/bb@sha256:") for d in img.attrs["RepoDigests"])
    # distribution inspect
    status, _, body = daemon.request("GET", f"/distribution/{name}/json")
    assert status == 200, body
    v = json.loads(body)
    assert v["Descriptor"]["digest"].startswith("sha256:")
    assert v["Platforms"][0]["os"] == "linux"


def test_unknown_tag_and_repository(daemon, registry):
    daemon.docker_ok("tag", IMAGE, f"{registry.host}/known/bb:v1")
    daemon.docker_ok("push", f"{registry.host}/known/bb:v1", timeout=120)
    before = daemon.image_ids()
    p = daemon.docker("pull", f"{registry.host}/known/bb:nope", timeout=60)
    assert p.returncode != 0
    assert f"manifest for {registry.host}/known/bb:nope not found: manifest unknown" in p.stderr, \
        describe(p)
    p = daemon.docker("pull", f"{registry.host}/missing/repo:v1", timeout=60)
    assert p.returncode != 0
    assert "not found" in p.stderr or "pull access denied" in p.stderr, describe(p)
    # A 404 before the stream, as dockerd answers.
    status, _, body = daemon.request(
        "POST", f"/images/create?fromImage={registry.host}/known/bb&tag=nope")
    assert status == 404, body
    assert "manifest unknown" in json.loads(body)["message"]
    # Pushing what does not exist.
    p = daemon.docker("push", f"{registry.host}/nothing/here:v1", timeout=60)
    assert p.returncode != 0
    assert "An image does not exist locally with the tag" in p.stderr, describe(p)
    assert daemon.image_ids() == before


@pytest.mark.skipif(not shutil.which("htpasswd"), reason="htpasswd (apache2-utils) missing")
def test_basic_auth_login_push_pull(daemon_factory):
    d = daemon_factory()
    tmp = tempfile.mkdtemp(prefix="berth-htpasswd.")
    htpasswd = os.path.join(tmp, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", htpasswd, "alice", "s3cret"], check=True,
                   capture_output=True)
    reg = Registry(auth={"htpasswd": htpasswd})
    try:
        name = f"{reg.host}/private/bb:v1"
        d.docker_ok("tag", IMAGE, name)
        # Without credentials the push is refused.
        p = d.docker("push", name, timeout=60)
        assert p.returncode != 0 and "unauthorized" in (p.stdout + p.stderr).lower(), describe(p)
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.host, input="wrong\n")
        assert p.returncode != 0 and "unauthorized" in p.stderr.lower(), describe(p)
        p = d.docker("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, describe(p)
        d.docker_ok("push", name, timeout=120)
        d.docker_ok("rmi", name)
        # berth shares docker's config.json.
        out = berth_ok(d, "pull", name)
        assert "Downloaded newer image" in out, out
        berth_ok(d, "logout", reg.host)
        p = d.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="bad\n")
        assert p.returncode != 0 and "unauthorized" in p.stderr.lower(), describe(p)
        p = d.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, describe(p)
        cfg = json.load(open(os.path.join(d.docker_config, "config.json")))
        assert reg.host in cfg["auths"], cfg
    finally:
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def make_tls(tmp: str) -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return (os.path.join(tmp, "ca.crt"), os.path.join(tmp, "server.crt"),
            os.path.join(tmp, "server.key"))


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl missing")
def test_tls_with_private_ca(daemon_factory):
    tmp = tempfile.mkdtemp(prefix="berth-tls.")
    ca, cert, key = make_tls(tmp)
    reg = Registry(tls=(cert, key))
    certs_d = os.path.join(tmp, "certs.d")
    os.makedirs(os.path.join(certs_d, reg.host))
    shutil.copy(ca, os.path.join(certs_d, reg.host, "ca.crt"))
    old = os.environ.get("BERTH_CERTS_D")
    os.environ["BERTH_CERTS_D"] = certs_d
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
        # The registry really speaks TLS: plain HTTP is refused by it.
        with socket.create_connection(("127.0.0.1", reg.port), timeout=5) as s:
            s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
            assert b"HTTP/1.0 400" in s.recv(200)
    finally:
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- skopeo: images written by another client, and images berth pushed read by another ----

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(not SKOPEO, reason="skopeo is not installed")


def skopeo(*args, timeout=120) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, describe(p)
    return p


def write_blob(layout: str, data: bytes) -> dict:
    import hashlib
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{h}", "size": len(data)}


def single_file_layer(name: str, content: bytes) -> tuple[bytes, str]:
    """A gzip'd one-file layer and its diff ID."""
    import gzip
    import hashlib
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def make_multiarch_layout(layout: str) -> dict:
    """An OCI layout whose tag `v1` is an index of a linux/amd64 and a linux/arm64 image.
    Returns arch → config digest."""
    configs = {}
    entries = []
    for arch in ("arm64", "amd64"):
        gz, diff_id = single_file_layer("arch.txt", arch.encode())
        layer = write_blob(layout, gz)
        config = json.dumps({"architecture": arch, "os": "linux",
                             "config": {"Cmd": ["/bin/sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        cfg = write_blob(layout, config)
        configs[arch] = cfg["digest"]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
        }).encode()
        m = write_blob(layout, manifest)
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    idx = write_blob(layout, index)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", **idx,
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return configs


@needs_skopeo
def test_multiarch_index_picks_platform(daemon, registry):
    layout = tempfile.mkdtemp(prefix="berth-oci.")
    try:
        configs = make_multiarch_layout(layout)
        name = f"{registry.host}/multi/img:v1"
        skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:v1",
               f"docker://{name}")
        out = berth_ok(daemon, "pull", name)
        assert "Downloaded newer image" in out, out
        assert daemon.inspect(name, "{{.Id}}") == configs["amd64"]
        assert daemon.inspect(name, "{{.Architecture}}") == "amd64"
        berth_ok(daemon, "pull", "--platform", "linux/arm64", name)
        assert daemon.inspect(name, "{{.Id}}") == configs["arm64"]
        before = daemon.image_ids()
        p = daemon.berth_cli("pull", "--platform", "linux/s390x", name, timeout=60)
        assert p.returncode != 0
        assert "no matching manifest for linux/s390x in the manifest list entries" in p.stderr, \
            describe(p)
        assert daemon.image_ids() == before
    finally:
        shutil.rmtree(layout, ignore_errors=True)


@needs_skopeo
def test_zstd_layers_from_skopeo_and_berth_push_read_by_skopeo(daemon, registry):
    from conftest import ensure_busybox_archive
    name = f"{registry.host}/zstd/bb:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd",
           f"docker-archive:{ensure_busybox_archive()}", f"docker://{name}")
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{name}").stdout
    assert "zstd" in raw, raw
    out = berth_ok(daemon, "pull", name)
    assert "Downloaded newer image" in out, out
    p = daemon.run(name, "echo", "zstd-ok")
    assert p.returncode == 0 and "zstd-ok" in p.stdout, describe(p)

    pushed = f"{registry.host}/frombert/bb:v2"
    berth_ok(daemon, "tag", IMAGE, pushed)
    out = berth_ok(daemon, "push", pushed)
    digest = [l for l in out.splitlines() if "digest:" in l][0].split()[2]
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{pushed}").stdout)
    assert info["Digest"] == digest, info
    assert info["Architecture"] == daemon.inspect(IMAGE, "{{.Architecture}}")
    out_dir = tempfile.mkdtemp(prefix="berth-skopeo-out.")
    try:
        skopeo("copy", "--src-tls-verify=false", f"docker://{pushed}", f"dir:{out_dir}")
        assert os.path.exists(os.path.join(out_dir, "manifest.json"))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# ---- the Bearer token flow, with a token server written here --------------------------------

def _b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry JWTs (RS256, x5c) like Docker Hub's auth server: anonymous callers get
    `pull`, alice:s3cret gets what she asks for, a wrong password gets 401."""

    SERVICE = "berth-test-registry"
    ISSUER = "berth-test-issuer"

    def __init__(self, tmp: str):
        import datetime
        import http.server
        import threading
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-token-issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.bundle = os.path.join(tmp, "token-ca.pem")
        with open(self.bundle, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        x5c = [__import__("base64").b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.requests: list[str] = []
        server = self

        def sign(claims: dict) -> str:
            header = {"typ": "JWT", "alg": "RS256", "x5c": x5c}
            signing_input = (_b64url(json.dumps(header).encode()) + "." +
                             _b64url(json.dumps(claims).encode())).encode()
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            return signing_input.decode() + "." + _b64url(sig)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                import base64
                import urllib.parse
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                server.requests.append(self.path)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) != ("alice", "s3cret"):
                        body = b'{"details":"incorrect username or password"}'
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    user = u
                access = []
                for scope in q.get("scope", []):
                    typ, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    wanted = actions.split(",")
                    granted = wanted if user else [a for a in wanted if a == "pull"]
                    access.append({"type": typ, "name": name, "actions": granted})
                t = int(time.time())
                token = sign({"iss": TokenServer.ISSUER, "sub": user or "", "aud": TokenServer.SERVICE,
                              "exp": t + 300, "nbf": t - 10, "iat": t, "jti": os.urandom(8).hex(),
                              "access": access})
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


@pytest.mark.skipif(not __import__("importlib").util.find_spec("cryptography"),
                    reason="python3-cryptography missing")
def test_bearer_token_flow(daemon_factory):
    d = daemon_factory()
    tmp = tempfile.mkdtemp(prefix="berth-token.")
    tokens = TokenServer(tmp)
    reg = Registry(token={"realm": tokens.realm, "service": TokenServer.SERVICE,
                          "issuer": TokenServer.ISSUER, "rootcertbundle": tokens.bundle})
    try:
        name = f"{reg.host}/team/bb:v1"
        d.docker_ok("tag", IMAGE, name)
        p = d.berth_cli("push", name, timeout=60)
        assert p.returncode != 0, describe(p)
        assert "unauthorized" in p.stderr.lower() or "denied" in p.stderr.lower(), describe(p)
        p = d.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="nope\n")
        assert p.returncode != 0 and "unauthorized" in p.stderr.lower(), describe(p)
        p = d.berth_cli("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert p.returncode == 0, describe(p)
        out = berth_ok(d, "push", name)
        assert "v1: digest: sha256:" in out, out
        assert any("scope=repository%3Ateam%2Fbb%3Apull%2Cpush" in r for r in tokens.requests), \
            tokens.requests
        berth_ok(d, "logout", reg.host)
        berth_ok(d, "rmi", name)
        # Anonymous tokens may pull.
        out = berth_ok(d, "pull", name)
        assert "Downloaded newer image" in out, out
    finally:
        reg.stop()
        tokens.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- a pull cut off halfway ------------------------------------------------------------------

class SlowProxy:
    """A TCP proxy to the registry that sends the registry's answers at `rate` bytes/s."""

    def __init__(self, target_port: int, rate: int):
        import threading
        self.rate = rate
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.rate),
                             daemon=True).start()

    @staticmethod
    def _pipe(src, dst, rate):
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.closed = True
        self.sock.close()


def test_pull_killed_halfway_then_repeated(daemon_factory, registry):
    import io
    import tarfile
    src = daemon_factory(load=False)
    payload = os.urandom(6 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("big.bin")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    direct = f"{registry.host}/big/img:v1"
    p = src.docker("import", "-", direct, input=buf.getvalue(), text=False, timeout=120)
    assert p.returncode == 0, describe(p)
    berth_ok(src, "push", direct)

    proxy = SlowProxy(registry.port, rate=1 << 20)
    try:
        name = f"{proxy.host}/big/img:v1"
        d = daemon_factory(load=False)
        layers_dir = os.path.join(d.data_root, "image", "layers")
        before_layers = set(os.listdir(layers_dir))
        puller = subprocess.Popen([d.argv()[0], "pull", name], env=d.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        assert puller.poll() is None, "the throttled pull finished too early"
        d.kill()
        puller.wait(30)
        assert puller.returncode != 0
        d.start()
        assert d.image_ids() == set()
        assert set(os.listdir(layers_dir)) == before_layers
        assert os.listdir(os.path.join(d.data_root, "image", "tmp")) == []
        out = berth_ok(d, "pull", name, timeout=120)
        assert "Pull complete" in out and "Downloaded newer image" in out, out
        assert d.inspect(name, "{{.Id}}") == src.inspect(direct, "{{.Id}}")
        layer = d.inspect(name, "{{.GraphDriver.Data.UpperDir}}")
        assert os.path.getsize(os.path.join(layer, "big.bin")) == len(payload)
    finally:
        proxy.stop()


def test_tampered_blob_is_refused(daemon_factory, registry):
    src = daemon_factory()
    name = f"{registry.host}/tamper/bb:v1"
    berth_ok(src, "tag", IMAGE, name)
    berth_ok(src, "push", name)
    import urllib.request
    req = urllib.request.Request(
        f"http://{registry.host}/v2/tamper/bb/manifests/v1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    manifest = json.loads(urllib.request.urlopen(req).read())
    layer = manifest["layers"][0]["digest"].split(":")[1]
    data = os.path.join(registry.dir, "data", "docker", "registry", "v2", "blobs", "sha256",
                        layer[:2], layer, "data")
    with open(data, "r+b") as f:
        content = bytearray(f.read())
        content[len(content) // 2] ^= 0xFF
        f.seek(0)
        f.write(content)
    d = daemon_factory(load=False)
    p = d.berth_cli("pull", name, timeout=120)
    assert p.returncode != 0, describe(p)
    assert "digest mismatch" in p.stderr, describe(p)
    assert d.image_ids() == set()
    assert os.listdir(os.path.join(d.data_root, "image", "layers")) == []


def test_pull_quiet_and_all_tags(daemon, registry):
    for t in ("a1", "a2"):
        berth_ok(daemon, "tag", IMAGE, f"{registry.host}/alltags/bb:{t}")
    out = berth_ok(daemon, "push", "-a", f"{registry.host}/alltags/bb")
    assert "a1: digest:" in out and "a2: digest:" in out, out
    for t in ("a1", "a2"):
        berth_ok(daemon, "rmi", f"{registry.host}/alltags/bb:{t}")
    out = berth_ok(daemon, "pull", "-q", f"{registry.host}/alltags/bb:a1")
    assert out.strip() == f"{registry.host}/alltags/bb:a1", out
    out = berth_ok(daemon, "pull", "-a", f"{registry.host}/alltags/bb")
    assert "a2: Pulling from alltags/bb" in out, out
    tags = daemon.docker_ok("images", "--format", "{{.Tag}}", f"{registry.host}/alltags/bb").split()
    assert sorted(tags) == ["a1", "a2"], tags


def test_push_to_second_repository_mounts_layers(daemon, registry):
    first = f"{registry.host}/mount/one:v1"
    second = f"{registry.host}/mount/two:v1"
    berth_ok(daemon, "tag", IMAGE, first)
    berth_ok(daemon, "push", first)
    berth_ok(daemon, "tag", IMAGE, second)
    out = berth_ok(daemon, "push", second)
    assert "Mounted from mount/one" in out, out
    berth_ok(daemon, "rmi", second)
    out = berth_ok(daemon, "pull", second)
    assert "Digest: sha256:" in out, out


@needs_skopeo
def test_repush_of_zstd_image_keeps_oci_types(daemon, registry):
    from conftest import ensure_busybox_archive
    name = f"{registry.host}/zsrc/bb:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd",
           "--format", "oci", f"docker-archive:{ensure_busybox_archive()}", f"docker://{name}")
    berth_ok(daemon, "pull", name)
    again = f"{registry.host}/zdst/bb:v1"
    berth_ok(daemon, "tag", name, again)
    berth_ok(daemon, "push", again)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{again}").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json", raw
    assert raw["layers"][0]["mediaType"].endswith("+zstd"), raw
    out = berth_ok(daemon, "pull", again)
    assert "Image is up to date" in out, out
