#!/usr/bin/env bash
# Disk footprint of an image: what a pull and a load leave in the data root, berth (before and
# after the one-blob-per-layer store) next to dockerd and containerd. OPT-IN: it starts a
# private dockerd, containerd, berth daemons and a docker-registry on 127.0.0.1.
#
#   bash bench/disk-footprint.sh --yes [--rootfs DIR] [--before DIR] [--out DIR]
#
#   --rootfs DIR  the Debian rootfs to make the image of (e.g. made with
#                 `debootstrap --variant=minbase bookworm DIR`); default: debootstrap one, or,
#                 when that fails, this host's /usr/lib
#   --before DIR  a directory with the berthd (and berth-shim, berth-runtime) to compare with,
#                 e.g. a copy of main's target/release from before the change; left out, only
#                 this tree's berthd is measured
#
# What it does:
#   1. makes a 2-layer image of the rootfs (the rootfs, plus a layer of 16 MiB half random,
#      half text), loads it into dockerd, and dockerd pushes it to the registry (gzip blobs);
#   2. pull: each engine (fresh data root) pulls it from the registry; `du` of the data root
#      afterwards, less the empty daemon's;
#   3. load: dockerd saves it (`docker save`: uncompressed tars); each engine (fresh data root)
#      loads the archive (containerd: `ctr images import`); the same `du`, and load time;
#   4. after each load, a build of one 64 MiB COPY layer (what committing a layer costs);
#   5. writes $out/results.md and stops everything.
# Sizes are `du -sk` (allocated disk), in MB (10^6 bytes).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

yes=0
out=/tmp/berth-bench-disk
rootfs_in=
before=
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --rootfs) rootfs_in=$2; shift ;;
        --before) before=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$yes" != 1 ]; then
    sed -n '2,24p' "$0"
    echo
    echo "This starts dockerd, containerd and a registry on this machine. Re-run with --yes." >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
for t in dockerd containerd ctr docker-registry; do
    command -v "$t" >/dev/null || { echo "$t is missing (apt-get install docker.io docker-registry)" >&2; exit 1; }
done

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
after=$repo/target/release
work=/tmp/bdf.$$
mkdir -p "$work" "$out"
results="$out/results.md"
pids=()

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

cleanup() {
    set +e
    log "cleaning up"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    done
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

wait_docker_api() {
    local sock=$1 pid=$2
    for _ in $(seq 300); do
        DOCKER_HOST=unix://$sock "$DOCKER_CLI" version >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { echo "daemon for $sock died" >&2; return 1; }
        sleep 0.2
    done
    echo "daemon for $sock did not come up" >&2
    return 1
}

# Starts an engine named $1 with a fresh data root; prints its socket. Engines: berth-after,
# berth-before, dockerd, containerd.
start_engine() {
    local name=$1 d=$work/$1
    rm -rf "$d"; mkdir -p "$d"
    case $name in
        berth-after|berth-before)
            local bin=$after
            [ "$name" = berth-before ] && bin=$before
            "$bin/berthd" --data-root "$d/root" --exec-root "$d/exec" -H "unix://$d/sock" \
                --bridge none --iptables=false >"$d/log" 2>&1 &
            pids+=($!)
            wait_docker_api "$d/sock" $! || { tail -20 "$d/log"; exit 1; } ;;
        dockerd)
            dockerd --data-root "$d/root" --exec-root "$d/exec" --pidfile "$d/pid" \
                -H "unix://$d/sock" --iptables=false --ip6tables=false --bridge=none \
                --insecure-registry "$reg" >"$d/log" 2>&1 &
            pids+=($!)
            wait_docker_api "$d/sock" $! || { tail -20 "$d/log"; exit 1; } ;;
        containerd)
            cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
TOML
            containerd --config "$d/config.toml" >"$d/log" 2>&1 &
            pids+=($!)
            for _ in $(seq 100); do
                ctr -a "$d/sock" version >/dev/null 2>&1 && break
                sleep 0.2
            done
            ctr -a "$d/sock" version >/dev/null || { tail -20 "$d/log"; exit 1; } ;;
    esac
}

stop_last() {
    local p=${pids[-1]}
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    unset 'pids[-1]'
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}

kb() { du -sk "$1" | cut -f1; }
mb() { python3 -c "print(f'{$1 * 1024 / 1e6:.0f}')"; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# --- the registry -------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
done

# --- the image ----------------------------------------------------------------------------------
rootfs=$rootfs_in
kind="given rootfs $rootfs_in"
if [ -z "$rootfs" ]; then
    rootfs=$work/rootfs
    kind="debootstrap --variant=minbase bookworm"
    if ! debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
        >"$work/debootstrap.log" 2>&1; then
        kind="this host's /usr/lib (debootstrap unavailable)"
        rm -rf "$rootfs"; mkdir -p "$rootfs/usr"; cp -a /usr/lib "$rootfs/usr/"
    fi
fi
tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
mkdir -p "$work/ctx"
python3 - "$work/ctx/extra" <<'PY'
import os, random, sys
rng = random.Random(7)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]
with open(sys.argv[1], "wb") as f:
    f.write(os.urandom(8 << 20))
    f.write(b" ".join(rng.choice(words) for _ in range(1500000))[: 8 << 20])
PY
printf 'FROM bench/rootfs:1\nCOPY extra /extra\n' >"$work/ctx/Dockerfile"
# The build measured after each load: one 64 MiB layer (half random, half text) committed.
mkdir -p "$work/ctx2"
for _ in 1 2 3 4; do cat "$work/ctx/extra"; done >"$work/ctx2/big"
printf 'FROM %s\nCOPY big /big\n' "$reg/bench/debian:1" >"$work/ctx2/Dockerfile"

start_engine dockerd
D() { DOCKER_HOST=unix://$work/dockerd/sock "$DOCKER_CLI" "$@"; }
D import "$work/rootfs.tar" bench/rootfs:1 >/dev/null
DOCKER_BUILDKIT=0 D build -q -t "$reg/bench/debian:1" "$work/ctx" >/dev/null
D push "$reg/bench/debian:1" >/dev/null
D save -o "$work/image.tar" "$reg/bench/debian:1"
stop_last
rootfs_mb=$(mb "$(kb "$rootfs")")
blobs_mb=$(mb "$(kb "$work/registry/docker/registry/v2/blobs")")
archive_mb=$(mb "$(kb "$work/image.tar")")
log "image: rootfs $rootfs_mb MB, registry blobs $blobs_mb MB, saved archive $archive_mb MB"

# --- measurements -------------------------------------------------------------------------------
engines=(dockerd containerd berth-after)
[ -n "$before" ] && engines=(dockerd containerd berth-before berth-after)
declare -A R
for op in pull load; do
    for e in "${engines[@]}"; do
        start_engine "$e"
        root=$work/$e/root
        base=$(kb "$root")
        t0=$(now)
        if [ "$e" = containerd ]; then
            C() { ctr -a "$work/containerd/sock" "$@"; }
            if [ $op = pull ]; then
                C images pull --plain-http "$reg/bench/debian:1" >/dev/null
            else
                C images import "$work/image.tar" >/dev/null
            fi
        else
            B() { DOCKER_HOST=unix://$work/$e/sock "$DOCKER_CLI" "$@"; }
            if [ $op = pull ]; then
                B pull "$reg/bench/debian:1" >/dev/null
            else
                B load -i "$work/image.tar" >/dev/null
            fi
        fi
        t1=$(now)
        sync
        R[$op,$e]=$(mb $(($(kb "$root") - base)))
        R[$op,$e,t]=$(elapsed "$t0" "$t1")
        if [ "${e#berth}" != "$e" ]; then
            R[$op,$e,detail]="blobs $(mb "$(kb "$root/image/blobs")") MB + layers $(mb "$(kb "$root/image/layers")") MB"
            if [ $op = pull ]; then R[$op,$e,size]=$(B images --format '{{.Size}}' | head -1); fi
        fi
        log "$op $e: ${R[$op,$e]} MB in ${R[$op,$e,t]} s ${R[$op,$e,detail]:-}"
        if [ $op = load ] && [ "$e" != containerd ]; then
            t0=$(now)
            DOCKER_BUILDKIT=0 B build -q -t bench/built:1 "$work/ctx2" >/dev/null
            t1=$(now)
            R[build,$e,t]=$(elapsed "$t0" "$t1")
            log "build (COPY of 64 MiB) $e: ${R[build,$e,t]} s"
        fi
        stop_last
    done
done

{
    echo "# Image disk footprint, pull and load ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "Machine: $(nproc) CPUs, $(uname -r); dockerd $(dockerd --version | awk '{print $3}' | tr -d ,),"
    echo "containerd $(containerd --version | awk '{print $3}'), docker-registry on $reg."
    echo "Image: $kind ($rootfs_mb MB on disk) + a 16 MiB layer; in the registry $blobs_mb MB"
    echo "(gzip, pushed by dockerd); \`docker save\` archive $archive_mb MB."
    echo
    echo "| operation | engine | data root grew by | time | where |"
    echo "|---|---|---|---|---|"
    for op in pull load; do
        for e in "${engines[@]}"; do
            echo "| $op | $e | ${R[$op,$e]} MB | ${R[$op,$e,t]} s | ${R[$op,$e,detail]:-} |"
        done
    done
    echo
    echo "Build of one 64 MiB COPY layer on the loaded image (legacy builder for dockerd):"
    echo
    echo "| engine | build time |"
    echo "|---|---|"
    for e in "${engines[@]}"; do
        [ "$e" = containerd ] && continue
        echo "| $e | ${R[build,$e,t]} s |"
    done
} >"$results"
cat "$results"
