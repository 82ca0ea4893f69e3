#!/usr/bin/env bash
# Verified pull cost (issue 17): the median of N cold pulls (rmi, then pull) of the busybox
# image from a local docker-registry, with no signature policy and with a sigstoreSigned policy
# (the same image, signed by `berth push --sign-by`), interleaved on one private daemon.
#
#   bash bench/verified-pull.sh [--runs N] [--bin DIR]      (as root; needs docker-registry)
#
# The peer: skopeo 1.13.3 (../shared/peers/skopeo.xz, unpacked to /tmp/peers) copying the same
# image to a dir: with an accept-anything policy and with the same sigstoreSigned policy.
#
# Prints a markdown table; the daemon, registry and keys live under a temporary directory that
# is removed afterwards.
set -euo pipefail
RUNS=10
BIN="$(cd "$(dirname "$0")/.." && pwd)/target/release"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ARCHIVE="${BERTH_TEST_IMAGE:-$REPO/tests/fixtures/out/busybox.tar}"
[ -f "$ARCHIVE" ] || bash "$REPO/scripts/make-busybox-image.sh" "$ARCHIVE" >/dev/null
command -v docker-registry >/dev/null || { echo "docker-registry is not installed" >&2; exit 1; }
SKOPEO=/tmp/peers/skopeo
if [ ! -x "$SKOPEO" ]; then
    SHARED="$REPO/../shared"; [ -d "$SHARED/peers" ] || SHARED=/work/shared
    mkdir -p /tmp/peers && xz -dc "$SHARED/peers/skopeo.xz" > "$SKOPEO.$$" && chmod +x "$SKOPEO.$$" && mv "$SKOPEO.$$" "$SKOPEO"
fi
export RUNS BIN ARCHIVE SKOPEO
exec python3 - <<'PY'
import json, os, shutil, socket, statistics, subprocess, tempfile, time

runs, bin_dir, archive = int(os.environ["RUNS"]), os.environ["BIN"], os.environ["ARCHIVE"]
base = tempfile.mkdtemp(prefix="berth-vpull.")
procs = []

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(p):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", p), timeout=1).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {p}")

try:
    rport = port()
    with open(f"{base}/registry.yml", "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {base}/reg\n"
                f"http:\n  addr: 127.0.0.1:{rport}\n")
    procs.append(subprocess.Popen(["docker-registry", "serve", f"{base}/registry.yml"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_port(rport)
    sock = f"{base}/b.sock"
    policy = f"{base}/policy.json"
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=f"{base}/cfg")
    log = open(f"{base}/daemon.log", "wb")
    procs.append(subprocess.Popen([f"{bin_dir}/berth", "daemon", "--data-root", f"{base}/data",
                                   "--exec-root", f"{base}/run", "-H", f"unix://{sock}",
                                   "--bridge", "none", "--signature-policy", policy,
                                   "--registries-d", f"{base}/regd"],
                                  stdout=log, stderr=subprocess.STDOUT))
    for _ in range(300):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    def berth(*a):
        p = subprocess.run([f"{bin_dir}/berth", *a], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"berth {' '.join(a)} failed: {p.stderr}")
        return p.stdout
    time.sleep(0.5)
    berth("load", "-i", archive)
    ref = f"127.0.0.1:{rport}/bench/bb:v1"
    with open(f"{base}/pass", "w") as f:
        f.write("bench\n")
    berth("trust", "keygen", "--output-prefix", f"{base}/k", "--passphrase-file", f"{base}/pass")
    berth("tag", "busybox", ref)
    berth("push", "--sign-by", f"{base}/k.private", "--sign-passphrase-file", f"{base}/pass", ref)
    berth("rmi", ref, "busybox")
    signed = json.dumps({"default": [{"type": "sigstoreSigned", "keyPath": f"{base}/k.pub"}]})
    times = {"no policy": [], "sigstoreSigned": []}
    for i in range(runs + 1):
        for mode in times:
            if mode == "no policy":
                if os.path.exists(policy):
                    os.remove(policy)
            else:
                with open(policy, "w") as f:
                    f.write(signed)
            t = time.perf_counter()
            berth("pull", "-q", ref)
            dt = time.perf_counter() - t
            berth("rmi", ref)
            if i > 0:  # the first round warms caches
                times[mode].append(dt * 1000)
    skopeo = os.environ["SKOPEO"]
    os.makedirs(f"{base}/sregd")
    with open(f"{base}/sregd/l.yaml", "w") as f:
        f.write(f"docker:\n  127.0.0.1:{rport}:\n    use-sigstore-attachments: true\n")
    with open(f"{base}/accept.json", "w") as f:
        f.write(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    with open(f"{base}/signed.json", "w") as f:
        f.write(signed)
    peer = {"no policy": [], "sigstoreSigned": []}
    for i in range(runs + 1):
        for mode, pol in (("no policy", "accept.json"), ("sigstoreSigned", "signed.json")):
            out = tempfile.mkdtemp(dir=base)
            t = time.perf_counter()
            p = subprocess.run([skopeo, "--registries.d", f"{base}/sregd", "--policy", f"{base}/{pol}",
                                "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"],
                               capture_output=True, text=True)
            dt = time.perf_counter() - t
            if p.returncode != 0:
                raise SystemExit(f"skopeo copy failed: {p.stderr}")
            shutil.rmtree(out)
            if i > 0:
                peer[mode].append(dt * 1000)
    print(f"| client, policy | median of {runs} cold pulls (ms) | min | max |")
    print("|---|---|---|---|")
    for who, table in (("berth pull", times), ("skopeo copy to dir:", peer)):
        for mode, t in table.items():
            print(f"| {who}, {mode} | {statistics.median(t):.1f} | {min(t):.1f} | {max(t):.1f} |")
    for who, table in (("berth", times), ("skopeo", peer)):
        a, b = statistics.median(table["no policy"]), statistics.median(table["sigstoreSigned"])
        print(f"\n{who}: verification adds {b - a:.1f} ms per pull (median)")
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(base, ignore_errors=True)
PY
