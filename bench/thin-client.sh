#!/usr/bin/env bash
# thin-client.sh — what the client costs: `berth runtime run` (the client execs berth-runtime)
# against `berth-runtime run` of the same busybox bundle running `true`, the start-up of a
# client-only command (`berth --version`), and the binaries' sizes.
#
#   bash bench/thin-client.sh [--runs N] [--bin DIR] [--baseline DIR] [--out DIR]
#
# --bin: the directory holding berth, berthd and berth-runtime (default target/release, built
# by `cargo build --release --workspace`). --baseline: a directory with an older `berth` (and
# its berth-runtime) to compare with, e.g. a copy of target/release from before a change.
# Needs root, runc (for `runc spec`), /bin/busybox and hyperfine. State roots and the bundle live
# in a temp dir removed on exit.
set -euo pipefail

RUNS=200
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$HERE/target/release"
BASE=""
OUT="/tmp/berth-thin-client-bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --bin) BIN="$(cd "$2" && pwd)"; shift 2 ;;
    --baseline) BASE="$(cd "$2" && pwd)"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
for t in runc hyperfine /bin/busybox "$BIN/berth" "$BIN/berth-runtime"; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/clientbench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
B="$WORK/bundle"
# shellcheck source=bench/busybox-bundle.sh
. "$(dirname "${BASH_SOURCE[0]}")/busybox-bundle.sh"
make_true_bundle "$B"
mkdir -p "$OUT"

# each run gets a fresh ID and state root: one.sh ROOTNAME CMD...
cat > "$WORK/one.sh" <<EOF2
#!/bin/sh
r=\$1; shift
n=\$(( \$(cat "$WORK/\$r.n" 2>/dev/null || echo 0) + 1 )); echo \$n > "$WORK/\$r.n"
exec "\$@" --root "$WORK/\$r" run --bundle "$B" "\$r-\$n" >/dev/null
EOF2
chmod +x "$WORK/one.sh"

run_cmds=(-n "berth-runtime run" "$WORK/one.sh rt $BIN/berth-runtime"
          -n "berth runtime run" "$WORK/one.sh cl $BIN/berth runtime")
ver_cmds=(-n "berth --version" "$BIN/berth --version")
if [ -n "$BASE" ]; then
  run_cmds+=(-n "berth runtime run (baseline)" "$WORK/one.sh bl $BASE/berth runtime")
  ver_cmds+=(-n "berth --version (baseline)" "$BASE/berth --version")
fi
hyperfine --warmup 10 --runs "$RUNS" --export-markdown "$OUT/run.md" "${run_cmds[@]}"
hyperfine -N --warmup 20 --runs "$((RUNS * 5))" --export-markdown "$OUT/version.md" "${ver_cmds[@]}"
{
  echo "## berth runtime run vs berth-runtime run (busybox \`true\`), $RUNS runs"
  echo
  cat "$OUT/run.md"
  echo
  echo "## client start-up: berth --version, $((RUNS * 5)) runs"
  echo
  cat "$OUT/version.md"
  echo
  echo "| binary | bytes |"
  echo "|---|---|"
  for b in berth berthd berth-runtime berth-shim; do
    [ -e "$BIN/$b" ] && echo "| $b | $(stat -c %s "$BIN/$b") |"
  done
  [ -z "$BASE" ] || echo "| berth (baseline) | $(stat -c %s "$BASE/berth") |"
} | tee "$OUT/results.md"
left=$(ls "$WORK" | grep -E '^(rt|cl|bl)$' | while read -r d; do ls "$WORK/$d"; done)
[ -z "$left" ] || { echo "state left behind: $left" >&2; exit 1; }
