#!/usr/bin/env bash
# runtime-vs-runc.sh — `runc run` vs `berth-runtime run` of the same busybox bundle running `true`.
#
#   bash bench/runtime-vs-runc.sh [--runs N] [--berth PATH] [--out DIR]
#
# Needs root, runc, busybox-static (/bin/busybox), hyperfine and /usr/bin/time. Builds
# berth-runtime (release) unless --berth is given. Every state root and bundle lives in a temp
# dir that is removed on exit; cgroups are /berth-bench/{runc,berth}-N and are removed by the
# runtimes themselves (`run` deletes the container when it exits).
set -euo pipefail

RUNS=100
BERTH=""
OUT="/tmp/berth-runtime-bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --berth) BERTH="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
for t in runc hyperfine /usr/bin/time /bin/busybox; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done

HERE="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$BERTH" ]; then
  (cd "$HERE" && cargo build --release -p berth-runtime >&2)
  BERTH="$HERE/target/release/berth-runtime"
fi

WORK="$(mktemp -d /tmp/rtbench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
B="$WORK/bundle"
# shellcheck source=bench/busybox-bundle.sh
. "$(dirname "${BASH_SOURCE[0]}")/busybox-bundle.sh"
make_true_bundle "$B"
mkdir -p "$OUT" "$WORK/rr" "$WORK/br"

# each run gets a fresh ID (hyperfine's {n} is not available for plain commands: use a counter file)
cat > "$WORK/one.sh" <<EOF2
#!/bin/sh
n=\$(( \$(cat "$WORK/\$1.n" 2>/dev/null || echo 0) + 1 )); echo \$n > "$WORK/\$1.n"
exec "\$2" --root "$WORK/\$1" run --bundle "$B" "\$1-\$n" >/dev/null
EOF2
chmod +x "$WORK/one.sh"

hyperfine --warmup 5 --runs "$RUNS" --export-markdown "$OUT/hyperfine.md" --export-json "$OUT/hyperfine.json" \
  -n "runc run" "$WORK/one.sh rr runc" \
  -n "berth-runtime run" "$WORK/one.sh br $BERTH"

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
R_RSS=$(rss runc --root "$WORK/rr" run --bundle "$B" rss-runc)
B_RSS=$(rss "$BERTH" --root "$WORK/br" run --bundle "$B" rss-berth)
{
  echo "## runtime: runc run vs berth-runtime run (busybox \`true\`), $RUNS runs"
  echo
  cat "$OUT/hyperfine.md"
  echo
  echo "| runtime | peak RSS of the runtime process (KiB, /usr/bin/time -v) |"
  echo "|---|---|"
  echo "| runc $(runc --version | head -1 | awk '{print $3}') | $R_RSS |"
  echo "| berth-runtime | $B_RSS |"
} | tee "$OUT/results.md"
left=$(ls "$WORK/rr" "$WORK/br" | grep -v '^$' | grep -v ':$' || true)
[ -z "$left" ] || { echo "state left behind: $left" >&2; exit 1; }
