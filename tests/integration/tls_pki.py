"""Test certificates made with openssl: two CAs, a server certificate for 127.0.0.1 and
localhost, client certificates (by CN), one from the other CA, and an expired one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _ssl(*args: str, cwd: Path) -> None:
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"openssl {' '.join(args)} failed: {p.stderr}"


class Pki:
    def __init__(self, base: Path):
        self.dir = Path(base)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca", "berth test CA")
        self.other_ca = self._ca("other-ca", "some other CA")
        self.server_cert, self.server_key = self.issue(
            "server", "localhost", "ca", ext="serverAuth",
            san="IP:127.0.0.1,DNS:localhost")

    def _ca(self, name: str, cn: str) -> Path:
        _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return self.dir / f"{name}.pem"

    def issue(self, name: str, cn: str, ca: str = "ca", ext: str = "clientAuth",
              san: str | None = None, expired: bool = False) -> tuple[Path, Path]:
        """A key and a certificate `name`.pem signed by `ca`; `expired` dates it in 2020."""
        _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem",
             "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.dir)
        extfile = self.dir / f"{name}.ext"
        lines = [f"extendedKeyUsage={ext}", "basicConstraints=CA:FALSE"]
        if san:
            lines.append(f"subjectAltName={san}")
        extfile.write_text("\n".join(lines) + "\n")
        if not expired:
            _ssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                 f"{ca}-key.pem", "-CAcreateserial", "-days", "30", "-out", f"{name}.pem",
                 "-extfile", extfile.name, cwd=self.dir)
        else:
            # `openssl ca` is the openssl 3.0 way to choose both dates.
            db = self.dir / f"{name}-db"
            db.mkdir(exist_ok=True)
            (db / "index.txt").write_text("")
            (db / "serial").write_text("1000\n")
            conf = self.dir / f"{name}-ca.cnf"
            conf.write_text(f"""[ca]
default_ca = test
[test]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
""")
            _ssl("ca", "-batch", "-config", conf.name, "-cert", f"{ca}.pem", "-keyfile",
                 f"{ca}-key.pem", "-in", f"{name}.csr", "-out", f"{name}.pem",
                 "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                 "-extfile", extfile.name, "-notext", cwd=self.dir)
        return self.dir / f"{name}.pem", self.dir / f"{name}-key.pem"

    def cert_dir(self, name: str, cert: Path, key: Path, ca: Path | None = None) -> Path:
        """A DOCKER_CERT_PATH directory (ca.pem, cert.pem, key.pem) for a client."""
        d = self.dir / f"client-{name}"
        d.mkdir(exist_ok=True)
        (d / "ca.pem").write_bytes((ca or self.ca).read_bytes())
        (d / "cert.pem").write_bytes(cert.read_bytes())
        (d / "key.pem").write_bytes(key.read_bytes())
        os.chmod(d / "key.pem", 0o600)
        return d

    def daemon_flags(self, verify: bool = True) -> list[str]:
        return (["--tlsverify", "--tlscacert", str(self.ca)] if verify else ["--tls"]) + \
            ["--tlscert", str(self.server_cert), "--tlskey", str(self.server_key)]
