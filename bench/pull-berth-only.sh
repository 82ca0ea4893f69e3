#!/usr/bin/env bash
# berth alone (no dockerd): cold pulls of the one-layer Debian image from a local registry.
#
#   bash bench/pull-berth-only.sh [BINDIR] [RUNS]      (BINDIR: target/release by default)
#
# Starts a private berth daemon (--bridge none) and a docker-registry on 127.0.0.1, imports
# $BERTH_DEBIAN_TAR (default /var/tmp/berth-debian/debian-rootfs.tar), pushes it, then RUNS times
# (default 5): `rmi -f` the image, time `docker pull`; prints each run and the median. PERF=1
# records the last pull with `perf record -g` (perf.data in the current directory).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$repo/target/release}; runs=${2:-5}
tarball=${BERTH_DEBIAN_TAR:-/var/tmp/berth-debian/debian-rootfs.tar}
work=/tmp/berth-pull-bench.$$
mkdir -p $work
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >$work/registry.yml <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
YML
docker-registry serve $work/registry.yml >$work/registry.log 2>&1 & rpid=$!
$bin/berth daemon --data-root $work/berth --exec-root $work/berth-exec -H unix://$work/b.sock --bridge none >$work/berth.log 2>&1 & bpid=$!
cleanup() { set +e; kill $bpid $rpid 2>/dev/null; sleep 1; grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null; rm -rf $work; }
trap cleanup EXIT
B() { DOCKER_HOST=unix://$work/b.sock $DOCKER_CLI "$@"; }
for _ in $(seq 100); do B version >/dev/null 2>&1 && break; sleep 0.2; done
B import "$tarball" bench/debian:1 >/dev/null
src=$reg/src/debian:1
B tag bench/debian:1 $src; B push $src >/dev/null
times=()
for r in $(seq $runs); do
  id=$(B image inspect -f '{{.Id}}' $src)
  B rmi -f $id >/dev/null
  sync
  if [ -n "${PERF:-}" ] && [ $r = $runs ]; then perf record -F 997 -g -o perf.data -p $bpid >/dev/null 2>&1 & ppid=$!; sleep 0.5; fi
  t0=$(date +%s.%N); B pull $src >/dev/null; t1=$(date +%s.%N)
  if [ -n "${ppid:-}" ]; then kill -INT $ppid; wait $ppid || true; fi
  t=$(python3 -c "print(f'{$t1 - $t0:.2f}')"); times+=($t); echo "run $r: $t s"
done
python3 -c "import statistics,sys; print('median', f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "${times[@]}"
