#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (libFuzzer with AddressSanitizer), each run briefly: the
# Dockerfile parser, the layer-tar unpacker, reference parsing and the Go-template formatter.
# A crash fails the script and leaves its input under fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz-smoke.sh              # every target, FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=3600 bash scripts/fuzz-smoke.sh layer_tar   # longer, by hand, one target
#
# The machine's toolchain is stable: cargo-fuzz's nightly flags (-Zsanitizer=address, ...) are
# let through with RUSTC_BOOTSTRAP=1. cargo-fuzz comes from crates.io (scripts/setup.sh installs
# it). The corpus grows under fuzz/corpus/<target>/ (not committed). scripts/test.sh runs this
# (BERTH_FUZZ_SMOKE=0 leaves it out); the first ASan build of fuzz/ takes minutes (README).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo/fuzz"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
cargo fuzz --version >/dev/null 2>&1 || {
    echo "fuzz-smoke.sh: cargo-fuzz is missing (cargo install cargo-fuzz, or FUZZ=1 bash scripts/setup.sh)" >&2
    exit 1
}
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

start=$(date +%s)
echo "=== cargo fuzz build (ASan) ==="
for t in "${targets[@]}"; do
    cargo fuzz build "$t"
done
echo "fuzz-smoke.sh: built in $(( $(date +%s) - start ))s"
for t in "${targets[@]}"; do
    echo "=== cargo fuzz run $t (${seconds}s) ==="
    mkdir -p "corpus/$t"
    # -timeout: no input may take 10 s; -rss_limit_mb: nor 2 GiB.
    log=$(mktemp)
    # -seed: the CI explores the same inputs on every run (FUZZ_SEED=0 lets libFuzzer pick).
    if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 \
        -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        grep -E -A4 "panicked|ERROR: |SUMMARY" "$log" | head -40
        rm -f "$log"
        echo "fuzz-smoke.sh: $t FAILED (the input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    grep -E "^Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$log"
    rm -f "$log"
done
echo "fuzz-smoke.sh: finished in $(( $(date +%s) - start ))s"
