"""Files a container controls are hostile input to the daemon (issue 14, item 1).

The daemon reads a container's /etc/passwd and /etc/group to resolve `--user` at start, for
`exec -u` and for `cp -a`. A container can make those files a FIFO (an open would block a daemon
worker for ever), a link to /dev/zero (a read without end), a huge sparse file, or a link to a
host path (resolved naively, `--user` would then take the host's entry). Each trick must end in
a prompt error or Docker's "unable to find user", with the daemon answering /_ping within 100 ms
throughout and its memory bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

from conftest import DOCKER, IMAGE, describe, http_request

PING_LIMIT_S = 0.1
RSS_GROWTH_LIMIT_KIB = 64 * 1024
UID = ("grep", "-m1", "^Uid:", "/proc/self/status")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class PingWatch:
    """Times GET /_ping every 20 ms on a thread; `worst` is the slowest answer seen."""

    def __init__(self, sock: str):
        self.sock = sock
        self.worst = 0.0
        self.failures: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                status, _, body = http_request(self.sock, "GET", "/_ping", timeout=5)
                if status != 200:
                    self.failures.append(f"status {status}")
            except OSError as e:
                self.failures.append(repr(e))
            self.worst = max(self.worst, time.monotonic() - t0)
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(10)

    def check(self):
        assert not self.failures, self.failures[:5]
        assert self.samples >= 3, f"only {self.samples} pings"
        assert self.worst < PING_LIMIT_S, f"/_ping took {self.worst * 1000:.0f} ms"


def start_target(d, name: str) -> None:
    d.docker_ok("run", "-d", "--name", name, IMAGE, "sleep", "600")


def exec_as(d, name: str, user: str, *cmd: str) -> subprocess.CompletedProcess:
    return d.docker("exec", "-u", user, name, *(cmd or ("true",)))


def test_a_fifo_passwd_never_blocks_the_daemon(daemon_factory):
    d = daemon_factory()
    start_target(d, "fifo")
    assert exec_as(d, "fifo", "nobody", "id", "-u").stdout.strip() == "65534"
    d.docker_ok("exec", "fifo", "sh", "-c",
                "rm /etc/passwd /etc/group && mkfifo /etc/passwd /etc/group")
    with PingWatch(d.sock) as watch:
        # More concurrent lookups than the daemon has workers: each would block one for ever
        # if the FIFO were opened.
        procs = [subprocess.Popen([DOCKER, "exec", "-u", "nobody", "fifo", "true"],
                                  env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(12)]
        outs = [p.communicate(timeout=30) for p in procs]
        for p, (out, err) in zip(procs, outs):
            # dockerd writes an exec's start error on the hijacked stream: stdout.
            assert p.returncode == 126, (p.returncode, out, err)
            assert "unable to find user nobody" in out + err, (out, err)
        # Numeric users need no database; root works as in Docker without a passwd file.
        # (`id` would read the FIFO inside the container: the uid comes from /proc.)
        p = exec_as(d, "fifo", "1234", *UID)
        assert p.returncode == 0 and p.stdout.split()[1] == "1234", describe(p)
        p = exec_as(d, "fifo", "0", *UID)
        assert p.returncode == 0 and p.stdout.split()[1] == "0", describe(p)
    watch.check()
    # A container created from the same files (committed: the FIFOs are in its layer) starts
    # as root and refuses a named user at start; `cp -a` into it does not hang either.
    d.docker_ok("commit", "fifo", "fifo-image")
    p = d.run("fifo-image", *UID)
    assert p.returncode == 0 and p.stdout.split()[1] == "0", describe(p)
    p = d.run("-u", "nobody", "fifo-image", "true")
    assert p.returncode != 0 and "unable to find user nobody" in p.stderr, describe(p)
    d.docker_ok("create", "--name", "fifo-cp", "fifo-image", "true")
    src = os.path.join(d.base, "cp-src")
    with open(src, "w") as f:
        f.write("x")
    p = d.docker("cp", "-a", src, "fifo-cp:/tmp/")
    assert p.returncode == 0, describe(p)
    assert d.ping()


def test_a_passwd_without_end_is_not_read(daemon_factory):
    d = daemon_factory()
    start_target(d, "zero")
    before = rss_kib(d.proc.pid)
    with PingWatch(d.sock) as watch:
        d.docker_ok("exec", "zero", "sh", "-c", "ln -sf /dev/zero /etc/passwd")
        p = exec_as(d, "zero", "nobody")
        assert p.returncode != 0, describe(p)
        assert "unable to find user nobody" in p.stdout + p.stderr, describe(p)
        # 64 GiB of apparent size, sparse: refused by its size, never read.
        d.docker_ok("exec", "zero", "sh", "-c",
                    "rm /etc/passwd && truncate -s 64G /etc/passwd")
        t0 = time.monotonic()
        p = exec_as(d, "zero", "nobody")
        assert p.returncode != 0, describe(p)
        assert "/etc/passwd is larger than" in p.stdout + p.stderr, describe(p)
        assert time.monotonic() - t0 < 5
    watch.check()
    grown = rss_kib(d.proc.pid) - before
    assert grown < RSS_GROWTH_LIMIT_KIB, f"daemon RSS grew by {grown} KiB"


def test_a_link_to_a_host_file_is_resolved_inside_the_container(berth, names, tmp_path):
    # A passwd on the host that the container names by its host path.
    host_dir = f"/tmp/bt-evil-{uuid.uuid4().hex[:8]}"
    os.makedirs(host_dir)
    try:
        with open(os.path.join(host_dir, "passwd"), "w") as f:
            f.write("evil:x:4242:4242::/:/bin/sh\n")
        with open(os.path.join(host_dir, "group"), "w") as f:
            f.write("evil:x:4242:\n")
        c, created, fixed = names(), names(), names()
        start_target(berth, c)
        berth.docker_ok("exec", c, "sh", "-c",
                        f"ln -sf {host_dir}/passwd /etc/passwd && "
                        f"ln -sf {host_dir}/group /etc/group")
        p = exec_as(berth, c, "evil", "id", "-u")
        assert p.returncode != 0, describe(p)
        assert "unable to find user evil" in p.stdout + p.stderr, describe(p)
        # The same at start, from an image that carries the links.
        img = f"evil-links-{uuid.uuid4().hex[:8]}"
        berth.docker_ok("commit", c, img)
        try:
            p = berth.run("-u", "evil", img, "id", "-u")
            assert p.returncode != 0, describe(p)
            assert "unable to find user evil" in p.stderr, describe(p)
            # And for `cp -a`, which chowns to the container's user.
            berth.docker_ok("create", "--name", created, "-u", "evil", img, "true")
            src = tmp_path / "f"
            src.write_text("x")
            p = berth.docker("cp", "-a", str(src), f"{created}:/tmp/")
            assert p.returncode != 0, describe(p)
            assert "unable to find user evil" in p.stderr, describe(p)
            # Inside the container the same spelling is followed, as Docker does.
            berth.docker_ok("run", "--name", fixed, img, "sh", "-c",
                            f"mkdir -p {host_dir} && "
                            f"echo 'evil:x:4242:4242::/:/bin/sh' > {host_dir}/passwd")
            img2 = img + "-inside"
            berth.docker_ok("commit", fixed, img2)
            p = berth.run("-u", "evil", img2, "id", "-u")
            assert p.returncode == 0 and p.stdout.strip() == "4242", describe(p)
            berth.docker("rmi", "-f", img2)
        finally:
            berth.docker("rm", "-f", c, created, fixed)
            berth.docker("rmi", "-f", img)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
