#!/usr/bin/env bash
# Refreshes crates/shim/link/hot-symbols.txt (see crates/shim/build.rs): links berth-shim with
# the list, runs containers through a private daemon (idle, a burst of output, an exit) while
# `perf` records the shim's page faults, adds every function whose first instruction fetch
# faulted outside the packed hot code, and repeats until nothing new faults. Needs root, perf,
# and the release `berth` and `berth-runtime` in target/release. Run after a toolchain upgrade.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
list=$repo/crates/shim/link/hot-symbols.txt
work=$(mktemp -d /tmp/bhs.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
cp "$repo/target/release/berth" "$repo/target/release/berth-runtime" "$work/bin/"

one_round() {
    (cd "$repo" && CARGO_TARGET_DIR=$work/target cargo rustc -q --release -p berth-shim \
        --bin berth-shim -- -C strip=none)
    cp "$work/target/release/berth-shim" "$work/bin/berth-shim"
    perf record -q -o "$work/pf.data" -e exceptions:page_fault_user -a -- \
        bash "$repo/crates/shim/link/exercise-shim.sh" "$work" >/dev/null 2>&1
    perf script -i "$work/pf.data" -F comm,pid,tid,trace 2>/dev/null |
        python3 -c '
import bisect, re, subprocess, sys
binary = sys.argv[1]
syms = []
for line in subprocess.run(["nm", "-n", binary], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r"([0-9a-f]+) (\w) (.*)", line)
    if m and m.group(2).lower() in "tiw":
        syms.append((int(m.group(1), 16), m.group(3)))
addrs = [a for a, _ in syms]
lines = sys.stdin.read().splitlines()
# the shim, its threads, and the vfork children it spawns the runtime from
pids = {l.split()[1].split("/")[0] for l in lines
        if l.split() and l.split()[0] in ("berth-shim", "client-r", "client-w", "accept", "output")}
seen = set()
for l in lines:
    m = re.search(r"(\d+)/\d+\s+address=(0x[0-9a-f]+) ip=0x[0-9a-f]+ error_code=0x14", l)
    if m and m.group(1) in pids and 0x200000 <= int(m.group(2), 16) < 0x1000000:
        name = syms[bisect.bisect_right(addrs, int(m.group(2), 16)) - 1][1]
        # .iplt stubs (after .text) show up as the last function; our own crate changes hashes
        if name not in seen and name not in ("free_mem", "strcmp") and "berth_shim" not in name:
            seen.add(name)
            print(name)
' "$work/bin/berth-shim"
}

for round in 1 2 3 4 5 6; do
    added=0
    while read -r sym; do
        if ! grep -qxF "$sym" "$list"; then
            echo "$sym" >>"$list"
            echo "round $round: added $sym"
            added=1
        fi
    done < <(one_round)
    [ "$added" = 1 ] || { echo "no new hot symbols"; exit 0; }
done
