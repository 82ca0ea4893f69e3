#!/usr/bin/env bash
# Day-to-day operations, berth vs dockerd side by side. OPT-IN: it installs and starts Docker.
#
#   bash bench/ops-vs-dockerd.sh --yes [--containers N] [--running N] [--out DIR]
#
# Measures, on a private dockerd (--iptables=false --bridge=none) and a private berth daemon
# loaded with the same busybox archive:
#   1. `docker ps -a` and `docker ps -aq` with N containers (default 1000: --running of them
#      running `sleep`, the rest created) — hyperfine;
#   2. `docker stats --no-stream` across the running containers (default 100) — hyperfine;
#   3. event delivery latency: 100 concurrent `run -d sh -c 'sleep 1'`; for each container,
#      the time from its exit (State.FinishedAt) to the moment a client subscribed to
#      /events receives its `die` (bench/event_latency.py) — median, p95, max.
# Results: $out/ops.md. Both daemons and their state are removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
yes=0; total=1000; running=100; out=/tmp/berth-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --containers) total=$2; shift ;;
        --running) running=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$yes" != 1 ]; then
    sed -n '2,16p' "$0"; echo
    echo "This installs/starts Docker on this machine. Re-run with --yes to go ahead." >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
berth=${BERTH_BIN:-$repo/target/release/berth}
image="$repo/tests/fixtures/out/busybox.tar"
work=/tmp/bo.$$
mkdir -p "$work" "$out"
results="$out/ops.md"
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

SKIP_BUILD=${SKIP_BUILD:-0} bash scripts/setup.sh
if ! command -v dockerd >/dev/null 2>&1; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

berth_sock=$work/berth.sock; docker_sock=$work/docker.sock
dockerd_pid=; berthd_pid=
B() { DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" "$@"; }
D() { DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" "$@"; }
rm_all() { local ids; ids=$("$1" ps -aq); [ -z "$ids" ] || echo "$ids" | xargs -r -n 50 "$DOCKER_CLI" -H "unix://$2" rm -f >/dev/null; }
cleanup() {
    set +e
    log "cleaning up"
    [ -S "$berth_sock" ] && rm_all B "$berth_sock"
    [ -S "$docker_sock" ] && rm_all D "$docker_sock"
    [ -n "$berthd_pid" ] && kill "$berthd_pid" 2>/dev/null
    [ -n "$dockerd_pid" ] && kill "$dockerd_pid" 2>/dev/null
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
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$docker_sock" --iptables=false --ip6tables=false --bridge=none \
    >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
"$berth" daemon --data-root "$work/berth" --exec-root "$work/berth-exec" -H "unix://$berth_sock" \
    --bridge none >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_sock "$docker_sock" "$dockerd_pid" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_sock "$berth_sock" "$berthd_pid" || { tail -20 "$work/berth.log"; exit 1; }
B load -i "$image" >/dev/null
D load -i "$image" >/dev/null

{
    echo "# Operations: berth vs dockerd — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "dockerd: $(dockerd --version); berth: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
} >"$results"

# --- 3 first: event latency on otherwise empty daemons ----------------------------------------
for who in berth dockerd; do
    sock=$berth_sock; [ "$who" = dockerd ] && sock=$docker_sock
    log "event latency on $who (100 concurrent runs)"
    python3 bench/event_latency.py "unix://$sock" 100 >"$work/lat-$who.txt"
    if [ "$who" = berth ]; then rm_all B "$berth_sock"; else rm_all D "$docker_sock"; fi
done
{
    echo "## Exit → \`die\` event received, 100 concurrent \`run -d\` (ms)"
    echo
    echo "| | median | p95 | max |"
    echo "|---|---:|---:|---:|"
    echo "| berth | $(cat "$work/lat-berth.txt") |"
    echo "| dockerd | $(cat "$work/lat-dockerd.txt") |"
    echo
} >>"$results"

# --- containers for ps / stats ------------------------------------------------------------------
log "creating $total containers on each ($running running)"
for who in B D; do
    seq "$running" | xargs -P 8 -I{} "$DOCKER_CLI" -H "unix://$([ $who = B ] && echo "$berth_sock" || echo "$docker_sock")" \
        run -d --network none busybox sleep 3600 >/dev/null
    seq $(( total - running )) | xargs -P 8 -I{} "$DOCKER_CLI" -H "unix://$([ $who = B ] && echo "$berth_sock" || echo "$docker_sock")" \
        create --network none busybox true >/dev/null
done
log "containers: berth $(B ps -aq | wc -l), dockerd $(D ps -aq | wc -l)"
log "hyperfine: ps -a / ps -aq / stats --no-stream"
hyperfine --warmup 2 --runs 10 --style basic --export-markdown "$work/ps.md" \
    -n "berth ps -a" "DOCKER_HOST=unix://$berth_sock $DOCKER_CLI ps -a" \
    -n "dockerd ps -a" "DOCKER_HOST=unix://$docker_sock $DOCKER_CLI ps -a" \
    -n "berth ps -aq" "DOCKER_HOST=unix://$berth_sock $DOCKER_CLI ps -aq" \
    -n "dockerd ps -aq" "DOCKER_HOST=unix://$docker_sock $DOCKER_CLI ps -aq"
hyperfine --warmup 1 --runs 5 --style basic --export-markdown "$work/stats.md" \
    -n "berth stats --no-stream" "DOCKER_HOST=unix://$berth_sock $DOCKER_CLI stats --no-stream" \
    -n "dockerd stats --no-stream" "DOCKER_HOST=unix://$docker_sock $DOCKER_CLI stats --no-stream"
{
    echo "## \`ps\` with $total containers ($running running)"
    echo
    cat "$work/ps.md"
    echo
    echo "## \`stats --no-stream\` across $running running containers"
    echo
    cat "$work/stats.md"
    echo
} >>"$results"
log "results in $results"
cat "$results"
