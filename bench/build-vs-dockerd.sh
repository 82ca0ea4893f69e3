#!/usr/bin/env bash
# berth vs dockerd's classic builder: the 7-step Dockerfile of issue 6 (FROM busybox, RUN mkdir,
# COPY of a 1 MB file, ENV, WORKDIR, EXPOSE, CMD), and the 20-step multi-stage Dockerfile in
# bench/fixtures/build-debian20 on a Debian image, without cache and fully cached, side by side
# on the same context. OPT-IN: it installs and starts Docker.
#
#   bash bench/build-vs-dockerd.sh --yes [--runs N] [--out DIR] [--debian-rootfs-tar TAR]
#
# The Debian image is `docker import` of a rootfs tarball: TAR when given, else one made with
# `debootstrap --variant=minbase bookworm` (needs a Debian mirror; skipped when it fails).
#
# What it does:
#   1. installs Debian's docker.io if dockerd is missing (service start-up disabled);
#   2. starts a private dockerd (--iptables=false --ip6tables=false --bridge=none) and a private
#      berth daemon (--bridge none), each on its own socket / data root below $work;
#   3. loads the same busybox docker-archive into both;
#   4. hyperfine: `DOCKER_BUILDKIT=0 docker build --network none --no-cache -q CTX` and the same
#      build with a warm cache, for each daemon, plus `berth build` (berth's own CLI) against
#      berth: the docker CLI alone costs about 11 ms per run, more than a cached berth build;
#   5. stops both daemons and removes their state. Results: $out/build.md (+ hyperfine JSON).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

yes=0
runs=20
debian_tar=
out=/tmp/berth-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --runs) runs=$2; shift ;;
        --out) out=$2; shift ;;
        --debian-rootfs-tar) debian_tar=$2; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$yes" != 1 ]; then
    sed -n '2,22p' "$0"
    echo
    echo "This installs/starts Docker on this machine. Re-run with --yes to go ahead." >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
berth=${BERTH_BIN:-$repo/target/release/berth}
image="$repo/tests/fixtures/out/busybox.tar"
work=/tmp/bc.$$  # short: shim socket paths below the exec root must fit in 108 bytes
mkdir -p "$work" "$out"
results="$out/build.md"
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

[ -x "$berth" ] || { echo "$berth missing: cargo build --release --workspace --bins" >&2; exit 1; }
[ -f "$image" ] || { echo "$image missing: bash scripts/setup.sh" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
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
"$berth" daemon --data-root "$work/berth" --exec-root "$work/bx" -H "unix://$berth_sock" \
    --bridge none >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_sock "$docker_sock" "$dockerd_pid" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_sock "$berth_sock" "$berthd_pid" || { tail -20 "$work/berth.log"; exit 1; }
DOCKER_HOST=unix://$berth_sock "$DOCKER_CLI" load -i "$image" >/dev/null
DOCKER_HOST=unix://$docker_sock "$DOCKER_CLI" load -i "$image" >/dev/null

ctx=$work/ctx
mkdir -p "$ctx"
head -c 1048576 /dev/urandom >"$ctx/big.bin"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox
RUN mkdir -p /app/data
COPY big.bin /app/data/
ENV APP_MODE=prod
WORKDIR /app
EXPOSE 8080
CMD ["sh", "-c", "ls /app/data"]
DOCKERFILE

build() { # $1: socket, $2: context, rest: extra flags
    local sock=$1 dir=$2; shift 2
    echo "DOCKER_BUILDKIT=0 DOCKER_HOST=unix://$sock $DOCKER_CLI build --network none -q $* $dir"
}
berth_build() { # $1: context, rest: extra flags
    local dir=$1; shift
    echo "$berth -H unix://$berth_sock build --network none -q $* $dir"
}
compare() { # $1: name, $2: context, $3: runs, rest: extra build flags
    local name=$1 dir=$2 n=$3; shift 3
    hyperfine --warmup 2 --runs "$n" --style basic \
        --export-json "$out/$name.json" --export-markdown "$out/$name.md" \
        -n "berth (berth build)" "$(berth_build "$dir" "$@")" \
        -n "berth (docker build)" "$(build "$berth_sock" "$dir" "$@")" \
        -n "dockerd (docker build)" "$(build "$docker_sock" "$dir" "$@")"
}
{
    echo "# berth vs dockerd (classic builder): 7-step and 20-step builds — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, kernel $(uname -r); dockerd: $(dockerd --version)"
    echo "berth: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
} >"$results"

log "hyperfine: 7-step build without cache ($runs runs each)"
compare build-nocache "$ctx" "$runs" --no-cache
log "hyperfine: 7-step build fully cached ($runs runs each)"
compare build-cached "$ctx" "$runs"
{
    echo "## 7-step build, --no-cache"
    echo
    cat "$out/build-nocache.md"
    echo
    echo "## 7-step build, fully cached"
    echo
    cat "$out/build-cached.md"
    echo
} >>"$results"

# The 20-step multi-stage build on a Debian image.
if [ -z "$debian_tar" ]; then
    debian_tar=$work/debian-rootfs.tar
    command -v debootstrap >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || true
    log "debootstrap --variant=minbase bookworm"
    if debootstrap --variant=minbase bookworm "$work/debian" http://deb.debian.org/debian \
        >"$work/debootstrap.log" 2>&1; then
        tar -C "$work/debian" -cf "$debian_tar" .
    else
        log "debootstrap failed (see $work/debootstrap.log): skipping the Debian build"
        debian_tar=
    fi
fi
if [ -n "$debian_tar" ]; then
    for sock in "$berth_sock" "$docker_sock"; do
        DOCKER_HOST=unix://$sock "$DOCKER_CLI" import "$debian_tar" debian:bookworm >/dev/null
    done
    dctx=$work/dctx
    cp -r "$repo/bench/fixtures/build-debian20" "$dctx"
    mkdir -p "$dctx/assets"
    for i in $(seq 1 50); do head -c 20000 /dev/urandom | base64 >"$dctx/assets/file$i.txt"; done
    druns=$(( runs < 5 ? runs : 5 ))
    log "hyperfine: 20-step Debian build without cache ($druns runs each)"
    compare debian20-nocache "$dctx" "$druns" --no-cache
    log "hyperfine: 20-step Debian build fully cached ($runs runs each)"
    compare debian20-cached "$dctx" "$runs"
    {
        echo "## 20-step multi-stage build on Debian bookworm (bench/fixtures/build-debian20), --no-cache"
        echo
        cat "$out/debian20-nocache.md"
        echo
        echo "## 20-step multi-stage build on Debian bookworm, fully cached"
        echo
        cat "$out/debian20-cached.md"
        echo
    } >>"$results"
fi
log "results: $results"
cat "$results"
