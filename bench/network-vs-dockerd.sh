#!/usr/bin/env bash
# network-vs-dockerd.sh — bridge networking, berth vs dockerd side by side. OPT-IN: it starts a
# private dockerd WITH iptables (it sets the iptables FORWARD policy to DROP, as dockerd does;
# this script restores the previous policy when it ends) on bridge `docker0` with --bip
# 172.30.0.1/16, next to a private berth daemon on `berth0`.
#
#   bash bench/network-vs-dockerd.sh --yes [--runs N] [--mib N]
#
# Measures (traffic only to 127.0.0.1 and to the daemons' own containers):
#   1. `run --rm busybox true` on each daemon's default bridge (hyperfine);
#   2. network set-up cost per container: bridge vs `--network none` on the same daemon, and
#      a user-defined network (`network create benchnet`: embedded DNS) on each;
#   3. bulk TCP throughput from the host through a published port on 127.0.0.1 into a container.
# Needs docker.io installed (bench/run-vs-dockerd.sh installs it), hyperfine, python3.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
yes=0; runs=20; mib=200
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --runs) runs=$2; shift ;;
        --mib) mib=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$yes" = 1 ] || { sed -n '2,14p' "$0"; echo "Re-run with --yes to go ahead." >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "dockerd missing: run bench/run-vs-dockerd.sh --yes once" >&2; exit 1; }

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
berth=${BERTH_BIN:-$repo/target/release/berth}
image="$repo/tests/fixtures/out/busybox.tar"
work=/tmp/bn.$$
mkdir -p "$work"
bsock=$work/berth.sock; dsock=$work/docker.sock
policy=$(iptables -S FORWARD | awk '/^-P FORWARD/{print $3}')
log() { printf '\033[1m[net-bench]\033[0m %s\n' "$*" >&2; }
B() { DOCKER_HOST=unix://$bsock "$DOCKER_CLI" "$@"; }
D() { DOCKER_HOST=unix://$dsock "$DOCKER_CLI" "$@"; }
bpid=; dpid=
# dockerd leaves its chains and jumps behind when it stops: remove them (only dockerd's).
drop_docker_rules() {
    local t rule chain
    for t in filter nat; do
        iptables -t "$t" -S | grep -E '^-A .*(DOCKER|docker0)' | sed 's/^-A /-D /' | while read -r rule; do
            eval "iptables -t $t $rule" 2>/dev/null || true
        done
        for chain in $(iptables -t "$t" -S | awk '/^-N DOCKER/{print $2}'); do
            iptables -t "$t" -F "$chain" 2>/dev/null; iptables -t "$t" -X "$chain" 2>/dev/null
        done
    done
}
cleanup() {
    set +e
    for c in B D; do ids=$($c ps -aq 2>/dev/null); [ -n "$ids" ] && $c rm -f $ids >/dev/null 2>&1; done
    for c in B D; do $c network rm benchnet >/dev/null 2>&1; done
    [ -n "$bpid" ] && kill "$bpid"; [ -n "$dpid" ] && kill "$dpid"
    for p in $bpid $dpid; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done; done
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    ip link del docker0 2>/dev/null
    drop_docker_rules
    iptables -P FORWARD "${policy:-ACCEPT}"
    rm -rf "$work"
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 300); do DOCKER_HOST=unix://$1 "$DOCKER_CLI" version >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

"$berth" daemon --data-root "$work/berth" --exec-root "$work/berth-exec" -H "unix://$bsock" >"$work/berth.log" 2>&1 &
bpid=$!
dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$dsock" --bip 172.30.0.1/16 >"$work/dockerd.log" 2>&1 &
dpid=$!
wait_sock "$bsock"; wait_sock "$dsock"
B load -i "$image" >/dev/null; D load -i "$image" >/dev/null
log "FORWARD policy now: $(iptables -S FORWARD | head -1)"

log "1+2. run --rm busybox true, bridge and none ($runs runs each)"
B network create benchnet >/dev/null; D network create benchnet >/dev/null
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-markdown "$work/run.md" \
    -n "berth bridge (berth run)" "$berth -H unix://$bsock run --rm busybox true" \
    -n "berth user network (berth run)" "$berth -H unix://$bsock run --rm --network benchnet busybox true" \
    -n "berth bridge" "env DOCKER_HOST=unix://$bsock $DOCKER_CLI run --rm busybox true" \
    -n "berth none" "env DOCKER_HOST=unix://$bsock $DOCKER_CLI run --rm --network none busybox true" \
    -n "dockerd bridge" "env DOCKER_HOST=unix://$dsock $DOCKER_CLI run --rm busybox true" \
    -n "dockerd none" "env DOCKER_HOST=unix://$dsock $DOCKER_CLI run --rm --network none busybox true" \
    -n "dockerd user network" "env DOCKER_HOST=unix://$dsock $DOCKER_CLI run --rm --network benchnet busybox true" >&2

throughput() { # $1: B or D; prints MiB/s from the host into a container through 127.0.0.1
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    $1 run -d --name "sink-$1" -p "127.0.0.1:$port:5001" busybox sh -c 'nc -l -p 5001 > /dev/null' >/dev/null
    sleep 1
    python3 - "$port" "$mib" <<'PY'
import socket, sys, time
port, mib = int(sys.argv[1]), int(sys.argv[2])
chunk = b"\0" * (1 << 20)
for _ in range(50):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5); break
    except OSError:
        time.sleep(0.1)
t0 = time.monotonic()
for _ in range(mib):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
print(f"{mib / (time.monotonic() - t0):.0f}")
PY
    $1 rm -f "sink-$1" >/dev/null
}
log "3. throughput through a published port ($mib MiB)"
bt=$(throughput B); dt=$(throughput D)
{
    echo "# bridge networking: berth vs dockerd — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r); dockerd: $(dockerd --version)"
    echo
    cat "$work/run.md"
    echo
    echo "| ${mib} MiB from the host into a container via -p 127.0.0.1 | berth | dockerd |"
    echo "|---|---:|---:|"
    echo "| MiB/s | $bt | $dt |"
}
