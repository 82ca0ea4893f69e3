#!/usr/bin/env bash
# tls-vs-dockerd.sh — the API over mutual TLS on loopback against the unix socket, berth next
# to dockerd, with the same certificates (made here with openssl) and the same docker CLI:
# `docker run --rm --network none busybox true` and `docker ps` (API request latency).
#
#   bash bench/tls-vs-dockerd.sh --yes [--runs N] [--out DIR]
#
# Starts a private dockerd (/usr/sbin/dockerd: own data root, exec root, pidfile, sockets,
# --bridge none --iptables=false) and a private berth daemon (--bridge none), each with
# -H unix://… and -H tcp://127.0.0.1:PORT --tlsverify; both are stopped and their state
# removed on exit. Needs root, hyperfine, dockerd and the busybox archive
# (tests/fixtures/out/busybox.tar). Results: $out/tls.md (+ hyperfine JSON).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
yes=0 runs=30 out=/tmp/berth-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --yes|-y) yes=1 ;;
        --runs) runs=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$yes" = 1 ] || { sed -n '2,13p' "$0"; echo "re-run with --yes" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
berth=${BERTH_BIN:-$repo/target/release/berth}
dockerd=${DOCKERD:-/usr/sbin/dockerd}
image=$repo/tests/fixtures/out/busybox.tar
for f in "$berth" "$dockerd" "$DOCKER_CLI"; do [ -x "$f" ] || { echo "$f missing" >&2; exit 1; }; done
[ -f "$image" ] || { echo "$image missing: bash scripts/setup.sh" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine missing" >&2; exit 1; }

work=/tmp/bt.tls.$$
mkdir -p "$work/pki" "$out"
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
dockerd_pid= berthd_pid=
cleanup() {
    set +e
    for p in $berthd_pid $dockerd_pid; do kill "$p" 2>/dev/null; done
    for p in $berthd_pid $dockerd_pid; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    done
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

log "certificates"
(
    cd "$work/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca-key.pem -out ca.pem \
        -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    issue() {  # name cn eku [san]
        openssl req -newkey rsa:2048 -nodes -keyout "$1-key.pem" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
        { echo "extendedKeyUsage=$3"; [ -n "${4:-}" ] && echo "subjectAltName=$4"; } >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -out "$1.pem" -extfile "$1.ext" 2>/dev/null
    }
    issue server localhost serverAuth IP:127.0.0.1,DNS:localhost
    issue client bench clientAuth
    mkdir client && cp ca.pem client/ca.pem && cp client.pem client/cert.pem && cp client-key.pem client/key.pem
)
pki=$work/pki
tls_flags="--tlsverify --tlscacert $pki/ca.pem --tlscert $pki/server.pem --tlskey $pki/server-key.pem"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dport=$(free_port) bport=$(free_port)

log "starting private dockerd and berth"
# shellcheck disable=SC2086
"$dockerd" --data-root "$work/docker" --exec-root "$work/dx" --pidfile "$work/dockerd.pid" \
    -H "unix://$work/docker.sock" -H "tcp://127.0.0.1:$dport" $tls_flags \
    --bridge none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
# shellcheck disable=SC2086
"$berth" daemon --data-root "$work/berth" --exec-root "$work/bx" \
    -H "unix://$work/berth.sock" -H "tcp://127.0.0.1:$bport" $tls_flags \
    --bridge none >"$work/berth.log" 2>&1 &
berthd_pid=$!
wait_up() {
    for _ in $(seq 300); do
        DOCKER_HOST=$1 "$DOCKER_CLI" version >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "daemon at $1 did not come up" >&2; return 1
}
wait_up "unix://$work/docker.sock" || { tail -20 "$work/dockerd.log"; exit 1; }
wait_up "unix://$work/berth.sock" || { tail -20 "$work/berth.log"; exit 1; }
for s in docker berth; do DOCKER_HOST=unix://$work/$s.sock "$DOCKER_CLI" load -i "$image" >/dev/null; done

cli_unix() { echo "$DOCKER_CLI -H unix://$work/$1.sock"; }
cli_tls() { echo "$DOCKER_CLI -H tcp://127.0.0.1:$2 --tlsverify --tlscacert $pki/client/ca.pem --tlscert $pki/client/cert.pem --tlskey $pki/client/key.pem"; }
# The TLS path works end to end before it is timed.
$(cli_tls docker "$dport") ps >/dev/null
$(cli_tls berth "$bport") ps >/dev/null

run="run --rm --network none busybox true"
log "docker run --rm ($runs runs each)"
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$out/tls-run.json" \
    -n "berth unix" "$(cli_unix berth) $run" -n "berth tls" "$(cli_tls berth "$bport") $run" \
    -n "dockerd unix" "$(cli_unix docker) $run" -n "dockerd tls" "$(cli_tls docker "$dport") $run" \
    | tee "$work/run.txt"
log "docker ps ($((runs * 3)) runs each)"
hyperfine -N --warmup 5 --runs $((runs * 3)) --style basic --export-json "$out/tls-ps.json" \
    -n "berth unix" "$(cli_unix berth) ps" -n "berth tls" "$(cli_tls berth "$bport") ps" \
    -n "dockerd unix" "$(cli_unix docker) ps" -n "dockerd tls" "$(cli_tls docker "$dport") ps" \
    | tee "$work/ps.txt"

python3 - "$out" "$("$dockerd" --version)" <<'PY' | tee "$out/tls.md"
import json, sys
out, dv = sys.argv[1], sys.argv[2]
print(f"TLS on loopback vs the unix socket ({dv}); mean ± stddev, median (ms)\n")
print("| command | berth unix | berth tls | dockerd unix | dockerd tls |")
print("|---|---|---|---|---|")
for name, f in (("docker run --rm busybox true", "tls-run.json"), ("docker ps", "tls-ps.json")):
    r = {x["command"]: x for x in json.load(open(f"{out}/{f}"))["results"]}
    cell = lambda k: f'{r[k]["mean"]*1e3:.1f} ± {r[k]["stddev"]*1e3:.1f}, {r[k]["median"]*1e3:.1f}'
    print(f"| {name} | " + " | ".join(cell(k) for k in ("berth unix", "berth tls", "dockerd unix", "dockerd tls")) + " |")
PY
