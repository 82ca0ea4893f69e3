#!/usr/bin/env bash
# Takes shims through a container's life for refresh-hot-symbols.sh: a private daemon from
# $1/bin (berth, berth-runtime, berth-shim), an idle container, a burst of output, an exit.
set -u
work=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
base=$work/d
mkdir -p "$base"
D() { DOCKER_HOST=unix://$base/s.sock DOCKER_CONFIG=$base/dc docker "$@"; }
"$work/bin/berth" daemon --data-root "$base/data" --exec-root "$base/run" \
    -H "unix://$base/s.sock" --bridge none >"$base/d.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do D version >/dev/null 2>&1 && break; sleep 0.2; done
D load -i "$repo/tests/fixtures/out/busybox.tar" >/dev/null
D run -d --network none busybox sleep 1000 >/dev/null
D run -d --network none busybox sh -c \
    'i=0; while [ $i -lt 50000 ]; do echo line $i; i=$((i+1)); done; sleep 1000' >/dev/null
D run --network none busybox sh -c 'exit 3' >/dev/null
sleep 4
D rm -f $(D ps -aq) >/dev/null
kill "$daemon"
wait "$daemon"
grep -o " $base[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
rm -rf "$base"
