"""Security: what a process sees inside a berth container (Docker's defaults and the run flags:
pid namespace, capabilities, seccomp, masked paths, filesystem, users, limits); files a
container controls as hostile input to the daemon; bad input (archives, flags, names, request
bodies) gets a clear error and changes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
import warnings

import pytest

import make_image  # scripts/make_image.py (conftest puts scripts/ on sys.path)
from conftest import DEFAULT_CAPS, DOCKER, IMAGE, describe, http_request, rss_kib


def status_field(text: str, field: str) -> str:
    m = re.search(rf"^{field}:\s*(\S+)", text, re.M)
    assert m, f"{field} not in /proc/self/status:\n{text}"
    return m.group(1)


def proc_status(berth, *flags) -> str:
    return berth.sh("cat /proc/self/status", *flags)


# -- process, pid namespace ---------------------------------------------------------------------


def test_command_is_pid_1(berth):
    assert berth.sh("echo $$").strip() == "1"
    p = berth.run(IMAGE, "cat", "/proc/1/cmdline")
    assert p.returncode == 0, describe(p)
    assert p.stdout.split("\0")[:2] == ["cat", "/proc/1/cmdline"]


def test_host_processes_invisible(berth):
    p = berth.run(IMAGE, "ps", "-o", "pid,comm")
    assert p.returncode == 0, describe(p)
    rows = [ln.split() for ln in p.stdout.strip().splitlines()[1:]]
    pids = [int(r[0]) for r in rows]
    assert pids == [1], p.stdout  # only `ps` itself, as PID 1
    procs = berth.sh("ls /proc | grep -c '^[0-9]'")
    assert int(procs.strip()) <= 3, procs


def test_init_flag(berth):
    # --init: tini (Debian's tini-static, bind-mounted) is PID 1 and the command its child
    out = berth.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$", "--init")
    first, pid = out.strip().splitlines()
    assert "init" in first or "tini" in first, out
    assert pid != "1", out


# -- capabilities, seccomp, masked paths --------------------------------------------------------


def test_default_capabilities(berth):
    st = proc_status(berth)
    assert status_field(st, "CapEff") == DEFAULT_CAPS
    assert status_field(st, "CapPrm") == DEFAULT_CAPS
    assert status_field(st, "CapBnd") == DEFAULT_CAPS
    assert status_field(st, "CapInh") == "0000000000000000"


def test_default_seccomp_filter(berth):
    st = proc_status(berth)
    assert re.search(r"^Seccomp:\t2$", st, re.M), st


def test_seccomp_unconfined(berth):
    st = proc_status(berth, "--security-opt", "seccomp=unconfined")
    assert status_field(st, "Seccomp") == "0"


def test_mount_refused(berth):
    # no CAP_SYS_ADMIN, and the default seccomp profile refuses mount(2)
    p = berth.run(IMAGE, "sh", "-c", "mount -t tmpfs none /mnt")
    assert p.returncode != 0, describe(p)


def test_cap_drop_all(berth):
    st = proc_status(berth, "--cap-drop", "ALL")
    assert status_field(st, "CapEff") == "0000000000000000"
    assert status_field(st, "CapBnd") == "0000000000000000"


def test_cap_add(berth):
    st = proc_status(berth, "--cap-add", "NET_ADMIN")
    eff = int(status_field(st, "CapEff"), 16)
    assert eff == int(DEFAULT_CAPS, 16) | (1 << 12)  # CAP_NET_ADMIN = 12


def test_cap_drop_one(berth):
    st = proc_status(berth, "--cap-drop", "CHOWN")
    eff = int(status_field(st, "CapEff"), 16)
    assert eff == int(DEFAULT_CAPS, 16) & ~1


def test_privileged(berth):
    # every capability the host allows: the host's bounding set (on the test machines it lacks
    # CAP_SYS_RESOURCE, so asking runc for "all known capabilities" would fail)
    with open("/proc/self/status") as f:
        host_bnd = status_field(f.read(), "CapBnd")
    st = proc_status(berth, "--privileged")
    eff = status_field(st, "CapEff")
    assert eff != DEFAULT_CAPS
    default = int(DEFAULT_CAPS, 16)
    assert int(eff, 16) & default == default and int(eff, 16) > default, eff
    assert eff == host_bnd, (eff, host_bnd)
    assert status_field(st, "Seccomp") == "0"


def test_kcore_masked(berth):
    p = berth.run(IMAGE, "cat", "/proc/kcore")
    assert p.returncode != 0 or p.stdout == "", describe(p)


def test_masked_and_readonly_proc_paths(berth):
    # /proc/sys is read-only; /sys/firmware masked (empty tmpfs)
    p = berth.run(IMAGE, "sh", "-c", "echo 1 > /proc/sys/kernel/domainname")
    assert p.returncode != 0, describe(p)
    out = berth.sh("ls -A /sys/firmware 2>/dev/null | wc -l")
    assert out.strip() == "0", out


def test_default_devices(berth):
    out = berth.sh("ls /dev")
    names = set(out.split())
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm"):
        assert dev in names, out
    assert "sda" not in names and "kmsg" not in names
    assert berth.sh("echo ok > /dev/null; head -c 4 /dev/zero | wc -c").strip() == "4"


# -- filesystem -----------------------------------------------------------------------------


def test_read_only_rootfs(berth):
    p = berth.run("--read-only", IMAGE, "touch", "/x")
    assert p.returncode != 0, describe(p)
    assert "Read-only file system" in p.stderr, describe(p)


def test_read_only_rootfs_makes_the_etc_files_read_only(berth):
    """As dockerd (recorded in crates/engine/tests/golden/dockerd/run/read-only.json): with
    --read-only, /etc/hosts, /etc/hostname and /etc/resolv.conf are bound read-only too."""
    for f in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        p = berth.run("--read-only", IMAGE, "sh", "-c", f"echo x >> {f}")
        assert p.returncode != 0, (f, describe(p))
        assert "Read-only file system" in p.stderr, describe(p)


def test_sysctls_are_applied_or_refused(berth, names):
    """--sysctl is applied (it was silently dropped), over dockerd's defaults for a container
    with its own network namespace; a parameter that is not namespaced is refused at create,
    and nothing is left behind."""
    p = berth.run("--sysctl", "net.ipv4.ip_forward=1", IMAGE, "cat",
                  "/proc/sys/net/ipv4/ip_forward",
                  "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert p.returncode == 0, describe(p)
    assert p.stdout.split() == ["1", "0"], describe(p)
    # The docker CLI checks this itself; the daemon must too (the SDK and raw API do not).
    import docker.errors
    before = berth.docker_ok("ps", "-aq")
    with pytest.raises(docker.errors.APIError) as err:
        berth.client.containers.create(IMAGE, name=names(), sysctls={"kernel.hostname": "x"})
    assert err.value.status_code == 400, err.value
    assert "sysctl 'kernel.hostname' is not allowed" in str(err.value), err.value
    assert berth.docker_ok("ps", "-aq") == before


def test_ipc_host_shares_the_hosts_dev_shm(berth):
    """--ipc host binds the host's /dev/shm, as dockerd (it was a private tmpfs)."""
    name = f"berth-ipc-{uuid.uuid4().hex[:8]}"
    try:
        p = berth.run("--ipc", "host", IMAGE, "sh", "-c", f"echo shared > /dev/shm/{name}")
        assert p.returncode == 0, describe(p)
        with open(f"/dev/shm/{name}") as f:
            assert f.read() == "shared\n"
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")


def test_uts_host_runs_with_the_hosts_hostname(berth):
    """--uts host: no hostname is set (runc refuses one without a private UTS namespace)."""
    p = berth.run("--uts", "host", IMAGE, "hostname")
    assert p.returncode == 0, describe(p)
    assert p.stdout.strip() == os.uname().nodename, describe(p)


def test_rootfs_writable_by_default_and_private(berth):
    assert berth.sh("echo data > /written; cat /written") == "data\n"
    # the next container does not see the previous container's write
    p = berth.run(IMAGE, "cat", "/written")
    assert p.returncode != 0, describe(p)


def test_bind_mount(berth, tmp_path):
    (tmp_path / "hello.txt").write_text("from host\n")
    os.chmod(tmp_path, 0o755)
    out = berth.sh("cat /data/hello.txt; echo back > /data/out.txt", "-v", f"{tmp_path}:/data")
    assert out == "from host\n"
    assert (tmp_path / "out.txt").read_text() == "back\n"


def test_bind_mount_read_only(berth, tmp_path):
    (tmp_path / "hello.txt").write_text("from host\n")
    p = berth.run("-v", f"{tmp_path}:/data:ro", IMAGE, "sh", "-c",
                  "cat /data/hello.txt && touch /data/nope")
    assert p.returncode != 0, describe(p)
    assert p.stdout == "from host\n"
    assert "Read-only file system" in p.stderr, describe(p)
    assert not (tmp_path / "nope").exists()


def test_tmpfs(berth):
    out = berth.sh("grep ' /scratch ' /proc/mounts; echo x > /scratch/f && cat /scratch/f",
                   "--tmpfs", "/scratch")
    assert re.search(r"^tmpfs /scratch tmpfs ", out, re.M), out
    assert out.endswith("x\n")


def test_dev_shm_and_etc_files(berth):
    out = berth.sh("grep ' /dev/shm ' /proc/mounts; cat /etc/hostname; cat /etc/hosts")
    assert "shm /dev/shm tmpfs" in out or " /dev/shm tmpfs" in out, out
    assert "localhost" in out, out


# -- process attributes ---------------------------------------------------------------------


def test_user(berth):
    out = berth.sh("id", "--user", "65534")
    assert "uid=65534" in out, out
    out = berth.sh("id -u; id -g", "--user", "nobody")
    assert out.split() == ["65534", "65534"], out
    out = berth.sh("id -u; id -g", "--user", "1234:5678")
    assert out.split() == ["1234", "5678"], out


def test_env(berth):
    out = berth.sh("echo $A; echo $PATH; echo $HOME; echo $HOSTNAME", "-e", "A=b")
    lines = out.splitlines()
    assert lines[0] == "b"
    assert lines[1] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines[2] == "/root"
    assert lines[3], out


def test_workdir(berth):
    assert berth.sh("pwd", "-w", "/tmp") == "/tmp\n"
    # a missing workdir is created
    assert berth.sh("pwd", "-w", "/does/not/exist") == "/does/not/exist\n"


def test_hostname(berth):
    assert berth.sh("hostname", "-h", "myhost") == "myhost\n"
    # default hostname: the short container ID
    assert re.match(r"^[0-9a-f]{12}$", berth.sh("hostname").strip())


def test_ulimit(berth):
    out = berth.sh("ulimit -n; ulimit -Hn", "--ulimit", "nofile=1024:1024")
    assert out.split() == ["1024", "1024"], out


# -- resource limits ------------------------------------------------------------------------


def test_memory_limit_oom(berth, names):
    name = names()
    p = berth.docker("run", "--name", name, "--memory", "32m", IMAGE, "sh", "-c",
                     "x=a; while true; do x=$x$x; done", timeout=60)
    assert p.returncode == 137, describe(p)
    oom = berth.inspect(name, "{{.State.OOMKilled}}")
    assert berth.inspect(name, "{{.State.ExitCode}}") == "137"
    if oom != "true":
        warnings.warn(f"State.OOMKilled is {oom!r} after an OOM kill (exit 137)")


def test_memory_limit_visible_in_cgroup(berth):
    out = berth.sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                   "cat /sys/fs/cgroup/memory.max", "--memory", "64m")
    assert out.strip() == str(64 * 1024 * 1024), out


def test_pids_limit(berth):
    p = berth.run("--pids-limit", "20", IMAGE, "sh", "-c",
                  "for i in $(seq 50); do sleep 2 & done; wait", timeout=60)
    text = (p.stdout + p.stderr).lower()
    assert "can't fork" in text or "resource temporarily unavailable" in text, describe(p)


# -- hostile files ------------------------------------------------------------------------------
# Files a container controls are hostile input to the daemon (issue 14, item 1).
#
# The daemon reads a container's /etc/passwd and /etc/group to resolve `--user` at start,
# for `exec -u` and for `cp -a`. A container can make those files a FIFO (an open would block
# a daemon worker for ever), a link to /dev/zero (a read without end), a huge sparse file, or
# a link to a host path (resolved naively, `--user` would then take the host's entry). Each
# trick must end in a prompt error or Docker's "unable to find user", with the daemon
# answering /_ping within 100 ms throughout and its memory bounded.

PING_LIMIT_S = 0.1
RSS_GROWTH_LIMIT_KIB = 64 * 1024
UID = ("grep", "-m1", "^Uid:", "/proc/self/status")


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


# -- bad input gets a clear error and changes nothing -------------------------------------------


def files_named(root: str, name: str) -> list[str]:
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if n == name:
                hits.append(os.path.join(dirpath, n))
    return hits


def layer_with(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    lb = make_image.LayerBuilder()
    lb.file("ok.txt", b"fine\n")
    for ti, data in entries:
        lb.raw(ti, data)
    return lb.finish()


def reg(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.REGTYPE
    ti.mode = 0o644
    return ti, data


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    ti.mode = 0o777
    return ti, None


def test_corrupt_archive(berth, tmp_path):
    before = berth.image_ids()
    bad = tmp_path / "random.tar"
    bad.write_bytes(os.urandom(64 * 1024))
    p = berth.docker("load", "-i", str(bad))
    assert p.returncode != 0, describe(p)
    assert p.stderr.strip(), describe(p)
    assert berth.image_ids() == before


def test_truncated_archive(berth, tmp_path):
    from conftest import ensure_busybox_archive

    before = berth.image_ids()
    data = ensure_busybox_archive().read_bytes()
    bad = tmp_path / "truncated.tar"
    bad.write_bytes(data[: len(data) // 2])
    p = berth.docker("load", "-i", str(bad))
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before


def test_layer_digest_mismatch(berth, tmp_path):
    """manifest.json names a layer blob whose content does not hash to its diff_id."""
    before = berth.image_ids()
    layer = layer_with([])
    arch = str(tmp_path / "mismatch.tar")
    cfg = make_image.image_config(["sha256:" + "0" * 64])
    make_image.write_docker_archive(arch, [layer], f"mismatch-{uuid.uuid4().hex[:6]}:x", cfg)
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before


@pytest.mark.parametrize("entry", ["../../{marker}", "../../../../../../../../../../tmp/{marker}",
                                   "a/../../../{marker}"])
def test_path_traversal_layer_refused(berth, tmp_path, entry):
    """A layer entry that climbs out of the layer is refused (dockerd 20.10 instead confines it
    to the layer root through a chroot; berth's rule is: bad input is an error, nothing changes).
    """
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    before = berth.image_ids()
    layer = layer_with([reg(entry.format(marker=marker))])
    arch = str(tmp_path / "evil.tar")
    tag = f"evil-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    # nothing written outside: not in the daemon's tree, not in /tmp, not at /
    assert files_named(berth.base, marker) == []
    assert not os.path.exists(f"/tmp/{marker}")
    assert not os.path.exists(f"/{marker}")
    assert berth.image_ids() == before
    assert tag.split(":")[0] not in berth.docker_ok("images", "--format", "{{.Repository}}")


def test_hardlink_escape_refused(berth, tmp_path):
    before = berth.image_ids()
    layer = layer_with([link("passwd-link", "../../../../../../../../etc/passwd",
                             tarfile.LNKTYPE)])
    arch = str(tmp_path / "hardlink.tar")
    make_image.write_docker_archive(arch, [layer], f"hardlink-{uuid.uuid4().hex[:6]}:latest")
    p = berth.docker("load", "-i", arch)
    assert p.returncode != 0, describe(p)
    assert berth.image_ids() == before
    assert files_named(berth.base, "passwd-link") == []


def test_symlink_escape_writes_nothing_outside(berth, tmp_path):
    """A symlink to / followed by a file through it: either refused, or kept inside the layer."""
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    layer = layer_with([link("esc", "../../../../../../../../../../tmp"),
                        reg(f"esc/{marker}")])
    arch = str(tmp_path / "symlink.tar")
    tag = f"symesc-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert not os.path.exists(f"/tmp/{marker}"), describe(p)
    if p.returncode == 0:
        berth.docker("rmi", tag)


def test_absolute_path_entry_stays_inside(berth, tmp_path):
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    layer = layer_with([reg(f"/tmp/{marker}")])
    arch = str(tmp_path / "abs.tar")
    tag = f"abs-{uuid.uuid4().hex[:6]}:latest"
    make_image.write_docker_archive(arch, [layer], tag)
    p = berth.docker("load", "-i", arch)
    assert not os.path.exists(f"/tmp/{marker}"), describe(p)
    if p.returncode == 0:
        berth.docker("rmi", tag)


def test_unknown_run_flag(berth):
    p = berth.docker("run", "--nosuchflag", IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "unknown flag" in p.stderr


def test_inspect_unknown_object(berth):
    p = berth.docker("inspect", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such object: nope" in p.stderr, describe(p)


def test_rm_unknown_container(berth):
    p = berth.docker("rm", "nope")
    assert p.returncode == 1, describe(p)
    assert "No such container: nope" in p.stderr, describe(p)


def test_invalid_container_name(berth):
    p = berth.docker("create", "--name", "bad/name!", IMAGE, "true")
    assert p.returncode != 0, describe(p)
    assert "Invalid container name" in p.stderr, describe(p)


def test_invalid_memory_value(berth):
    before = set(berth.docker_ok("ps", "-aq", "--no-trunc").split())
    p = berth.docker("run", "--rm", "--memory", "1k", IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "Minimum memory limit allowed is 6MB" in p.stderr, describe(p)
    assert set(berth.docker_ok("ps", "-aq", "--no-trunc").split()) == before


def test_bind_mount_missing_source(berth):
    before = set(berth.docker_ok("ps", "-aq", "--no-trunc").split())
    p = berth.docker("run", "--rm", "--mount",
                     f"type=bind,source=/nonexistent-{uuid.uuid4().hex[:6]},target=/data",
                     IMAGE, "true")
    assert p.returncode == 125, describe(p)
    assert "does not exist" in p.stderr, describe(p)
    assert set(berth.docker_ok("ps", "-aq", "--no-trunc").split()) == before


def test_archive_paths_with_a_nul_byte_are_the_clients_error(berth, names):
    # Found by fuzzing: these answered 500. No Linux path holds a NUL byte: 400, with a JSON
    # message, for stat (HEAD), get and put alike.
    c = names()
    berth.docker_ok("create", "--name", c, IMAGE, "true")
    for method, body in (("HEAD", None), ("GET", None), ("PUT", b"not a tar")):
        status, _, data = berth.request(method, f"/containers/{c}/archive?path=/a%00b", body=body)
        assert status == 400, (method, status, data)
        if method != "HEAD":
            assert "NUL" in json.loads(data)["message"], data
    status, _, data = berth.request("GET", "/containers/99999999999999999999/archive?path=/etc")
    assert status == 404, (status, data)


def test_an_oversized_json_body_is_413_and_never_held(daemon_factory):
    # A 256 MiB `POST /containers/create` was accepted and grew the daemon by over a GiB.
    d = daemon_factory(load=False)
    before = rss_kib(d.proc.pid)
    big = b'{"Image": "busybox", "Env": ["X=' + b"x" * (64 << 20) + b'"]}'
    status, _, data = d.request("POST", "/containers/create", body=big,
                                headers={"Content-Type": "application/json"}, timeout=120)
    assert status == 413, (status, data[:200])
    assert "max-json-body" in json.loads(data)["message"]
    grown = rss_kib(d.proc.pid) - before
    assert grown < 32 * 1024, f"daemon RSS grew by {grown} KiB"
    assert d.docker_ok("ps", "-aq").strip() == "", "a refused create left a container"
    assert d.ping()


def test_the_json_body_cap_is_configurable(daemon_factory):
    d = daemon_factory(start=False)
    d.extra_args = ["--max-json-body", "2k"]
    d.start()
    d.load_busybox()
    body = json.dumps({"Image": IMAGE, "Env": ["X=" + "x" * 4096]})
    status, _, data = d.request("POST", "/containers/create", body=body,
                                headers={"Content-Type": "application/json"})
    assert status == 413, (status, data)
    small = json.dumps({"Image": IMAGE, "Cmd": ["true"]})
    status, _, data = d.request("POST", "/containers/create", body=small,
                                headers={"Content-Type": "application/json"})
    assert status == 201, (status, data)


def test_a_layer_past_the_size_cap_is_refused_and_leaves_nothing(daemon_factory):
    # `max-layer-size` caps what one layer may expand to (a 2 MiB gzip layer can hold 2 GiB of
    # zeros); the busybox layer (about 2 MiB) is past a 1 MiB cap.
    from conftest import ensure_busybox_archive
    d = daemon_factory(start=False)
    d.extra_args = ["--max-layer-size", "1m"]
    d.start()
    p = d.docker("load", "-i", str(ensure_busybox_archive()), timeout=120)
    assert p.returncode != 0, describe(p)
    assert "max-layer-size" in p.stdout + p.stderr, describe(p)
    assert d.docker_ok("images", "-q").strip() == ""
    image_root = os.path.join(d.data_root, "image")
    for sub in ("layers", "tmp", "ingest"):
        left = os.listdir(os.path.join(image_root, sub)) if os.path.isdir(
            os.path.join(image_root, sub)) else []
        assert left == [], (sub, left)
    assert d.ping()


# ---------------------------------------------------------------------------------------------
# The rest of HostConfig: every field applied or refused by name, never dropped
# ---------------------------------------------------------------------------------------------


def _cgroup_file(controller: str, cid: str, name: str, parent: str = "berth") -> str:
    for base in (f"/sys/fs/cgroup/{controller}/{parent}/{cid}", f"/sys/fs/cgroup/{parent}/{cid}"):
        p = os.path.join(base, name)
        if os.path.exists(p):
            with open(p) as f:
                return f.read()
    raise AssertionError(f"no {name} for {cid} under {parent}")


def test_host_config_fields_are_applied_and_shown(daemon_factory):
    d = daemon_factory()
    cid = d.docker_ok(
        "run", "-d", "--group-add", "4242", "--group-add", "nogroup", "--oom-score-adj", "300",
        "--memory-swappiness", "10", "--device-cgroup-rule", "c 1:9 rwm",
        "--annotation", "org.example/k=v", "--cgroupns", "host", IMAGE, "sleep", "300").strip()
    try:
        gids = d.docker_ok("exec", cid, "id", "-G").split()
        assert "4242" in gids and "65534" in gids, gids
        assert d.docker_ok("exec", cid, "cat", "/proc/1/oom_score_adj").strip() == "300"
        # cgroupns host: the container sees its cgroup's real path
        assert f"/berth/{cid}" in d.docker_ok("exec", cid, "cat", "/proc/1/cgroup")
        if os.path.isdir("/sys/fs/cgroup/memory/berth"):  # v1 (this machine); v2 has none
            assert _cgroup_file("memory", cid, "memory.swappiness").strip() == "10"
            assert "c 1:9 rwm" in _cgroup_file("devices", cid, "devices.list")
        with open(os.path.join(d.exec_root, "containers", cid, "config.json")) as f:
            assert json.load(f)["annotations"] == {"org.example/k": "v"}
        hc = d.inspect(cid)["HostConfig"]
        assert hc["GroupAdd"] == ["4242", "nogroup"], hc["GroupAdd"]
        assert hc["OomScoreAdj"] == 300 and hc["MemorySwappiness"] == 10
        assert hc["DeviceCgroupRules"] == ["c 1:9 rwm"] and hc["CgroupnsMode"] == "host"
        assert hc["Annotations"] == {"org.example/k": "v"}
    finally:
        d.docker("rm", "-f", cid)
    # The default: a private cgroup namespace, shown as such.
    out = d.docker_ok("run", "--rm", IMAGE, "cat", "/proc/self/cgroup")
    assert "/berth/" not in out, out
    cid = d.docker_ok("create", IMAGE, "true").strip()
    assert d.inspect(cid, "{{.HostConfig.CgroupnsMode}}") == "private"
    d.docker_ok("rm", cid)


def test_cgroup_parent_places_the_container_and_stats_follow(daemon_factory):
    d = daemon_factory()
    parent = f"berth-test-parent-{uuid.uuid4().hex[:6]}"
    cid = d.docker_ok("run", "-d", "--cgroup-parent", parent, "-m", "64m", IMAGE,
                      "sleep", "300").strip()
    try:
        limit = _cgroup_file("memory", cid, "memory.limit_in_bytes", parent=parent) \
            if os.path.isdir("/sys/fs/cgroup/memory") else _cgroup_file("memory", cid, "memory.max", parent=parent)
        assert limit.strip() == str(64 << 20), limit
        stats = json.loads(d.docker_ok("stats", "--no-stream", "--format", "{{json .}}", cid))
        assert stats["MemUsage"].endswith("64MiB"), stats
    finally:
        d.docker("rm", "-f", cid)
        for ctl in os.listdir("/sys/fs/cgroup"):
            p = os.path.join("/sys/fs/cgroup", ctl, parent)
            if os.path.isdir(p):
                os.rmdir(p)


def test_oom_score_adj_below_the_runtimes_own_is_clamped_not_refused(daemon_factory):
    """Root lacks CAP_SYS_RESOURCE on some hosts (this one): lowering oom_score_adj is then
    clamped to the runtime's own, as containerd's restrict_oom_score_adj does."""
    d = daemon_factory()
    p = d.docker("run", "--rm", "--oom-score-adj", "-500", IMAGE, "cat", "/proc/self/oom_score_adj")
    assert p.returncode == 0, describe(p)
    assert -500 <= int(p.stdout) <= 0, p.stdout


def test_host_config_fields_berth_cannot_apply_are_refused_by_name(daemon_factory):
    d = daemon_factory()
    for flags, want in [
        (["--gpus", "all"], 'could not select device driver "" with capabilities: [[gpu]]'),
        (["--isolation", "hyperv"], "Invalid isolation"),
        (["--storage-opt", "size=1G"], "--storage-opt is supported only"),
        (["--link", "other:db"], "legacy links (--link) on the default bridge"),
        (["--volume-driver", "nfs"], 'plugin "nfs" not found'),
        (["--oom-score-adj", "2000"], "range for oom score adj is [-1000, 1000]"),
        (["--blkio-weight-device", "/dev/null:100"], "/dev/null is not a block device"),
        (["--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"],
         "cpu-rt-runtime cannot be higher than cpu-rt-period"),
    ]:
        p = d.docker("create", *flags, IMAGE, "true")
        assert p.returncode != 0 and want in p.stderr, (flags, describe(p))
    status, _, body = d.request("POST", "/containers/create", body=json.dumps(
        {"Image": IMAGE, "HostConfig": {"CgroupnsMode": "shared"}}),
        headers={"Content-Type": "application/json"})
    assert status == 400 and b"invalid cgroup namespace mode: shared" in body, body
    for hc, want in [({"CpuCount": 2}, b"CpuCount is only supported on Windows"),
                     # the docker CLI checks this one itself
                     ({"MemorySwappiness": 200}, b"valid memory swappiness range is 0-100"),
                     ({"DeviceCgroupRules": ["c 1:3 rwx"]}, b"invalid device cgroup rule format")]:
        status, _, body = d.request("POST", "/containers/create", body=json.dumps(
            {"Image": IMAGE, "HostConfig": hc}), headers={"Content-Type": "application/json"})
        assert status == 400 and want in body, (hc, body)
    assert d.docker_ok("ps", "-aq").strip() == "", "a refused create left a container"
    # A setting the host cannot apply fails the start with its name (no blkio weight without
    # BFQ/CFQ; where the file exists it is applied).
    p = d.docker("run", "--rm", "--blkio-weight", "300", IMAGE, "true")
    if not os.path.exists("/sys/fs/cgroup/blkio/blkio.weight") and \
            not os.path.exists("/sys/fs/cgroup/io.weight"):
        assert p.returncode != 0 and "blockIO.weight" in p.stderr, describe(p)
    else:
        assert p.returncode == 0, describe(p)
