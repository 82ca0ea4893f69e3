#!/usr/bin/env bash
# berth vs dockerd, side by side on this machine. OPT-IN: it installs and starts Docker.
#
#   bash bench/run-vs-dockerd.sh --yes [--runs N] [--parallel N] [--out DIR]
#
# What it does (see bench/README.md):
#   1. installs Debian's docker.io (dockerd 20.10 + containerd) if dockerd is missing, with a
#      policy-rc.d in place so that apt does not start the service;
#   2. starts a private dockerd (--iptables=false --ip6tables=false --bridge=none, so the host's
#      iptables FORWARD policy and NAT rules are left alone) and a private berth daemon, each on
#      its own socket / data root below $work;
#   3. loads the same busybox docker-archive (tests/fixtures/out/busybox.tar) into both;
#   4. measures: `run --rm --network none busybox true` latency (hyperfine, side by side);
#      idle daemon RSS; RSS with 10 `sleep` containers (daemon and per-container shim);
#      wall time and memory for 100 parallel `run -d`;
#   5. stops both daemons and removes their state. Results: $out/results.md (+ hyperfine JSON).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

yes=0
runs=30
parallel=100
out=/tmp/berth-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --runs) runs=$2; shift ;;
        --parallel) parallel=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$yes" != 1 ]; then
    sed -n '2,20p' "$0"
    echo
    echo "This installs/starts Docker on this machine. Re-run with --yes to go ahead." >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
berth=${BERTH_BIN:-$repo/target/release/berth}
image="$repo/tests/fixtures/out/busybox.tar"
work=/tmp/bb.$$
mkdir -p "$work" "$out"
results="$out/results.md"

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

SKIP_BUILD=${SKIP_BUILD:-0} bash scripts/setup.sh

# --- Docker ---------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io (dockerd, containerd) with service start-up disabled"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi

berth_sock=$work/berth.sock
docker_sock=$work/docker.sock
dockerd_pid=
berthd_pid=

cleanup() {
    set +e
    log "cleaning up"
    if [ -S "$berth_sock" ]; then
        ids=$(DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" ps -aq)
        [ -n "$ids" ] && DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" rm -f $ids >/dev/null
    fi
    if [ -S "$docker_sock" ]; then
        ids=$(DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" ps -aq)
        [ -n "$ids" ] && DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" rm -f $ids >/dev/null
    fi
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
    local sock=$1 pid=$2
    for _ in $(seq 300); do
        DOCKER_HOST=unix://$sock "$DOCKER_CLI" version >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { echo "daemon for $sock died" >&2; return 1; }
        sleep 0.2
    done
    echo "daemon for $sock did not come up" >&2
    return 1
}

log "starting private dockerd"
dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$docker_sock" --iptables=false --ip6tables=false --bridge=none \
    >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
log "starting private berth daemon"
"$berth" daemon --data-root "$work/berth" --exec-root "$work/berth-exec" -H "unix://$berth_sock" \
    >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_sock "$docker_sock" "$dockerd_pid" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_sock "$berth_sock" "$berthd_pid" || { tail -20 "$work/berth.log"; exit 1; }

B() { DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" "$@"; }
D() { DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" "$@"; }
B load -i "$image" >/dev/null
D load -i "$image" >/dev/null

rss_kb() { # sum of RSS (KiB) of the given pids
    local total=0 r
    for p in "$@"; do
        r=$(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ')
        total=$(( total + ${r:-0} ))
    done
    echo "$total"
}
pids_of() { # pids whose argv[0] basename is $1 and that use something below $2
    local want=$1 dir=$2 d a info
    for d in /proc/[0-9]*; do
        a=$({ tr '\0' '\n' <"$d/cmdline" | head -n1; } 2>/dev/null) || continue
        [ "$(basename -- "${a:-x}")" = "$want" ] || continue
        info=$({ tr '\0' ' ' <"$d/cmdline"; ls -l "$d/fd" "$d/cwd"; } 2>/dev/null || true)
        case "$info" in *"$dir"*) echo "${d#/proc/}" ;; esac
    done
}
containerd_pids() { pids_of containerd "$work/docker"; }
berth_shims() { pids_of berth-shim "$work/berth"; }
docker_shims() { pids_of containerd-shim-runc-v2 "$work/docker"; }
rm_all() { # $1: B or D
    local ids
    ids=$("$1" ps -aq)
    if [ -n "$ids" ]; then "$1" rm -f $ids >/dev/null; fi
}

{
    echo "# berth vs dockerd — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "dockerd: $(dockerd --version)"
    echo "berth: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "runc: $(runc --version | head -n1)"
    echo
} >"$results"

# --- 1. run latency ---------------------------------------------------------------------------
log "hyperfine: run --rm --network none busybox true ($runs runs each)"
hyperfine --warmup 3 --runs "$runs" --style basic \
    --export-json "$out/run-latency.json" --export-markdown "$out/run-latency.md" \
    -n "berth (berth run)" "$berth -H unix://$berth_sock run --rm --network none busybox true" \
    -n "berth (docker run)" "DOCKER_HOST=unix://$berth_sock $DOCKER_CLI run --rm --network none busybox true" \
    -n "dockerd (docker run)" "DOCKER_HOST=unix://$docker_sock $DOCKER_CLI run --rm --network none busybox true" \
    -n "docker CLI alone (docker version, berth)" "DOCKER_HOST=unix://$berth_sock $DOCKER_CLI version"
{
    echo "## docker run --rm --network none busybox true"
    echo
    cat "$out/run-latency.md"
    echo
} >>"$results"

# --- 2. idle memory ---------------------------------------------------------------------------
sleep 2
berth_idle=$(rss_kb "$berthd_pid")
dockerd_idle=$(rss_kb "$dockerd_pid")
containerd_idle=$(rss_kb $(containerd_pids))

# --- 3. ten sleeping containers ------------------------------------------------------------------
log "10 sleep containers on each"
for i in $(seq 10); do
    B run -d --network none busybox sleep 3600 >/dev/null
    D run -d --network none busybox sleep 3600 >/dev/null
done
sleep 2
bshims=$(berth_shims | xargs -r echo); dshims=$(docker_shims | xargs -r echo)
berth_10=$(rss_kb "$berthd_pid"); dockerd_10=$(rss_kb "$dockerd_pid")
containerd_10=$(rss_kb $(containerd_pids))
bshim_total=$(rss_kb $bshims); dshim_total=$(rss_kb $dshims)
bshim_n=$(echo "$bshims" | wc -w); dshim_n=$(echo "$dshims" | wc -w)
{
    echo "## Memory (RSS, KiB)"
    echo
    echo "| | berth | dockerd + containerd |"
    echo "|---|---:|---:|"
    echo "| idle daemon(s) | $berth_idle | $dockerd_idle + $containerd_idle |"
    echo "| daemon(s) with 10 sleep containers | $berth_10 | $dockerd_10 + $containerd_10 |"
    echo "| shims for 10 containers (count / total) | $bshim_n / $bshim_total | $dshim_n / $dshim_total |"
    echo "| per container shim (avg) | $(( bshim_total / (bshim_n > 0 ? bshim_n : 1) )) | $(( dshim_total / (dshim_n > 0 ? dshim_n : 1) )) |"
    echo
} >>"$results"
rm_all B
rm_all D

# --- 4. N (100) parallel run -d ---------------------------------------------------------------------
par() { # $1: B or D
    local t0 t1
    t0=$(date +%s.%N)
    seq "$parallel" | xargs -P "$parallel" -I{} sh -c "DOCKER_HOST=unix://$2 $DOCKER_CLI run -d --network none busybox sleep 3600 >/dev/null"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
log "$parallel parallel run -d: berth"
berth_par=$(par B "$berth_sock")
sleep 2
berth_par_n=$(B ps -q | wc -l)
berth_par_mem=$(( $(rss_kb "$berthd_pid") + $(rss_kb $(berth_shims)) ))
rm_all B
log "$parallel parallel run -d: dockerd"
docker_par=$(par D "$docker_sock")
sleep 2
docker_par_n=$(D ps -q | wc -l)
docker_par_mem=$(( $(rss_kb "$dockerd_pid") + $(rss_kb $(containerd_pids)) + $(rss_kb $(docker_shims)) ))
rm_all D
{
    echo "## $parallel parallel \`run -d --network none busybox sleep 3600\`"
    echo
    echo "| | berth | dockerd |"
    echo "|---|---:|---:|"
    echo "| wall time (s) | $berth_par | $docker_par |"
    echo "| containers running after | $berth_par_n | $docker_par_n |"
    echo "| daemon(s) + shims RSS (KiB) | $berth_par_mem | $docker_par_mem |"
    echo
} >>"$results"

log "results: $results"
cat "$results"
