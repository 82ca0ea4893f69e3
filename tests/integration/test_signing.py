"""Signed images (issue 17, item 3): cosign key pairs made by `berth trust keygen`, signatures
pushed by `berth push --sign-by` and `berth image sign` as sigstore attachments, the daemon's
signature policy (containers-policy.json) enforced on every pull, whichever client asks, and on
archive loads; interop both ways with skopeo 1.13.3 (../shared/peers/skopeo.xz, sigstore
enabled); tampering (a moved tag, a swapped signature, another repository's signature, another
key) refused with nothing stored.

Needs Debian's `docker-registry` and the skopeo peer; a missing one fails the tests.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import IMAGE, REGISTRY, REPO, berth_ok, describe, ensure_busybox_archive

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PASS = "correct horse"


def shared_dir() -> Path:
    local = REPO.parent / "shared"
    return local if (local / "peers").is_dir() else Path("/work/shared")


def skopeo_path() -> str:
    out = Path(tempfile.gettempdir()) / "peers" / "skopeo"
    if not os.access(out, os.X_OK):
        src = shared_dir() / "peers" / "skopeo.xz"
        assert src.is_file(), f"the skopeo peer is missing: {src}"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}")
        with open(tmp, "wb") as f:
            subprocess.run(["xz", "-dc", str(src)], stdout=f, check=True)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    return str(out)


@pytest.fixture(scope="module")
def skopeo_bin():
    assert os.path.exists(REGISTRY), "docker-registry is not installed (apt install docker-registry)"
    return skopeo_path()


class Keys:
    """Key pairs made by berth (b, b2) and by skopeo (s), with their passphrase file."""

    def __init__(self, daemon, skopeo_bin):
        self.dir = tempfile.mkdtemp(prefix="berth-keys.")
        self.passfile = os.path.join(self.dir, "pass")
        with open(self.passfile, "w") as f:
            f.write(PASS + "\n")
        for k in ("b", "b2"):
            out = berth_ok(daemon, "trust", "keygen", "--output-prefix", self.path(k),
                           "--passphrase-file", self.passfile)
            assert "Private key written to" in out, out
        p = subprocess.run([skopeo_bin, "generate-sigstore-key", "--output-prefix", self.path("s"),
                            "--passphrase-file", self.passfile], capture_output=True, text=True)
        assert p.returncode == 0, describe(p)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)


@pytest.fixture
def keys(daemon, skopeo_bin):
    k = Keys(daemon, skopeo_bin)
    yield k
    shutil.rmtree(k.dir, ignore_errors=True)


class Skopeo:
    def __init__(self, binary: str, registry):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="berth-skopeo.")
        self.regd = os.path.join(self.dir, "registries.d")
        os.makedirs(self.regd)
        with open(os.path.join(self.regd, "local.yaml"), "w") as f:
            f.write(f"docker:\n  {registry.host}:\n    use-sigstore-attachments: true\n")
        self.accept = os.path.join(self.dir, "accept.json")
        with open(self.accept, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)

    def run(self, *args, policy=None) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, "--registries.d", self.regd, "--policy", policy or self.accept,
                               *args], capture_output=True, text=True, timeout=120)

    def ok(self, *args, policy=None) -> str:
        p = self.run(*args, policy=policy)
        assert p.returncode == 0, describe(p)
        return p.stdout

    def sign_copy(self, src: str, dest: str, key: str, passfile: str, *extra):
        self.ok("copy", "--dest-tls-verify=false", "--src-tls-verify=false",
                "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", passfile,
                *extra, src, dest)

    def verify(self, ref: str, pubkey: str, identity=None) -> subprocess.CompletedProcess:
        policy = os.path.join(self.dir, "verify.json")
        req = {"type": "sigstoreSigned", "keyPath": pubkey}
        if identity:
            req["signedIdentity"] = identity
        repo = ref.rsplit(":", 1)[0]
        with open(policy, "w") as f:
            json.dump({"default": [{"type": "reject"}],
                       "transports": {"docker": {repo: [req]}}}, f)
        out = tempfile.mkdtemp(prefix="berth-skopeo-out.", dir=self.dir)
        return self.run("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}",
                        policy=policy)


@pytest.fixture
def skopeo(skopeo_bin, registry):
    s = Skopeo(skopeo_bin, registry)
    yield s
    shutil.rmtree(s.dir, ignore_errors=True)


def reg_get(registry, repo: str, ref: str, accept=OCI_MANIFEST) -> tuple[bytes, str]:
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/manifests/{ref}",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), r.headers.get("Content-Type", "")


def reg_put(registry, repo: str, ref: str, body: bytes, media_type: str) -> None:
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/manifests/{ref}", data=body,
                                 method="PUT", headers={"Content-Type": media_type})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201, r.status


def manifest_digest(registry, repo: str, tag: str) -> str:
    accept = ",".join([OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])
    body, _ = reg_get(registry, repo, tag, accept)
    return "sha256:" + hashlib.sha256(body).hexdigest()


def sig_tag(digest: str) -> str:
    return digest.replace("sha256:", "sha256-") + ".sig"


def files_under(path: str) -> set[str]:
    out = set()
    for root, dirs, files in os.walk(path):
        for n in files + dirs:
            out.add(os.path.relpath(os.path.join(root, n), path))
    return out


class Verifier:
    """A private daemon with a signature policy (written after busybox is loaded)."""

    def __init__(self, factory):
        self.d = factory(start=False)
        self.policy = os.path.join(self.d.base, "policy.json")
        self.regd = os.path.join(self.d.base, "registries.d")
        os.makedirs(self.regd, exist_ok=True)
        self.d.extra_args = ["--signature-policy", self.policy, "--registries-d", self.regd]
        self.d.start()
        self.d.load_busybox()

    def set_policy(self, policy: dict) -> None:
        with open(self.policy, "w") as f:
            json.dump(policy, f)

    def refused(self, ref: str, needle: str, client: str = "berth") -> str:
        """Pulls `ref`, asserting refusal naming `needle` and that nothing was stored."""
        before = files_under(self.d.data_root)
        images = self.d.docker_ok("images", "-q", "--no-trunc")
        p = self.d.berth_cli("pull", ref) if client == "berth" else self.d.docker("pull", ref)
        assert p.returncode != 0, describe(p)
        assert needle in p.stderr + p.stdout, describe(p)
        assert self.d.docker_ok("images", "-q", "--no-trunc") == images
        assert files_under(self.d.data_root) == before, \
            sorted(files_under(self.d.data_root) ^ before)
        return p.stderr


@pytest.fixture
def verifier(daemon_factory):
    return Verifier(daemon_factory)


def push(daemon, ref: str, *flags) -> str:
    berth_ok(daemon, "tag", IMAGE, ref)
    return berth_ok(daemon, "push", *flags, ref)


def other_image(daemon, ref: str, content: str) -> None:
    """A second image (busybox plus one file), tagged `ref`."""
    name = f"mk-{hashlib.sha256(ref.encode()).hexdigest()[:8]}"
    berth_ok(daemon, "run", "--name", name, IMAGE, "sh", "-c", f"echo {content} > /marker")
    berth_ok(daemon, "commit", name, ref)
    berth_ok(daemon, "rm", name)


def sigstore_policy(registry, key: str, repo: str | None = None, **extra) -> dict:
    req = {"type": "sigstoreSigned", "keyPath": key, **extra}
    scope = f"{registry.host}/{repo}" if repo else registry.host
    return {"default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker": {scope: [req]}}}


# ---- keys ---------------------------------------------------------------------------------


def test_keygen_writes_cosigns_encrypted_format(daemon, keys):
    text = open(keys.path("b.private")).read()
    assert text.startswith("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"), text
    body = "".join(text.strip().splitlines()[1:-1])
    enc = json.loads(base64.b64decode(body))
    assert enc["kdf"]["name"] == "scrypt"
    assert enc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert enc["cipher"]["name"] == "nacl/secretbox"
    assert oct(os.stat(keys.path("b.private")).st_mode & 0o777) == "0o600"
    assert open(keys.path("b.pub")).read().startswith("-----BEGIN PUBLIC KEY-----\n")
    # Never overwrites a key.
    p = daemon.berth_cli("trust", "keygen", "--output-prefix", keys.path("b"),
                         "--passphrase-file", keys.passfile)
    assert p.returncode != 0 and "already exists" in p.stderr, describe(p)
    # No passphrase: an error, no file written.
    env_less = daemon.berth_cli("trust", "keygen", "--output-prefix", keys.path("nopass"))
    assert env_less.returncode != 0 and "passphrase" in env_less.stderr, describe(env_less)
    assert not os.path.exists(keys.path("nopass.private"))


# ---- berth signs; berth and skopeo verify ---------------------------------------------------


def test_berth_signed_push_verified_by_berth_and_skopeo(daemon, registry, keys, skopeo, verifier):
    ref = f"{registry.host}/signed/bb:v1"
    out = push(daemon, ref, "--sign-by", keys.path("b.private"),
               "--sign-passphrase-file", keys.passfile)
    assert "Signed " in out and ".sig" in out, out
    digest = manifest_digest(registry, "signed/bb", "v1")
    sig = json.loads(reg_get(registry, "signed/bb", sig_tag(digest))[0])
    assert len(sig["layers"]) == 1, sig
    layer = sig["layers"][0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert "dev.cosignproject.cosign/signature" in layer["annotations"]

    # skopeo accepts berth's signature with its sigstoreSigned policy, not with another key.
    p = skopeo.verify(ref, keys.path("b.pub"))
    assert p.returncode == 0, describe(p)
    p = skopeo.verify(ref, keys.path("s.pub"))
    assert p.returncode != 0, describe(p)

    # berth's own policy accepts it; inspect shows which key verified it.
    verifier.set_policy(sigstore_policy(registry, keys.path("b.pub")))
    out = berth_ok(verifier.d, "pull", ref)
    assert f"Digest: {digest}" in out, out
    sigs = json.loads(verifier.d.inspect(ref, "{{json .BerthSignatures}}"))
    assert len(sigs) == 1, sigs
    assert sigs[0]["RepoDigest"] == f"{registry.host}/signed/bb@{digest}", sigs
    assert sigs[0]["SignedIdentity"] == ref, sigs
    assert sigs[0]["KeySource"] == keys.path("b.pub"), sigs
    assert sigs[0]["KeyFingerprint"].startswith("SHA256:"), sigs
    p = verifier.d.run(ref, "echo", "verified-run")
    assert p.returncode == 0 and "verified-run" in p.stdout, describe(p)

    # The same image under a policy trusting only the skopeo key: refused, nothing stored.
    berth_ok(verifier.d, "rmi", ref)
    verifier.set_policy(sigstore_policy(registry, keys.path("s.pub")))
    verifier.refused(ref, "not made by a trusted key")


def test_image_sign_accumulates_signatures(daemon, registry, keys, skopeo, verifier):
    ref = f"{registry.host}/multi/bb:v1"
    push(daemon, ref)
    outs = []
    for key in ("b", "b2", "b"):
        out = berth_ok(daemon, "image", "sign", "--key", keys.path(f"{key}.private"),
                       "--passphrase-file", keys.passfile, ref)
        assert ref in out, out
        outs.append(out)
    digest = manifest_digest(registry, "multi/bb", "v1")
    sig = json.loads(reg_get(registry, "multi/bb", sig_tag(digest))[0])
    # ECDSA signatures here are deterministic (RFC 6979) and the payload's timestamp is in
    # seconds: signing again with the same key in the same second is the same signature, which
    # is not stored twice; a later second is a new one.
    expected = 2 if "already carries this signature" in outs[2] else 3
    assert len(sig["layers"]) == expected, (sig, outs)
    assert len({l["digest"] + l["annotations"]["dev.cosignproject.cosign/signature"]
                for l in sig["layers"]}) == expected, sig
    # A key of either: accepted by berth (keyPaths) and by skopeo (each key alone).
    for key in ("b", "b2"):
        p = skopeo.verify(ref, keys.path(f"{key}.pub"))
        assert p.returncode == 0, describe(p)
    verifier.set_policy({"default": [{"type": "sigstoreSigned",
                                      "keyPaths": [keys.path("s.pub"), keys.path("b2.pub")]}]})
    berth_ok(verifier.d, "pull", ref)
    sigs = json.loads(verifier.d.inspect(ref, "{{json .BerthSignatures}}"))
    assert [s["KeySource"] for s in sigs] == [keys.path("b2.pub")], sigs
    # A wrong passphrase signs nothing.
    bad = os.path.join(keys.dir, "badpass")
    with open(bad, "w") as f:
        f.write("wrong\n")
    p = daemon.berth_cli("image", "sign", "--key", keys.path("b.private"), "--passphrase-file", bad, ref)
    assert p.returncode != 0 and "passphrase" in p.stderr, describe(p)
    assert len(json.loads(reg_get(registry, "multi/bb", sig_tag(digest))[0])["layers"]) == expected


# ---- skopeo signs; berth verifies -------------------------------------------------------------


def test_skopeo_signed_image_accepted_by_berth(registry, keys, skopeo, verifier):
    ref = f"{registry.host}/sk/bb:v1"
    skopeo.sign_copy(f"docker-archive:{ensure_busybox_archive()}", f"docker://{ref}",
                     keys.path("s.private"), keys.passfile)
    verifier.set_policy(sigstore_policy(registry, keys.path("s.pub"), "sk/bb",
                                        signedIdentity={"type": "matchRepository"}))
    berth_ok(verifier.d, "pull", ref)
    sigs = json.loads(verifier.d.inspect(ref, "{{json .BerthSignatures}}"))
    assert sigs and sigs[0]["KeySource"] == keys.path("s.pub"), sigs
    # And a skopeo key file signs through berth too (the encrypted format is shared).
    ref2 = f"{registry.host}/sk/bb:v2"
    berth_ok(verifier.d, "tag", ref, ref2)
    out = berth_ok(verifier.d, "push", "--sign-by", keys.path("s.private"),
                   "--sign-passphrase-file", keys.passfile, ref2)
    assert "Signed " in out, out
    p = skopeo.verify(ref2, keys.path("s.pub"))
    assert p.returncode == 0, describe(p)
    # Under a policy trusting berth's key, the skopeo-signed image is refused.
    berth_ok(verifier.d, "rmi", ref, ref2)
    verifier.set_policy(sigstore_policy(registry, keys.path("b.pub")))
    verifier.refused(ref, "not made by a trusted key")


# ---- tampering and refusals ---------------------------------------------------------------------


def test_tampering_is_refused_by_berth_and_skopeo(daemon, registry, keys, skopeo, verifier):
    signed = f"{registry.host}/tamper/bb:v1"
    push(daemon, signed, "--sign-by", keys.path("b.private"), "--sign-passphrase-file", keys.passfile)
    good = manifest_digest(registry, "tamper/bb", "v1")
    verifier.set_policy(sigstore_policy(registry, keys.path("b.pub")))

    # Unsigned image.
    unsigned = f"{registry.host}/tamper/plain:v1"
    push(daemon, unsigned)
    verifier.refused(unsigned, "no signature exists")
    verifier.refused(unsigned, "no signature exists", client="docker")

    # The tag moved to another image (re-tagged), with the old signature copied onto the new
    # manifest's attachment (swapped signature).
    other_image(daemon, signed, "evil")
    berth_ok(daemon, "push", signed)
    moved = manifest_digest(registry, "tamper/bb", "v1")
    assert moved != good
    body, _ = reg_get(registry, "tamper/bb", sig_tag(good))
    reg_put(registry, "tamper/bb", sig_tag(moved), body, OCI_MANIFEST)
    verifier.refused(signed, "does not match the image's manifest digest")
    assert skopeo.verify(signed, keys.path("b.pub")).returncode != 0
    # By digest, the original signed manifest is still accepted.
    berth_ok(verifier.d, "pull", f"{registry.host}/tamper/bb@{good}")

    # A signature naming another repository (made by skopeo with --sign-identity).
    wrong = f"{registry.host}/tamper/other:v1"
    push(daemon, wrong)
    skopeo.sign_copy(f"docker://{wrong}", f"docker://{wrong}", keys.path("b.private"),
                     keys.passfile, "--sign-identity", f"{registry.host}/tamper/bb:v1")
    verifier.refused(wrong, "is not accepted for")
    assert skopeo.verify(wrong, keys.path("b.pub")).returncode != 0

    # A payload altered under its signature.
    forged = f"{registry.host}/tamper/forged:v1"
    push(daemon, forged, "--sign-by", keys.path("b.private"), "--sign-passphrase-file", keys.passfile)
    d = manifest_digest(registry, "tamper/forged", "v1")
    sig = json.loads(reg_get(registry, "tamper/forged", sig_tag(d))[0])
    # Swap in the signature annotation of the first image's signature (a valid signature
    # over another payload).
    first = json.loads(reg_get(registry, "tamper/bb", sig_tag(good))[0])
    sig["layers"][0]["annotations"] = first["layers"][0]["annotations"]
    reg_put(registry, "tamper/forged", sig_tag(d), json.dumps(sig).encode(), OCI_MANIFEST)
    verifier.refused(forged, "not made by a trusted key")
    assert skopeo.verify(forged, keys.path("b.pub")).returncode != 0


def test_every_client_path_goes_through_the_policy(daemon, registry, keys, verifier):
    unsigned = f"{registry.host}/paths/bb:v1"
    push(daemon, unsigned)
    verifier.set_policy({"default": [{"type": "reject"}],
                         "transports": {"docker": {registry.host: [
                             {"type": "sigstoreSigned", "keyPath": keys.path("b.pub")}]}}})
    # The Python SDK.
    with pytest.raises(Exception) as e:
        verifier.d.client.images.pull(unsigned)
    assert "no signature exists" in str(e.value), e.value
    # A build's FROM.
    ctx = tempfile.mkdtemp(prefix="berth-sign-build.")
    try:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {unsigned}\nRUN true\n")
        p = verifier.d.berth_cli("build", "-t", "from-unsigned", ctx, timeout=120)
        assert p.returncode != 0 and "no signature exists" in p.stdout + p.stderr, describe(p)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    assert unsigned not in verifier.d.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}")
    # The default scope rejects another registry outright.
    verifier.refused("127.0.0.1:1/none:v1", "rejected by the signature policy")


def test_archive_loads_follow_the_archive_rule(keys, verifier):
    archive = str(ensure_busybox_archive())
    berth_ok(verifier.d, "rmi", IMAGE)
    verifier.set_policy({"default": [{"type": "sigstoreSigned", "keyPath": keys.path("b.pub")}]})
    before = files_under(verifier.d.data_root)
    p = verifier.d.berth_cli("load", "-i", archive)
    assert p.returncode != 0 and "archives carry no signatures" in p.stderr, describe(p)
    p = verifier.d.docker("import", archive, "imported:v1")
    assert p.returncode != 0 and "archives carry no signatures" in p.stderr, describe(p)
    assert files_under(verifier.d.data_root) == before
    verifier.set_policy({"default": [{"type": "sigstoreSigned", "keyPath": keys.path("b.pub")}],
                         "transports": {"docker-archive": {"": [{"type": "insecureAcceptAnything"}]}}})
    berth_ok(verifier.d, "load", "-i", archive)


def test_bad_policy_refuses_pulls_and_names_itself(daemon, registry, verifier):
    ref = f"{registry.host}/bad/bb:v1"
    push(daemon, ref)
    with open(verifier.policy, "w") as f:
        f.write('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/x"}]}')
    verifier.refused(ref, "policy.json")
    verifier.refused(ref, "signedBy")
    # Removing the policy file restores today's behaviour.
    os.remove(verifier.policy)
    berth_ok(verifier.d, "pull", ref)
    assert "BerthSignatures" not in verifier.d.inspect(ref)


def test_registries_d_turns_attachments_off(daemon, registry, keys, verifier):
    ref = f"{registry.host}/regd/bb:v1"
    push(daemon, ref, "--sign-by", keys.path("b.private"), "--sign-passphrase-file", keys.passfile)
    verifier.set_policy(sigstore_policy(registry, keys.path("b.pub")))
    with open(os.path.join(verifier.regd, "off.yaml"), "w") as f:
        f.write(f"docker:\n  {registry.host}/regd:\n    use-sigstore-attachments: false\n")
    verifier.refused(ref, "no signature exists")
    with open(os.path.join(verifier.regd, "off.yaml"), "w") as f:
        f.write(f"docker:\n  {registry.host}/regd:\n    lookaside: http://example.invalid\n")
    verifier.refused(ref, "lookaside")
    os.remove(os.path.join(verifier.regd, "off.yaml"))
    berth_ok(verifier.d, "pull", ref)


def test_signatures_endpoint_stores_once_and_checks_the_repository(daemon, registry):
    from conftest import http_request
    ref = f"{registry.host}/api/bb:v1"
    push(daemon, ref)
    digest = manifest_digest(registry, "api/bb", "v1")
    def post(name: str, identity: str, d: str = digest):
        payload = json.dumps({"critical": {"identity": {"docker-reference": identity},
                                           "image": {"docker-manifest-digest": d},
                                           "type": "cosign container image signature"},
                              "optional": {}}).encode()
        body = json.dumps({"Payload": base64.b64encode(payload).decode(),
                           "Signature": base64.b64encode(b"not checked by the daemon").decode()})
        status, _, out = http_request(daemon.sock, "POST", f"/images/{name}/signatures", body,
                                      {"Content-Type": "application/json"})
        return status, json.loads(out)
    status, out = post(f"{registry.host}/api/bb", ref)
    assert status == 201 and out["Added"] is True and out["Tag"] == sig_tag(digest), out
    status, out = post(f"{registry.host}/api/bb", ref)
    assert status == 200 and out["Added"] is False, out
    assert len(json.loads(reg_get(registry, "api/bb", sig_tag(digest))[0])["layers"]) == 1
    # A payload naming another repository is not stored here.
    status, out = post(f"{registry.host}/api/bb", f"{registry.host}/other/bb:v1")
    assert status == 400 and "not the repository" in out["message"], out
    # Nor one for a manifest the repository does not have.
    status, out = post(f"{registry.host}/api/bb", ref, "sha256:" + "0" * 64)
    assert status == 404, out
    assert len(json.loads(reg_get(registry, "api/bb", sig_tag(digest))[0])["layers"]) == 1
