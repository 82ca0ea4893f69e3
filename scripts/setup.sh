#!/usr/bin/env bash
# Prepare this machine to build, run and test berth. Idempotent: runs apt-get and pip only for
# what is missing, then builds the release binaries and the busybox test image.
#
#   bash scripts/setup.sh            # everything
#   SKIP_BUILD=1 bash scripts/setup.sh    # packages and test image only
#
# Debian 12, as root. Needs package registries (apt, PyPI, crates.io) only.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root" >&2
    exit 1
fi

# --- Debian packages --------------------------------------------------------------------------
# runc: the OCI runtime; busybox-static: the test image; tini: `--init` (/usr/bin/tini-static);
# iptables/iproute2: networking; hyperfine: bench/; pkg-config + libseccomp-dev: builds;
# docker-registry, skopeo, apache2-utils (htpasswd), openssl: the registry tests;
# docker-compose (v1): the compose build test; libc6-dev + libgcc-12-dev: libc.a and libgcc_eh.a
# for the statically linked berth-shim (crates/shim/build.rs).
apt_pkgs=(runc busybox-static tini iptables iproute2 hyperfine pkg-config libseccomp-dev docker-registry skopeo apache2-utils openssl docker-compose libc6-dev libgcc-12-dev)
missing=()
for p in "${apt_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi
# The registry tests start their own docker-registry on 127.0.0.1; the package's service must
# not run (no-op where systemd is not PID 1).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# --- Python test dependencies -----------------------------------------------------------------
# schemathesis: tests/integration/test_api_fuzz.py (pinned: its generated cases follow the seed
# only within one version).
if ! python3 -c 'import docker, pytest, pytest_timeout, schemathesis; assert schemathesis.__version__ == "4.32.5"' 2>/dev/null; then
    log "pip install docker pytest pytest-timeout schemathesis==4.32.5"
    pip_args=(install --quiet --disable-pip-version-check docker pytest pytest-timeout schemathesis==4.32.5)
    # Debian's own python3 refuses pip installs into the system (PEP 668); pyenv's does not.
    python3 -m pip "${pip_args[@]}" 2>/dev/null ||
        python3 -m pip "${pip_args[@]}" --break-system-packages
else
    log "Python packages present"
fi

# --- Build ----------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release --workspace
    for b in berth berthd berth-runtime berth-shim; do
        [ -x "target/release/$b" ] || { echo "setup.sh: target/release/$b was not built" >&2; exit 1; }
    done
fi

# --- cargo-fuzz (scripts/fuzz-smoke.sh, which test.sh runs) ---------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz"
    cargo install cargo-fuzz
else
    log "cargo-fuzz present"
fi

# --- Test image -----------------------------------------------------------------------------
image=tests/fixtures/out/busybox.tar
if [ ! -s "$image" ] || [ /bin/busybox -nt "$image" ] || [ scripts/make_image.py -nt "$image" ]; then
    log "building $image"
    bash scripts/make-busybox-image.sh "$image" busybox:latest
else
    log "$image up to date"
fi
