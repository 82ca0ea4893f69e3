#!/usr/bin/env bash
# `berth registry serve` vs Debian's docker-registry (distribution 2.8), side by side in one run
# on 127.0.0.1, the same client (skopeo) and the same images:
#
#   bash bench/registry-vs-distribution.sh [--runs N] [--clients N] [--out DIR]
#
#   1. images: the busybox docker-archive (scripts/make-busybox-image.sh) and a 5-layer image
#      (5 × 24 MB uncompressed, half random, half text), compressed once into an OCI layout so
#      every push sends the same gzip blobs;
#   2. push: `skopeo copy oci:… docker://HOST/bench/IMG:v1` into freshly wiped storage each run
#      (so every blob is uploaded), both servers in each run;
#   3. pull: `skopeo copy docker://… oci:FRESH_DIR` of what was just pushed;
#   4. idle RSS: both servers restarted on their populated storage, one `GET /v2/`, VmRSS;
#   5. N (default 50) concurrent clients each pulling the 5-layer image (manifest and every blob
#      with curl, to /dev/null) from a freshly restarted server: wall time, throughput, and the
#      server's peak RSS (VmHWM) during it;
#   6. the OCI conformance suite (all workflows, delete enabled) against each: passed/failed.
# Results: $out/results.md (medians). Needs skopeo, curl, docker-registry, python3, xz.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=5
clients=50
out=/tmp/berth-bench-regsrv
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift ;;
        --clients) clients=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

BR=${BERTH_REGISTRY:-$repo/target/release/berth-registry}
DR=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
for t in "$BR" "$DR" /usr/bin/skopeo curl python3 xz; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing: $t" >&2; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d /tmp/berth-regbench.XXXXXX)
log() { echo "== $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port)
dport=$(free_port)
bpid=
dpid=

wait_port() {
    for _ in $(seq 200); do
        curl -fs -o /dev/null "http://127.0.0.1:$1/v2/" && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}
start_berth() {
    "$BR" serve --addr "127.0.0.1:$bport" --root "$work/berth-root" --delete-enabled \
        --log-level warn 2>>"$work/berth.log" &
    bpid=$!
    wait_port "$bport"
}
start_dist() {
    cat >"$work/dist.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/dist-root
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$dport
EOF
    "$DR" serve "$work/dist.yml" >>"$work/dist.log" 2>&1 &
    dpid=$!
    wait_port "$dport"
}
stop_servers() {
    for p in $bpid $dpid; do kill "$p" 2>/dev/null || true; done
    for p in $bpid $dpid; do wait "$p" 2>/dev/null || true; done
    bpid=; dpid=
}
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# --- images -----------------------------------------------------------------------------------
busybox=$repo/tests/fixtures/out/busybox.tar
[ -f "$busybox" ] || bash "$repo/scripts/make-busybox-image.sh" "$busybox"
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
S() { /usr/bin/skopeo --insecure-policy "$@"; }
log "compressing the images once into an OCI layout"
S copy -q "docker-archive:$busybox" "oci:$work/oci:busybox"
S copy -q "docker-archive:$work/layers5.tar" "oci:$work/oci:layers5"
size_of() { du -sb "$1" | cut -f1; }

declare -A push pull
for img in busybox layers5; do
    for i in $(seq "$runs"); do
        # fresh storage each run: every blob is uploaded (skopeo's blob-info cache would
        # otherwise turn later pushes into cross-repository mounts)
        stop_servers
        rm -rf "$work/berth-root" "$work/dist-root"
        start_berth; start_dist
        for srv in berth dist; do
            port=$bport; [ "$srv" = dist ] && port=$dport
            ref="127.0.0.1:$port/bench/$img:v1"
            t0=$(now)
            S copy -q --dest-tls-verify=false "oci:$work/oci:$img" "docker://$ref"
            t1=$(now)
            push[$srv-$img]+=" $(elapsed "$t0" "$t1")"
            rm -rf "$work/pull"
            t0=$(now)
            S copy -q --src-tls-verify=false "docker://$ref" "oci:$work/pull:x"
            t1=$(now)
            pull[$srv-$img]+=" $(elapsed "$t0" "$t1")"
        done
    done
    log "$img: push berth ${push[berth-$img]} / dist ${push[dist-$img]}; pull berth ${pull[berth-$img]} / dist ${pull[dist-$img]}"
done
img_bytes=$(du -sb "$work/pull/blobs" | cut -f1)

# --- idle RSS and concurrent pulls ---------------------------------------------------------------
stop_servers
start_berth; start_dist
sleep 1
idle_b=$(kib "$bpid" VmRSS); idle_d=$(kib "$dpid" VmRSS)
log "idle RSS: berth ${idle_b} KiB, dist ${idle_d} KiB"

pull_all() {  # PORT: one client pulling bench/layers5:v1, manifest then every blob
    local port=$1 base="http://127.0.0.1:$1/v2/bench/layers5"
    local m
    m=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/manifests/v1")
    for d in $(python3 -c 'import json,sys; m=json.load(sys.stdin); print(" ".join([m["config"]["digest"]] + [l["digest"] for l in m["layers"]]))' <<<"$m"); do
        curl -fsS -o /dev/null "$base/blobs/$d"
    done
}
declare -A conc_s conc_hwm
for srv in berth dist; do
    stop_servers; start_berth; start_dist; sleep 0.5
    port=$bport; pid=$bpid
    [ "$srv" = dist ] && { port=$dport; pid=$dpid; }
    t0=$(now)
    cpids=()
    for _ in $(seq "$clients"); do pull_all "$port" & cpids+=($!); done
    failed=0
    for c in "${cpids[@]}"; do wait "$c" || failed=$((failed + 1)); done
    [ "$failed" = 0 ] || { echo "$failed of $clients concurrent pulls from $srv failed" >&2; exit 1; }
    t1=$(now)
    conc_s[$srv]=$(elapsed "$t0" "$t1")
    conc_hwm[$srv]=$(kib "$pid" VmHWM)
    log "$clients concurrent pulls, $srv: ${conc_s[$srv]} s, peak RSS ${conc_hwm[$srv]} KiB"
done
stop_servers

# --- conformance -------------------------------------------------------------------------------
suite=$work/oci-conformance.test
peers=$repo/../shared/peers; [ -f "$peers/oci-conformance.test.xz" ] || peers=/work/shared/peers
xz -dc "$peers/oci-conformance.test.xz" >"$suite"; chmod +x "$suite"
declare -A conf
for srv in berth dist; do
    rm -rf "$work/berth-root" "$work/dist-root"
    start_berth; start_dist
    port=$bport; [ "$srv" = dist ] && port=$dport
    mkdir -p "$work/conf-$srv"
    (cd "$work/conf-$srv" && OCI_ROOT_URL=http://127.0.0.1:$port OCI_NAMESPACE=conf/test \
        OCI_CROSSMOUNT_NAMESPACE=conf/other OCI_TEST_PULL=1 OCI_TEST_PUSH=1 \
        OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1 OCI_AUTOMATIC_CROSSMOUNT=0 \
        OCI_DEBUG=0 "$suite" >out.txt 2>&1 || true)
    conf[$srv]=$(python3 - "$work/conf-$srv/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
p = f = s = 0
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if not tc.get("name", "").startswith("OCI Distribution Conformance Tests"):
        continue  # the suite's "html custom reporter" entry is not a spec
    if tc.find("failure") is not None or tc.find("error") is not None: f += 1
    elif tc.find("skipped") is not None: s += 1
    else: p += 1
print(f"{p} passed, {f} failed, {s} skipped of {p + f + s} specs")
PY
)
    stop_servers
    log "conformance, $srv: ${conf[$srv]}"
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}' if $2 > 0 else '-')"; }
{
    echo "| figure | berth registry | distribution 2.8 | berth / distribution |"
    echo "|---|---:|---:|---:|"
    for img in busybox layers5; do
        for op in push pull; do
            if [ "$op" = push ]; then b=$(median ${push[berth-$img]}); d=$(median ${push[dist-$img]});
            else b=$(median ${pull[berth-$img]}); d=$(median ${pull[dist-$img]}); fi
            echo "| $op $img (skopeo, median of $runs) [s] | $b | $d | $(ratio "$b" "$d") |"
        done
    done
    echo "| idle RSS [MiB] | $(python3 -c "print(f'{${idle_b}/1024:.1f}')") | $(python3 -c "print(f'{${idle_d}/1024:.1f}')") | $(ratio "$idle_b" "$idle_d") |"
    echo "| $clients concurrent pulls of layers5 [s] | ${conc_s[berth]} | ${conc_s[dist]} | $(ratio "${conc_s[berth]}" "${conc_s[dist]}") |"
    tb=$(python3 -c "print(f'{$clients * $img_bytes / 1048576 / ${conc_s[berth]}:.0f}')")
    td=$(python3 -c "print(f'{$clients * $img_bytes / 1048576 / ${conc_s[dist]}:.0f}')")
    echo "| throughput of those pulls [MiB/s] | $tb | $td | $(ratio "$tb" "$td") |"
    echo "| peak RSS during them [MiB] | $(python3 -c "print(f'{${conc_hwm[berth]}/1024:.1f}')") | $(python3 -c "print(f'{${conc_hwm[dist]}/1024:.1f}')") | $(ratio "${conc_hwm[berth]}" "${conc_hwm[dist]}") |"
    echo "| OCI conformance (all workflows, delete on) | ${conf[berth]} | ${conf[dist]} | |"
    echo
    echo "layers5 compressed: $img_bytes bytes; machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "$out/results.md"
