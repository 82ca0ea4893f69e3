#!/usr/bin/env bash
# berth-ab.sh — two builds of berth side by side, interleaved in one hyperfine run: `run --rm
# --network none busybox true` through the berth CLI and through the docker CLI, each build on
# its own private daemon (`--bridge none`, so both can run at once). For before/after figures
# of a change, where separate runs a minute apart differ by the VM's drift more than by the
# change.
#
#   bash bench/berth-ab.sh BINDIR_A BINDIR_B [--runs N]
#
# BINDIR_* hold berth, berthd, berth-shim and berth-runtime (e.g. target/release of two
# worktrees). Needs root, hyperfine and the busybox archive (tests/fixtures/out/busybox.tar,
# made by scripts/setup.sh). Daemon state lives in a temp dir removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
a=$1 b=$2; shift 2
runs=40
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
image=$repo/tests/fixtures/out/busybox.tar
docker_cli=${DOCKER_BIN:-/usr/local/bin/docker}
work=$(mktemp -d /tmp/berth-ab.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cmds=()
for side in A B; do
    if [ $side = A ]; then bin=$a; else bin=$b; fi
    d=$work/$side
    mkdir -p "$d"
    "$bin/berth" daemon --data-root "$d/data" --exec-root "$d/run" -H "unix://$d/sock" \
        --bridge none >"$d/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$d/sock" ] && break; sleep 0.1; done
    "$bin/berth" -H "unix://$d/sock" load -i "$image" >/dev/null
    cmds+=(-n "$side berth run" "$bin/berth -H unix://$d/sock run --rm --network none busybox true")
    cmds+=(-n "$side docker run" "$docker_cli -H unix://$d/sock run --rm --network none busybox true")
done
echo "A: $a"
echo "B: $b"
hyperfine -N --warmup 5 --runs "$runs" --style basic "${cmds[@]}"
