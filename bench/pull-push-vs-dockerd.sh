#!/usr/bin/env bash
# berth vs dockerd: registry pull and push, side by side on this machine. OPT-IN: it starts
# Docker (installing Debian's docker.io if missing) and a docker-registry on 127.0.0.1.
#
#   bash bench/pull-push-vs-dockerd.sh --yes [--runs N] [--out DIR] [--no-debootstrap]
#
# What it does:
#   1. starts a private dockerd (--bridge=none, no iptables), a private berth daemon and a
#      docker-registry (filesystem storage under $work) on 127.0.0.1;
#   2. makes two images and loads them into both daemons: a Debian rootfs made with
#      `debootstrap --variant=minbase bookworm` (about 200 MB unpacked; with --no-debootstrap, or
#      when debootstrap cannot reach a mirror, a rootfs of this host's /usr/lib instead), and a
#      5-layer image (5 × 24 MB, half random, half text);
#   3. push: each daemon pushes each image to a fresh registry (storage wiped between runs);
#   4. cold pull: the image pushed by dockerd is pulled by each daemon after removing it
#      (so both download the same blobs); `skopeo copy` to a directory for reference;
#   5. writes $out/results.md (wall seconds, median of N runs) and stops everything.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

yes=0
runs=3
out=/tmp/berth-bench-registry
use_debootstrap=1
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --runs) runs=$2; shift ;;
        --out) out=$2; shift ;;
        --no-debootstrap) use_debootstrap=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$yes" != 1 ]; then
    sed -n '2,20p' "$0"
    echo
    echo "This starts Docker and a registry on this machine. Re-run with --yes to go ahead." >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
berth=${BERTH_BIN:-$repo/target/release/berth}
work=/tmp/bpp.$$
mkdir -p "$work" "$out"
results="$out/results.md"

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

SKIP_BUILD=${SKIP_BUILD:-0} bash scripts/setup.sh

if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io (dockerd, containerd) with service start-up disabled"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

berth_sock=$work/berth.sock
docker_sock=$work/docker.sock
dockerd_pid=
berthd_pid=
registry_pid=
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port

cleanup() {
    set +e
    log "cleaning up"
    for p in $berthd_pid $dockerd_pid $registry_pid; do kill "$p" 2>/dev/null; done
    for p in $berthd_pid $dockerd_pid $registry_pid; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    done
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_registry() {
    [ -n "$registry_pid" ] && { kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; }
    rm -rf "$work/registry"
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
    docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the registry did not start" >&2
    return 1
}

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

log "starting private dockerd, berth daemon and registry ($reg)"
dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$docker_sock" --iptables=false --ip6tables=false --bridge=none \
    >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
"$berth" daemon --data-root "$work/berth" --exec-root "$work/berth-exec" -H "unix://$berth_sock" \
    --bridge none >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_sock "$docker_sock" "$dockerd_pid" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_sock "$berth_sock" "$berthd_pid" || { tail -20 "$work/berth.log"; exit 1; }
start_registry

B() { DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" "$@"; }
D() { DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" "$@"; }

# --- images -----------------------------------------------------------------------------------
debian_kind="debootstrap --variant=minbase bookworm"
rootfs=$work/rootfs
if [ "$use_debootstrap" = 1 ]; then
    command -v debootstrap >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || true
    log "debootstrap --variant=minbase bookworm"
    if ! debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
        >"$work/debootstrap.log" 2>&1; then
        log "debootstrap failed (see $work/debootstrap.log); using this host's /usr/lib"
        use_debootstrap=0
    fi
fi
if [ "$use_debootstrap" = 0 ]; then
    debian_kind="this host's /usr/lib (debootstrap unavailable)"
    rm -rf "$rootfs"; mkdir -p "$rootfs/usr"
    cp -a /usr/lib "$rootfs/usr/"
fi
tar -C "$rootfs" -cf "$work/debian.tar" .
debian_mb=$(du -sm "$rootfs" | cut -f1)
B import "$work/debian.tar" bench/debian:1 >/dev/null
D import "$work/debian.tar" bench/debian:1 >/dev/null

python3 - "$work/layers5.tar" <<'PY'
import hashlib, io, json, os, sys, tarfile, random
out = sys.argv[1]
rng = random.Random(5)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]
layers, diff_ids = [], []
for i in range(5):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for j in range(12):
            data = os.urandom(1 << 20) if j % 2 == 0 else b" ".join(rng.choice(words) for _ in range(180000))[: 1 << 20]
            for k in range(2):
                info = tarfile.TarInfo(f"layer{i}/f{j}-{k}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    layers.append(raw)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cid = hashlib.sha256(config).hexdigest()
with tarfile.open(out, "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    add(f"{cid}.json", config)
    names = []
    for raw, d in zip(layers, diff_ids):
        n = f"{d[7:]}/layer.tar"; names.append(n); add(n, raw)
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bench/layers5:1"],
                                      "Layers": names}]).encode())
PY
B load -i "$work/layers5.tar" >/dev/null
D load -i "$work/layers5.tar" >/dev/null

# --- measurements -----------------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }

declare -A T
for img in debian:1 layers5:1; do
    for who in berth dockerd; do
        times=()
        for r in $(seq "$runs"); do
            start_registry
            target="$reg/$who/$img"
            if [ $who = berth ]; then C=B; else C=D; fi
            $C tag "bench/$img" "$target"
            t0=$(now); $C push "$target" >/dev/null; t1=$(now)
            times+=("$(elapsed "$t0" "$t1")")
        done
        T[push,$img,$who]=$(median "${times[@]}")
        log "push $img $who: ${T[push,$img,$who]} s"
    done
    # Cold pulls of the same blobs (pushed by dockerd).
    start_registry
    src="$reg/src/$img"
    D tag "bench/$img" "$src"; D push "$src" >/dev/null
    for who in berth dockerd; do
        if [ $who = berth ]; then C=B; else C=D; fi
        times=()
        for r in $(seq "$runs"); do
            # Remove the image with all its tags (and so its layers) for a cold pull.
            id=$($C image inspect -f '{{.Id}}' "bench/$img" 2>/dev/null ||
                $C image inspect -f '{{.Id}}' "$src" 2>/dev/null || true)
            [ -n "$id" ] && $C rmi -f "$id" >/dev/null
            $C tag "$src" "bench/$img" 2>/dev/null && { echo "the image is still there" >&2; exit 1; }
            t0=$(now); $C pull "$src" >/dev/null; t1=$(now)
            times+=("$(elapsed "$t0" "$t1")")
            $C tag "$src" "bench/$img"
        done
        T[pull,$img,$who]=$(median "${times[@]}")
        log "pull $img $who: ${T[pull,$img,$who]} s"
    done
    times=()
    for r in $(seq "$runs"); do
        rm -rf "$work/skopeo-dir"
        t0=$(now)
        skopeo --insecure-policy copy --src-tls-verify=false "docker://$src" "dir:$work/skopeo-dir" >/dev/null
        t1=$(now)
        times+=("$(elapsed "$t0" "$t1")")
    done
    T[pull,$img,skopeo]=$(median "${times[@]}")
done

{
    echo "# Registry pull/push, berth vs dockerd ($(date -u +%Y-%m-%dT%H:%MZ), $runs runs, median seconds)"
    echo
    echo "Machine: $(nproc) CPUs; dockerd $(dockerd --version | awk '{print $3}' | tr -d ,);"
    echo "registry: docker-registry on $reg (filesystem storage, plain HTTP)."
    echo "Debian image: $debian_kind, ${debian_mb} MB unpacked. 5-layer image: 5 × 24 MB."
    echo
    echo "| operation | image | berth | dockerd | berth/dockerd | skopeo copy to dir |"
    echo "|---|---|---|---|---|---|"
    for op in pull push; do
        for img in debian:1 layers5:1; do
            b=${T[$op,$img,berth]}; d=${T[$op,$img,dockerd]}
            ratio=$(python3 -c "print(f'{$b / $d:.2f}' if $d > 0 else '-')")
            sk=${T[$op,$img,skopeo]:-}
            echo "| $op (cold) | $img | $b s | $d s | $ratio | ${sk:+$sk s} |"
        done
    done
} >"$results"
cat "$results"
