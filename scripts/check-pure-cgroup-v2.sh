#!/usr/bin/env bash
# Checks berth on a host whose cgroups are pure v2 (one cgroup2 mount at /sys/fs/cgroup), the
# layout of most current distributions. The build machine's cgroups are hybrid, so CI cannot
# take this path; run this script on a pure-v2 host with binaries built elsewhere.
#
# Usage: scripts/check-pure-cgroup-v2.sh DIR
#   DIR holds: bin/{berth,berthd,berth-runtime,berth-shim} (copied together from target/release:
#   `berth daemon` execs the berthd next to berth), tests/* (runtime crate test executables from
#   `cargo test --release -p berth-runtime --no-run`), busybox (static), runc, busybox.tar (the
#   image from scripts/make-busybox-image.sh) and optionally lib/ (libseccomp.so.2).
# Exits non-zero when any check fails; prints one PASS/FAIL line per check.
set -uo pipefail
dir=$(cd "$1" && pwd)
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass "$1 ($3)"; else fail "$1: expected '$2', got '$3'"; fi
}

echo "== host"
uname -a
fstype=$(stat -fc %T /sys/fs/cgroup)
echo "cgroup fs: $fstype; controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
[ "$fstype" = cgroup2fs ] || { echo "not a pure cgroup v2 host"; exit 2; }
for b in berth berthd berth-runtime berth-shim; do
    [ -x "$dir/bin/$b" ] || { echo "$dir/bin/$b missing (copy it from target/release)"; exit 2; }
done

# The runtime's tests compare with runc and copy /bin/busybox into their bundles.
[ -x /bin/busybox ] || install -m 0755 "$dir/busybox" /bin/busybox
command -v runc >/dev/null || install -m 0755 "$dir/runc" /usr/local/sbin/runc
if ! ldconfig -p | grep -q libseccomp.so.2 && [ -d "$dir/lib" ]; then
    export LD_LIBRARY_PATH="$dir/lib"
fi
# Test executables have the path of berth-runtime compiled in.
want=$(grep -ao '/[^"[:cntrl:]]*target/release/berth-runtime' "$dir"/tests/lifecycle-* | head -1)
if [ -n "$want" ] && [ ! -e "$want" ]; then
    mkdir -p "$(dirname "$want")" && cp "$dir/bin/berth-runtime" "$want"
fi

echo "== runtime crate tests"
for t in "$dir"/tests/*; do
    name=$(basename "$t")
    if "$t" --test-threads=2 >"/tmp/$name.log" 2>&1; then
        pass "runtime tests $name ($(grep -o '[0-9]* passed' "/tmp/$name.log" | tail -1))"
    else
        fail "runtime tests $name"
        grep -E "^test .* FAILED|panicked|assert" "/tmp/$name.log" | head -20
    fi
done

echo "== engine on pure v2"
base=$(mktemp -d /tmp/berth-v2.XXXXXX)
sock=$base/berth.sock
berth() { "$dir/bin/berth" -H "unix://$sock" "$@"; }
start_daemon() {
    "$dir/bin/berth" daemon --data-root "$base/data" --exec-root "$base/exec" \
        -H "unix://$sock" >>"$base/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do berth version >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "daemon did not start:"; tail -20 "$base/daemon.log"; exit 1
}
start_daemon
berth load -i "$dir/busybox.tar" >/dev/null || fail "load"

check "memory.max" 67108864 "$(berth run --rm --memory 64m busybox cat /sys/fs/cgroup/memory.max)"
check "pids.max" 20 "$(berth run --rm --pids-limit 20 busybox cat /sys/fs/cgroup/pids.max)"
check "cpu.max" "50000 100000" "$(berth run --rm --cpus 0.5 busybox cat /sys/fs/cgroup/cpu.max)"
check "cpu.weight (shares 512)" 20 "$(berth run --rm --cpu-shares 512 busybox cat /sys/fs/cgroup/cpu.weight)"
check "cgroup namespace root" "0::/" "$(berth run --rm busybox cat /proc/self/cgroup)"

berth run --name oom --memory 16m busybox sh -c 'x=$(head -c 64m /dev/zero | tr "\0" a); echo $x' >/dev/null 2>&1
check "OOM kill exit code" 137 "$(berth inspect -f '{{.State.ExitCode}}' oom)"
check "OOMKilled" true "$(berth inspect -f '{{.State.OOMKilled}}' oom)"
berth rm oom >/dev/null

out=$(berth run --rm --pids-limit 20 busybox sh -c 'for i in $(seq 50); do sleep 2 & done; wait' 2>&1)
case $out in *"can't fork"*|*"emporarily unavailable"*) pass "pids limit stops forks" ;; *) fail "pids limit: $out" ;; esac

# Device rules are an eBPF program on v2: /dev/null is allowed, mknod of another device is not.
check "allowed device" ok "$(berth run --rm busybox sh -c 'echo x >/dev/null && echo ok')"
out=$(berth run --rm --cap-add MKNOD busybox sh -c 'mknod /tmp/sda b 8 0 && head -c1 /tmp/sda >/dev/null && echo opened || echo denied' 2>&1)
check "denied block device" denied "$(echo "$out" | tail -1)"
check "--device passes a device" ok "$(berth run --rm --device /dev/zero:/dev/myzero busybox sh -c 'head -c1 /dev/myzero >/dev/null && echo ok')"

# update changes a running container's limits.
berth run -d --name upd --memory 64m busybox sleep 1000 >/dev/null
berth update --memory 128m --memory-swap 256m upd >/dev/null
check "update memory.max" 134217728 "$(berth exec upd cat /sys/fs/cgroup/memory.max)"
stats=$(berth stats --no-stream --format '{{.MemUsage}}' upd 2>&1)
case $stats in *MiB*|*KiB*) pass "stats ($stats)" ;; *) fail "stats: $stats" ;; esac

# The shim of an idle container stays under 1 MiB resident.
upd_id=$(berth inspect -f '{{.Id}}' upd)
sleep 1
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$(cat "$base/exec/shims/$upd_id/shim.pid")/status")
if [ "${rss:-99999}" -le 1024 ]; then pass "idle shim RSS ($rss KiB)"; else fail "idle shim RSS $rss KiB"; fi

# A daemon killed with SIGKILL leaves the container running; a new daemon picks it up.
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
start_daemon
check "container survives daemon SIGKILL" running "$(berth inspect -f '{{.State.Status}}' upd)"
check "exec after restart" hi "$(berth exec upd echo hi)"
berth rm -f upd >/dev/null
leftover=$(find /sys/fs/cgroup/berth -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
if [ -z "$leftover" ]; then pass "no container cgroups left"; else fail "cgroups left: $leftover"; fi

kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
echo "== $fails failed"
[ "$fails" -eq 0 ]
