"""What a process sees inside a berth container: Docker's defaults and the run flags."""

from __future__ import annotations

import ipaddress
import json

import os
import re
import warnings

from conftest import DEFAULT_CAPS, IMAGE, describe


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


def test_network_none_only_loopback(berth):
    out = berth.sh("cat /proc/net/dev", "--network", "none")
    ifaces = [ln.split(":")[0].strip() for ln in out.splitlines()[2:] if ":" in ln]
    assert ifaces == ["lo"], out


def test_default_network_is_berths_bridge(berth):
    # Docker's default: the container has its own eth0 on the daemon's bridge, never the host's.
    out = berth.sh("cat /proc/net/dev; ip -o -4 addr show eth0")
    ifaces = [ln.split(":")[0].strip() for ln in out.splitlines()[2:] if ":" in ln and "inet" not in ln]
    assert sorted(ifaces) == ["eth0", "lo"], out
    subnet = json.loads(berth.docker_ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Subnet"]
    addr = out.split("inet ")[1].split()[0]
    assert ipaddress.ip_interface(addr).ip in ipaddress.ip_network(subnet), (addr, subnet)


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
