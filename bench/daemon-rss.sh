#!/usr/bin/env bash
# Daemon memory under hostile or slow clients: berth next to dockerd, side by side in one run.
#
#   bash bench/daemon-rss.sh [--out DIR]
#
# Needs dockerd (Debian's docker.io; bench/run-vs-dockerd.sh --yes installs it) and the release
# build. Starts a private dockerd (--bridge=none --iptables=false) and a private berth daemon,
# loads tests/fixtures/out/busybox.tar into both, then for each daemon, sampling its RSS every
# 20 ms (/proc/PID/status VmRSS):
#   1. idle RSS;
#   2. body: POST /containers/create with a 256 MiB JSON body: the status, the peak RSS during
#      the request and the RSS 3 s after;
#   3. attach: `docker run --rm busybox seq 1 3000000 | (sleep 6; wc -l)`: the lines delivered,
#      the peak RSS during the run and the RSS 3 s after.
# Results: $out/daemon-rss.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=/tmp/berth-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "dockerd missing: bash bench/run-vs-dockerd.sh --yes installs it" >&2; exit 1; }
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
berth=${BERTH_BIN:-$repo/target/release/berth}
image="$repo/tests/fixtures/out/busybox.tar"
[ -f "$image" ] || bash "$repo/scripts/make-busybox-image.sh" "$image"
work=/tmp/rss.$$
mkdir -p "$work" "$out"
berth_sock=$work/berth.sock
docker_sock=$work/docker.sock
dockerd_pid=
berthd_pid=

cleanup() {
    set +e
    for s in "$berth_sock" "$docker_sock"; do
        [ -S "$s" ] || continue
        ids=$(DOCKER_HOST=unix://$s "$DOCKER_CLI" ps -aq)
        [ -n "$ids" ] && DOCKER_HOST=unix://$s "$DOCKER_CLI" rm -f $ids >/dev/null
    done
    for p in $berthd_pid $dockerd_pid; do kill "$p" 2>/dev/null; done
    for p in $berthd_pid $dockerd_pid; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    done
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

wait_sock() {
    for _ in $(seq 300); do
        DOCKER_HOST=unix://$1 "$DOCKER_CLI" version >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { echo "daemon for $1 died" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$docker_sock" --iptables=false --ip6tables=false --bridge=none \
    >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
# `berth daemon` execs berthd in place: the pid is the daemon's.
"$berth" daemon --data-root "$work/berth" --exec-root "$work/berth-exec" -H "unix://$berth_sock" \
    --bridge none >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_sock "$docker_sock" "$dockerd_pid" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_sock "$berth_sock" "$berthd_pid" || { tail -20 "$work/berth.log"; exit 1; }
DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" load -i "$image" >/dev/null
DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" load -i "$image" >/dev/null

python3 - "$out/daemon-rss.md" "$DOCKER_CLI" "berth:$berth_sock:$berthd_pid" \
    "dockerd:$docker_sock:$dockerd_pid" "$(dockerd --version)" "$(git -C "$repo" rev-parse --short HEAD)" <<'EOF'
import http.client, os, socket, subprocess, sys, threading, time

out, cli, *daemons, dockerd_version, head = sys.argv[1:]

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

class Peak:
    """Samples a pid's RSS every 20 ms while in the with-block."""
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
    def __enter__(self):
        def run():
            while not self.stop.is_set():
                self.peak = max(self.peak, rss_kib(self.pid))
                time.sleep(0.02)
        self.t = threading.Thread(target=run); self.t.start(); return self
    def __exit__(self, *a):
        self.stop.set(); self.t.join()

class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=300); self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(self.path)

def big_create(sock):
    pad = "x" * (256 << 20)
    body = ('{"Image":"busybox","Cmd":["true"],"Env":["PAD=' + pad + '"]}').encode()
    c = Unix(sock)
    try:
        c.request("POST", "/containers/create", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse(); r.read(); return r.status
    except OSError as e:
        return f"connection closed ({e.__class__.__name__})"
    finally:
        c.close()

mib = lambda k: f"{k / 1024:.1f}"
rows = []
for spec in daemons:
    name, sock, pid = spec.split(":")
    pid = int(pid)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    time.sleep(2)
    idle = rss_kib(pid)
    with Peak(pid) as p:
        status = big_create(sock)
    time.sleep(3)
    body_after = rss_kib(pid)
    # remove what a 201 made
    subprocess.run(f"{cli} rm -f $({cli} ps -aq) >/dev/null 2>&1", shell=True, env=env)
    with Peak(pid) as a:
        lines = subprocess.run(f"{cli} run --rm busybox seq 1 3000000 | (sleep 6; wc -l)",
                               shell=True, env=env, capture_output=True, text=True).stdout.strip()
    time.sleep(3)
    attach_after = rss_kib(pid)
    rows.append((name, mib(idle), status, mib(p.peak), mib(body_after), lines, mib(a.peak),
                 mib(attach_after)))

with open(out, "w") as f:
    f.write(f"daemon RSS (MiB), berth {head} vs {dockerd_version}, {time.strftime('%Y-%m-%d')}, "
            f"{os.uname().nodename}\n\n")
    f.write("| daemon | idle | 256 MiB create: status | peak | after 3 s | slow attach: lines "
            "delivered of 3000000 | peak | after 3 s |\n|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write("| " + " | ".join(map(str, r)) + " |\n")
print(open(out).read())
EOF
