#!/usr/bin/env bash
# berth in one command: set up, start the daemon (if it is not running), load the busybox test
# image and run a container. Then point the docker CLI at berth.
#
#   bash scripts/demo.sh
#
# The daemon uses the defaults: socket unix:///run/berth/berth.sock, data root /var/lib/berth,
# exec root /run/berth; it logs to /var/log/berth.log and keeps running after the demo
# (stop it with: kill "$(cat /run/berth/berth.pid)").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

sock=/run/berth/berth.sock
berth="$repo/target/release/berth"
image="$repo/tests/fixtures/out/busybox.tar"
logfile=/var/log/berth.log

bash scripts/setup.sh

ping_daemon() {
    python3 - "$sock" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
sys.exit(0 if data.startswith(b"HTTP/1.1 200") else 1)
PY
}

if ping_daemon; then
    echo "berth daemon already running on $sock"
else
    echo "starting berth daemon (log: $logfile)"
    setsid "$berth" daemon </dev/null >>"$logfile" 2>&1 &
    for _ in $(seq 300); do
        ping_daemon && break
        if ! kill -0 $! 2>/dev/null; then
            echo "berth daemon exited; last lines of $logfile:" >&2
            tail -n 30 "$logfile" >&2
            exit 1
        fi
        sleep 0.1
    done
    ping_daemon || { echo "berth daemon did not answer on $sock" >&2; tail -n 30 "$logfile" >&2; exit 1; }
fi

export DOCKER_HOST="unix://$sock"
echo
echo "+ berth load -i ${image#"$repo"/}"
"$berth" load -i "$image"
echo "+ berth run --rm busybox echo \"hello from berth\""
"$berth" run --rm busybox echo "hello from berth"

cat <<EOT

berth is running. The docker CLI works against it unchanged:

    export DOCKER_HOST=unix://$sock
    docker run --rm busybox echo hi
    docker run -it --rm busybox sh
    docker run -d --name web busybox sleep 300 && docker ps && docker exec web ps
    docker logs web; docker stop web; docker rm web

or without exporting: DOCKER_HOST=unix://$sock docker ps -a
The berth CLI takes the same commands: $berth ps -a
EOT
