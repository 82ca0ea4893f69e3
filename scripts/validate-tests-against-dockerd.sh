#!/usr/bin/env bash
# Check the integration suite's expectations against the real Docker daemon: runs
# tests/integration with a stand-in "berth" whose `berth daemon` is a private dockerd
# (--live-restore, no iptables, no bridge) and whose other commands are the docker CLI.
# Needs dockerd (Debian's docker.io; bench/run-vs-dockerd.sh --yes installs it).
#
#   bash scripts/validate-tests-against-dockerd.sh [pytest args, e.g. -k security]
#
# Known differences with dockerd 20.10 (expected failures there, berth's stricter rules):
#   test_path_traversal_layer_refused (dockerd confines ../ entries instead of refusing),
#   test_second_daemon_same_data_root_refused (dockerd fails late, with no lock message),
#   test_privileged (dockerd asks for caps outside the host's bounding set),
#   test_versioned_paths / test_malformed_json_* (API 1.41 max; invalid JSON gives 500),
#   test_raw_exec_detach_keys (dockerd 20.10 ends the exec when a client detaches from it:
#   its escape error arrives wrapped and is taken for a failure; later dockerd and berth keep
#   the exec running).
# berth's own binaries, which the stand-in lacks (expected failures there):
#   test_berth_daemon_becomes_berthd_in_place, test_berth_daemon_usage_errors,
#   test_berth_runtime_runs_berth_runtime, test_the_client_links_neither_daemon_nor_runtime.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v dockerd >/dev/null || { echo "dockerd not installed" >&2; exit 1; }
fake=$(mktemp -d /tmp/berth-as-dockerd.XXXXXX)
trap 'rm -rf "$fake"' EXIT
cat >"$fake/berth" <<'WRAP'
#!/usr/bin/env bash
if [ "${1:-}" = daemon ]; then
    shift
    args=() data=/var/lib/berth exec_root=/run/berth
    while [ $# -gt 0 ]; do
        case "$1" in
            --data-root) data=$2; args+=(--data-root "$2"); shift 2 ;;
            --exec-root) exec_root=$2; args+=(--exec-root "$2"); shift 2 ;;
            -H) args+=(-H "$2"); shift 2 ;;
            --help) echo "--data-root --exec-root -H"; exit 0 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    ns=$(printf %s "$data" | md5sum | head -c8)
    exec dockerd "${args[@]}" --live-restore --pidfile "$exec_root/docker.pid" \
        --iptables=false --ip6tables=false --bridge=none --init-path /usr/bin/tini-static \
        --containerd-namespace "b$ns" --containerd-plugins-namespace "p$ns"
fi
exec "${DOCKER_BIN:-/usr/local/bin/docker}" "$@"
WRAP
chmod +x "$fake/berth"
for b in berth-shim berthd; do  # the suite checks that they sit next to berth
    printf '#!/bin/sh\nexit 1\n' >"$fake/$b"
    chmod +x "$fake/$b"
done
cd "$repo"
BERTH_BIN="$fake/berth" python3 -m pytest -v tests/integration "$@"
