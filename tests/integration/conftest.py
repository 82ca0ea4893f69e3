"""Integration tests for berth, driven through the real clients.

One isolated berth daemon serves the whole session (`berth` fixture); tests that need to kill or
restart a daemon make their own with the `daemon_factory` fixture. Every daemon gets its own
data root, exec root and socket under a short /tmp/bt.XXXXXX directory (unix socket paths are
limited to 108 bytes, and the shims put their sockets below the exec root).

Helpers and fixtures that several test files use live here too (`wait_for`, `free_port`,
`legacy_build`, `berth_ok`, the `Registry` server and its `registry` fixture); the test files
import what they need with `from conftest import ...`.

These tests need root, runc, the docker CLI and the release binaries; a missing prerequisite is
a test FAILURE, never a skip (the CI must not go green by skipping).

Environment overrides: BERTH_BIN (berth binary), DOCKER_BIN (docker CLI),
BERTH_TEST_IMAGE (busybox docker-archive), BERTH_TEST_KEEP=1 (keep the daemon dirs),
BERTH_TEST_BUDGET_S (wall-clock budget of the whole suite, default 1200).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

BERTH = Path(os.environ.get("BERTH_BIN", REPO / "target" / "release" / "berth"))
SHIM = BERTH.parent / "berth-shim"
# `berth daemon` and `berth runtime` exec these, found next to berth (the client links neither)
BERTHD = BERTH.parent / "berthd"
RUNTIME = BERTH.parent / "berth-runtime"
DOCKER = os.environ.get("DOCKER_BIN", "/usr/local/bin/docker")
BUSYBOX_ARCHIVE = Path(os.environ.get("BERTH_TEST_IMAGE",
                                      REPO / "tests" / "fixtures" / "out" / "busybox.tar"))
IMAGE = "busybox"
DEFAULT_TIMEOUT = 30  # seconds for one client command; a healthy run takes well under 2
# Wall-clock budget for the whole suite: past it, remaining tests fail at once (keeps CI bounded
# when the daemon hangs).
SUITE_BUDGET_S = float(os.environ.get("BERTH_TEST_BUDGET_S", "1200"))
_SESSION_START = time.monotonic()
DEFAULT_CAPS = "00000000a80425fb"  # Docker's default capability set, as CapEff


# ---------------------------------------------------------------------------------------------
# Prerequisites: fail loudly
# ---------------------------------------------------------------------------------------------


def check_prerequisites() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("the integration tests must run as root")
    if not BERTH.is_file():
        problems.append(f"{BERTH} missing (cargo build --release)")
    if not SHIM.is_file():
        problems.append(f"{SHIM} missing (cargo build --release; berth-shim sits next to berth)")
    if not BERTHD.is_file():
        problems.append(f"{BERTHD} missing (cargo build --release --workspace; `berth daemon` "
                        "runs the berthd next to berth)")
    if not (Path(DOCKER).is_file() and os.access(DOCKER, os.X_OK)):
        problems.append(f"docker CLI {DOCKER} missing")
    if shutil.which("runc") is None:
        problems.append("runc not in PATH (apt-get install runc)")
    if not Path("/usr/bin/tini-static").is_file():
        problems.append("/usr/bin/tini-static missing, needed by --init (apt-get install tini)")
    if not BUSYBOX_ARCHIVE.is_file() and not Path("/bin/busybox").is_file():
        problems.append("busybox-static missing (/bin/busybox) to build the test image")
    if problems:
        pytest.fail("integration prerequisites missing:\n  " + "\n  ".join(problems),
                    pytrace=False)


def ensure_busybox_archive() -> Path:
    if not BUSYBOX_ARCHIVE.is_file():
        import make_image  # scripts/make_image.py

        BUSYBOX_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
        layer = make_image.busybox_layer("/bin/busybox")
        make_image.write_docker_archive(str(BUSYBOX_ARCHIVE), [layer], "busybox:latest")
    return BUSYBOX_ARCHIVE


# ---------------------------------------------------------------------------------------------
# HTTP over a unix socket (for /_ping and raw requests)
# ---------------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_request(sock_path: str, method: str, path: str, body: bytes | str | None = None,
                 headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """One HTTP request over the unix socket; returns (status, headers, body)."""
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Process and mount inspection helpers
# ---------------------------------------------------------------------------------------------


def mounts_under(path: str) -> list[str]:
    """Mount points at or below `path` (from /proc/self/mountinfo), deepest first."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(set(out), key=lambda p: p.count("/"), reverse=True)


def mountinfo_lines_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if text in line]


def pids_referencing(path: str, exclude: set[int] | None = None) -> list[int]:
    """Processes whose cmdline, cwd, exe or open files mention `path`."""
    exclude = set(exclude or ()) | {os.getpid()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in exclude:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            hit = path in cmdline
            if not hit:
                for link in ("cwd", "exe"):
                    try:
                        if os.readlink(f"/proc/{pid}/{link}").startswith(path):
                            hit = True
                    except OSError:
                        pass
            if not hit:
                fd_dir = f"/proc/{pid}/fd"
                for fd in os.listdir(fd_dir):
                    try:
                        if os.readlink(f"{fd_dir}/{fd}").startswith(path):
                            hit = True
                            break
                    except OSError:
                        pass
            if hit:
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def descendants(pid: int) -> set[int]:
    """All live descendants of `pid` (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def shim_pids() -> list[int]:
    """All berth-shim processes on the machine, with their exe or argv[0]."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            exe = ""
            try:
                exe = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                pass
            if os.path.basename(argv0) == "berth-shim" or os.path.basename(exe) == "berth-shim":
                out.append(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def run_cmd(argv: list[str], env: dict | None = None, input: str | bytes | None = None,
            timeout: float = DEFAULT_TIMEOUT, text: bool = True) -> subprocess.CompletedProcess:
    """Run a command with a timeout; a timeout is a test failure with whatever was printed."""
    try:
        return subprocess.run(argv, env=env, input=input, capture_output=True, text=text,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        def s(x):
            return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
        pytest.fail(f"timed out after {timeout}s: {' '.join(map(str, argv))}\n"
                    f"stdout: {s(e.stdout)}\nstderr: {s(e.stderr)}", pytrace=False)


def _clip(x, limit: int = 2000) -> str:
    r = repr(x)
    return r if len(r) <= limit else "..." + r[-limit:]


def describe(p: subprocess.CompletedProcess) -> str:
    return (f"command: {' '.join(map(str, p.args))}\nexit: {p.returncode}\n"
            f"stdout: {_clip(p.stdout)}\nstderr: {_clip(p.stderr)}")


def wait_for(pred, timeout: float = 15, interval: float = 0.2, what: str | None = None):
    """Poll `pred` until it returns something true, and return that. Past `timeout`: with
    `what`, fail naming it; without, return pred()'s last (false) answer for the caller to
    assert on with its own message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    v = pred()
    if v or what is None:
        return v
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def legacy_build(berth, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`docker build` with the classic builder (DOCKER_BUILDKIT=0) against `berth`."""
    env = dict(berth.env, DOCKER_BUILDKIT="0")
    return run_cmd([DOCKER, "build", *map(str, args)], env=env, timeout=timeout)


def berth_ok(d, *args, timeout=120) -> str:
    """Run the berth CLI against daemon `d`, assert exit 0, return stdout."""
    p = d.berth_cli(*args, timeout=timeout)
    assert p.returncode == 0, describe(p)
    return p.stdout


# ---------------------------------------------------------------------------------------------
# A berth daemon instance
# ---------------------------------------------------------------------------------------------

ALL_DAEMONS: list["Daemon"] = []


class Daemon:
    """An isolated `berth daemon` (own data root, exec root and socket) plus client helpers."""

    def __init__(self, base: str | None = None, bridge: bool = True):
        # Only one daemon at a time may own berth's bridge and iptables chains on a host:
        # private daemons run with `--bridge none`.
        self.bridge = bridge
        self.base = base or f"/tmp/bt.{secrets.token_hex(3)}"
        os.makedirs(self.base, exist_ok=True)
        self.data_root = os.path.join(self.base, "data")
        self.exec_root = os.path.join(self.base, "run")
        self.sock = os.path.join(self.base, "berth.sock")
        self.host = "unix://" + self.sock
        self.log_path = os.path.join(self.base, "daemon.log")
        self.docker_config = os.path.join(self.base, "docker-config")
        os.makedirs(self.docker_config, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self._client = None
        # Further `berth daemon` flags for this instance.
        self.extra_args: list[str] = []
        # Whether argv names the unix socket with -H (off when daemon.json's `hosts` does).
        self.host_flag = True
        # A command the daemon is started under (e.g. a socket-activation launcher that
        # execs the rest of its arguments).
        self.wrapper: list[str] = []
        assert len(self.sock) < 100
        ALL_DAEMONS.append(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def argv(self, **overrides) -> list[str]:
        return [str(BERTH), "daemon",
                "--data-root", overrides.get("data_root", self.data_root),
                "--exec-root", overrides.get("exec_root", self.exec_root)] + \
            (["-H", "unix://" + overrides.get("sock", self.sock)] if self.host_flag else []) + \
            ([] if self.bridge else ["--bridge", "none"]) + self.extra_args

    def start(self, timeout: float = 30) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.wrapper + self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, RUST_BACKTRACE="1"))
        log.close()
        self.wait_ready(timeout)
        return self

    def ping(self) -> bool:
        try:
            status, _, body = http_request(self.sock, "GET", "/_ping", timeout=2)
            return status == 200 and body.strip() == b"OK"
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"berth daemon exited with {self.proc.returncode} during start-up\n"
                            f"{self.log_tail()}", pytrace=False)
            if self.ping():
                return
            time.sleep(0.1)
        pytest.fail(f"berth daemon not answering GET /_ping on {self.sock} after {timeout}s\n"
                    f"{self.log_tail()}", pytrace=False)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the daemon (its containers and shims must survive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no daemon log)"
        return "--- berth daemon log (tail) ---\n" + "\n".join(data[-lines:])

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def cleanup(self) -> None:
        """Stop everything this instance started and remove its directory."""
        if self.running():
            try:
                ids = self.docker("ps", "-aq", timeout=20).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, timeout=60)
                # User networks' bridges would outlive the daemon and its data root.
                self.docker("network", "prune", "-f", timeout=60)
            except BaseException:  # pytest.fail in a helper must not stop the clean-up
                pass
        self.stop()
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        runc_root = os.path.join(self.exec_root, "runc")
        if os.path.isdir(runc_root):
            p = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                               text=True, timeout=30)
            for cid in p.stdout.split():
                subprocess.run(["runc", "--root", runc_root, "delete", "-f", cid],
                               capture_output=True, timeout=30)
        for pid in pids_referencing(self.base):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        for mp in mounts_under(self.base):
            if subprocess.run(["umount", "-R", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)
        if os.environ.get("BERTH_TEST_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    # -- clients -----------------------------------------------------------------------------

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=self.docker_config,
                   DOCKER_CLI_HINTS="false", DOCKER_CLI_EXPERIMENTAL="disabled")
        for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                  "DOCKER_API_VERSION"):
            env.pop(k, None)
        return env

    def docker(self, *args, input=None, timeout: float = DEFAULT_TIMEOUT,
               text: bool = True) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this daemon."""
        return run_cmd([DOCKER, *map(str, args)], env=self.env, input=input, timeout=timeout,
                       text=text)

    def berth_cli(self, *args, input=None, timeout: float = DEFAULT_TIMEOUT,
                  text: bool = True) -> subprocess.CompletedProcess:
        """Run the berth CLI against this daemon (DOCKER_HOST set)."""
        return run_cmd([str(BERTH), *map(str, args)], env=self.env, input=input,
                       timeout=timeout, text=text)

    def docker_ok(self, *args, **kw) -> str:
        """Run docker, assert exit 0, return stdout."""
        p = self.docker(*args, **kw)
        assert p.returncode == 0, describe(p)
        return p.stdout

    def run(self, *args, timeout: float = DEFAULT_TIMEOUT,
            input=None) -> subprocess.CompletedProcess:
        """`docker run --rm ARGS` (flags then image and command, as given)."""
        return self.docker("run", "--rm", *args, timeout=timeout, input=input)

    def sh(self, script: str, *flags, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run `sh -c SCRIPT` in a fresh busybox container; assert exit 0; return stdout."""
        p = self.run(*flags, IMAGE, "sh", "-c", script, timeout=timeout)
        assert p.returncode == 0, describe(p)
        return p.stdout

    def load_busybox(self) -> None:
        p = self.docker("load", "-i", str(ensure_busybox_archive()), timeout=120)
        assert p.returncode == 0, "docker load of the busybox archive failed\n" + describe(p)

    def inspect(self, obj: str, fmt: str | None = None):
        if fmt is not None:
            return self.docker_ok("inspect", "-f", fmt, obj).strip()
        return json.loads(self.docker_ok("inspect", obj))[0]

    @property
    def client(self):
        """docker SDK client for this daemon."""
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.host, timeout=60)
        return self._client

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30):
        return http_request(self.sock, method, path, body=body, headers=headers,
                            timeout=timeout)

    def image_ids(self) -> set[str]:
        return set(self.docker_ok("images", "-q", "--no-trunc").split())


# ---------------------------------------------------------------------------------------------
# A local registry (Debian's docker-registry, distribution 2.8) for the pull/push tests
# ---------------------------------------------------------------------------------------------

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class Registry:
    """A docker-registry process with its own storage and config."""

    def __init__(self, auth: dict | None = None, tls: tuple[str, str] | None = None,
                 token: dict | None = None):
        self.dir = tempfile.mkdtemp(prefix="berth-reg.")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        lines = [
            "version: 0.1",
            "log:", "  level: warn",
            "storage:", "  filesystem:", f"    rootdirectory: {self.dir}/data",
            "  delete:", "    enabled: true",
            "http:", f"  addr: 127.0.0.1:{self.port}",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if auth:
            lines += ["auth:", "  htpasswd:", "    realm: basic-realm",
                      f"    path: {auth['htpasswd']}"]
        if token:
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the registry did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prerequisites():
    check_prerequisites()
    ensure_busybox_archive()


@pytest.fixture(scope="session")
def berth(prerequisites):
    """The shared berth daemon, with busybox:latest loaded through the docker CLI.

    BERTH_TEST_BRIDGE=0 runs it with `--bridge none`, so that several test sessions can run
    side by side on one host while developing (only one daemon may own berth's bridge); the
    networking tests need the bridge."""
    d = Daemon(bridge=os.environ.get("BERTH_TEST_BRIDGE", "1") != "0")
    try:
        d.start()
        d.load_busybox()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def daemon_factory(prerequisites):
    """Make extra, private daemons (for kill/restart tests). Cleaned up after the test."""
    made: list[Daemon] = []

    def make(start: bool = True, load: bool = True) -> Daemon:
        d = Daemon(bridge=False)
        made.append(d)
        if start:
            d.start()
            if load:
                d.load_busybox()
        return d

    yield make
    for d in made:
        d.cleanup()


@pytest.fixture
def daemon(daemon_factory):
    """A private daemon with busybox loaded (the registry tests)."""
    return daemon_factory()


@pytest.fixture
def registry():
    """A plain-HTTP docker-registry on 127.0.0.1, stopped after the test."""
    r = Registry()
    yield r
    r.stop()


@pytest.fixture
def names(request, berth):
    """names() -> a fresh container name; every name handed out is `docker rm -f`'d at the end."""
    handed: list[str] = []
    stem = request.node.name.replace("[", "-").replace("]", "")
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:30]

    def new() -> str:
        n = f"t-{stem}-{uuid.uuid4().hex[:8]}"
        handed.append(n)
        return n

    yield new
    if handed and berth.running():
        berth.docker("rm", "-f", *handed, timeout=60)


def pytest_runtest_setup(item):
    elapsed = time.monotonic() - _SESSION_START
    if elapsed > SUITE_BUDGET_S:
        pytest.fail(f"suite time budget exceeded ({elapsed:.0f}s > {SUITE_BUDGET_S:.0f}s; "
                    "BERTH_TEST_BUDGET_S): not running this test", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach what the daemons logged during the test."""
    if call.when == "setup":
        item._berth_log_marks = {id(d): d.log_size() for d in ALL_DAEMONS}
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        marks = getattr(item, "_berth_log_marks", {})
        for d in ALL_DAEMONS:
            if os.path.exists(d.log_path):
                rep.sections.append((f"berth daemon {d.base}",
                                     d.log_tail(80, since=marks.get(id(d), 0))))
