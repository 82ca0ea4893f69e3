#!/usr/bin/env bash
# Build berth and run every test: the formatting and lint gates (`cargo fmt --check`, `cargo
# clippy -D warnings`), the crates' own tests, a short smoke of the cargo-fuzz targets
# (scripts/fuzz-smoke.sh; BERTH_FUZZ_SMOKE=0 leaves it out), then the integration suite (real docker CLI,
# docker SDK and berth CLI against an isolated berth daemon). Run as root.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k security     # extra arguments go to pytest
#
# Exits non-zero if anything failed (a lint or format finding included).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash scripts/setup.sh || { echo "test.sh: setup failed" >&2; exit 1; }

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

status=0
start=$(date +%s)

echo "=== cargo fmt --all --check ==="
if ! cargo fmt --all --check; then
    echo "test.sh: cargo fmt --check FAILED (run cargo fmt --all)" >&2
    status=1
fi

echo "=== cargo clippy --workspace --all-targets --release -- -D warnings ==="
if ! cargo clippy --workspace --all-targets --release -- -D warnings; then
    echo "test.sh: cargo clippy FAILED" >&2
    status=1
fi

echo "=== python3 scripts/module-cycles.py (no import cycle between a crate's modules) ==="
if ! python3 scripts/module-cycles.py; then
    echo "test.sh: an import cycle between modules (scripts/module-cycles.py)" >&2
    status=1
fi

echo "=== cargo test --workspace --release ==="
if ! cargo test --workspace --release --no-fail-fast; then
    echo "test.sh: cargo test FAILED" >&2
    status=1
fi

echo "=== scripts/fuzz-smoke.sh (each cargo-fuzz target ${FUZZ_SECONDS:-20} s) ==="
if [ "${BERTH_FUZZ_SMOKE:-1}" = 0 ]; then
    echo "test.sh: fuzz smoke left out (BERTH_FUZZ_SMOKE=0)"
elif ! bash scripts/fuzz-smoke.sh; then
    echo "test.sh: fuzz smoke FAILED" >&2
    status=1
fi

echo "=== pytest tests/integration ==="
export PYTHONDONTWRITEBYTECODE=1
if ! python3 -m pytest -v tests/integration "$@"; then
    echo "test.sh: integration tests FAILED" >&2
    status=1
fi

echo "test.sh: finished in $(( $(date +%s) - start ))s (after setup), status $status"
exit $status
