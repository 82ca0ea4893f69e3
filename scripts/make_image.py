#!/usr/bin/env python3
"""Build docker-archive images (the format `docker save` writes, Docker 25+ layout).

Standard library only. Used by scripts/make-busybox-image.sh to make the busybox test image,
and imported by the integration tests to make malformed archives.

Layout written (as `docker save` of Docker 25+ does):

    blobs/sha256/<layer>      uncompressed layer tar
    blobs/sha256/<config>     image config JSON
    blobs/sha256/<manifest>   OCI image manifest
    index.json                OCI index pointing at the manifest
    manifest.json             docker-archive manifest ([{Config, RepoTags, Layers, LayerSources}])
    oci-layout
    repositories

Every mtime is fixed (SOURCE_DATE_EPOCH, default 2024-01-01) so the image ID is stable.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1704067200"))  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# Layer tars
# ---------------------------------------------------------------------------------------------


class LayerBuilder:
    """Writes a deterministic layer tar in memory (root-owned, fixed mtimes)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def _info(self, name: str, typ: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mode = mode
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = EPOCH
        return ti

    def dir(self, name: str, mode: int = 0o755) -> None:
        """Add a directory (and, first, its missing parents). Names are relative, no slash."""
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        self.dirs.add(name)
        self.tar.addfile(self._info(name + "/", tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def raw(self, ti: tarfile.TarInfo, data: bytes | None = None) -> None:
        """Add an entry exactly as given (no name cleaning): for malformed test layers."""
        ti.mtime = EPOCH
        if data is not None:
            ti.size = len(data)
            self.tar.addfile(ti, io.BytesIO(data))
        else:
            self.tar.addfile(ti)

    def finish(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def busybox_layer(busybox_path: str) -> bytes:
    """A busybox rootfs: /bin/busybox, a symlink per applet, passwd/group, the usual dirs."""
    with open(busybox_path, "rb") as f:
        busybox = f.read()
    listing = subprocess.run(
        [busybox_path, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    applets = sorted({p.strip("/") for p in listing if p.strip("/")} - {"bin/busybox"})
    if "bin/sh" not in applets:
        applets.append("bin/sh")

    lb = LayerBuilder()
    for d in ["bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "usr/sbin",
              "sbin", "var", "var/spool", "var/spool/mail", "var/www"]:
        lb.dir(d, 0o700 if d == "root" else 0o755)
    lb.dir("tmp", 0o1777)
    lb.file("bin/busybox", busybox, 0o755)
    for applet in applets:
        lb.symlink(applet, "/bin/busybox")
    lb.file("etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    lb.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return lb.finish()


# ---------------------------------------------------------------------------------------------
# docker-archive
# ---------------------------------------------------------------------------------------------


def normalize_tag(tag: str) -> tuple[str, str]:
    """'busybox' -> ('busybox', 'latest'); 'host:5000/a/b:1' -> ('host:5000/a/b', '1')."""
    last = tag.rsplit("/", 1)[-1]
    if ":" in last:
        repo, t = tag.rsplit(":", 1)
    else:
        repo, t = tag, "latest"
    return repo, t


def full_name(repo: str, tag: str) -> str:
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = "docker.io/" + repo
    return f"{repo}:{tag}"


@dataclass
class Archive:
    image_id: str  # sha256:<config hex>
    config_digest: str
    layer_digests: list[str]
    manifest_digest: str


def image_config(diff_ids: list[str], cmd: list[str] | None = None, env: list[str] | None = None,
                 comment: str = "berth test fixture: busybox-static") -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Cmd": cmd if cmd is not None else ["sh"],
            "Env": env if env is not None else [DEFAULT_PATH],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": comment} for _ in diff_ids] or
                   [{"created": CREATED, "created_by": comment, "empty_layer": True}],
    }


def write_docker_archive(out_path: str, layers: list[bytes], tag: str | None = "busybox:latest",
                         config: dict | None = None) -> Archive:
    """Write a docker-archive with the given (uncompressed) layer tars, `docker save` style."""
    layer_hex = [sha256_hex(layer) for layer in layers]
    diff_ids = [f"sha256:{h}" for h in layer_hex]
    if config is None:
        config = image_config(diff_ids)
    config_bytes = canonical_json(config)
    config_hex = sha256_hex(config_bytes)

    oci_manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": f"sha256:{config_hex}",
                   "size": len(config_bytes)},
        "layers": [{"mediaType": MT_LAYER, "digest": f"sha256:{h}", "size": len(layer)}
                   for h, layer in zip(layer_hex, layers)],
    }
    manifest_bytes = canonical_json(oci_manifest)
    manifest_hex = sha256_hex(manifest_bytes)

    repo_tags: list[str] = []
    annotations: dict[str, str] = {}
    repositories: dict[str, dict[str, str]] = {}
    if tag:
        repo, t = normalize_tag(tag)
        repo_tags = [f"{repo}:{t}"]
        annotations = {"io.containerd.image.name": full_name(repo, t),
                       "org.opencontainers.image.ref.name": t}
        if layer_hex:
            repositories = {repo: {t: layer_hex[-1]}}

    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [dict({"mediaType": MT_MANIFEST, "digest": f"sha256:{manifest_hex}",
                            "size": len(manifest_bytes)},
                           **({"annotations": annotations} if annotations else {}))],
    }
    docker_manifest = [{
        "Config": f"blobs/sha256/{config_hex}",
        "RepoTags": repo_tags if repo_tags else None,
        "Layers": [f"blobs/sha256/{h}" for h in layer_hex],
        "LayerSources": {f"sha256:{h}": {"mediaType": MT_LAYER, "size": len(layer),
                                         "digest": f"sha256:{h}"}
                         for h, layer in zip(layer_hex, layers)},
    }]

    blobs: dict[str, bytes] = {}
    for h, layer in zip(layer_hex, layers):
        blobs[h] = layer
    blobs[config_hex] = config_bytes
    blobs[manifest_hex] = manifest_bytes

    def add(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime = EPOCH
        ti.uid = ti.gid = 0
        if data is None:
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tar.addfile(ti)
        else:
            ti.mode = 0o644
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))

    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "blobs", None)
        add(tar, "blobs/sha256", None)
        for h in sorted(blobs):
            add(tar, f"blobs/sha256/{h}", blobs[h])
        add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        add(tar, "manifest.json", json.dumps(docker_manifest, separators=(",", ":")).encode())
        add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        if repositories:
            add(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())
    os.replace(tmp, out_path)
    return Archive(image_id=f"sha256:{config_hex}", config_digest=f"sha256:{config_hex}",
                   layer_digests=diff_ids, manifest_digest=f"sha256:{manifest_hex}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output docker-archive (.tar)")
    ap.add_argument("tag", nargs="?", default="busybox:latest")
    ap.add_argument("--busybox", default="/bin/busybox",
                    help="static busybox binary (Debian: busybox-static)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.busybox):
        print(f"make_image.py: {args.busybox} not found (apt-get install busybox-static)",
              file=sys.stderr)
        return 1
    layer = busybox_layer(args.busybox)
    arch = write_docker_archive(args.out, [layer], args.tag)
    print(f"{args.out}: {args.tag} {arch.image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
