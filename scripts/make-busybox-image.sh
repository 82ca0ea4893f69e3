#!/usr/bin/env bash
# Build the busybox test image as a docker-archive (what `docker save` writes).
# Usage: scripts/make-busybox-image.sh OUT.tar [TAG]     (TAG defaults to busybox:latest)
# Needs Debian's busybox-static (/bin/busybox) and python3. Output is deterministic.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUT.tar [TAG]" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
tag=${2:-busybox:latest}
mkdir -p "$(dirname "$out")"
exec python3 "$here/make_image.py" --busybox "${BUSYBOX:-/bin/busybox}" "$out" "$tag"
