#!/bin/bash
# Records the config.json a private dockerd (see README.md, "Recorded against dockerd") hands runc
# for each run case, into /tmp/gd/raw; normalise.py turns them into run/*.json.
# Needs /tmp/gd/srv bind-mounted on itself and made rshared (for the `:rshared` bind).
D="docker -H unix:///tmp/gd/sock"
S=/tmp/gd/srv
rec() { # name flags...
  local name=$1; shift
  local id
  # /bin/sleep: `-e PATH=/opt/bin` hides `sleep` from the PATH lookup.
  id=$($D create --name "g-$name" "$@" busybox /bin/sleep 3600) || { echo "FAIL create $name"; return; }
  echo "$name $id" >> /tmp/gd/raw/ids
  # Copy the bundle's config.json as soon as it exists: a start that fails (--privileged where
  # the host's bounding set lacks a capability) removes the bundle again.
  local f=/tmp/gd/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$id/config.json
  timeout 60 bash -c "until [ -s $f ]; do :; done; cp $f /tmp/gd/raw/$name.json" &
  local poller=$!
  if $D start "g-$name" >/dev/null; then cp "$f" /tmp/gd/raw/$name.json; else echo "FAIL start $name"; fi
  wait $poller
  python3 -c "import json,sys; json.load(open(sys.argv[1]))" /tmp/gd/raw/$name.json || echo "FAIL copy $name"
}
mkdir -p /tmp/gd/raw
$D run -d --name web --network none busybox sleep 3600 >/dev/null
rec plain --network none
rec user --network none --user 1000:1000
rec env --network none -e FOO=bar --env HOME=/tmp -e PATH=/opt/bin
rec workdir --network none --workdir /app
rec privileged --network none --privileged
rec cap-add-drop --network none --cap-add NET_ADMIN --cap-add sys_ptrace --cap-drop MKNOD
rec read-only --network none --read-only
rec resources --network none --memory 64m --memory-reservation 32m --cpus 1.5 --cpu-shares 512 --cpuset-cpus 0-1 --pids-limit 100
rec ulimit --network none --ulimit nofile=1024:2048 --ulimit nproc=512 --ulimit core=-1
rec volumes --network none -v $S/data:/data:ro -v $S/shared:/shared/sub:rshared -v cache:/cache
rec tmpfs --network none --tmpfs /run:size=64m,exec --tmpfs /tmp
rec network-none --network none
rec network-host --network host
rec network-container --network container:web
rec security-opt --network none --security-opt no-new-privileges --security-opt seccomp=unconfined
rec device --network none --device /dev/null:/dev/mynull:rw
rec sysctl --network none --sysctl net.ipv4.ip_forward=1
rec tty --network none -it
rec init-hostname-shm --network none --init --hostname web --shm-size 128m
rec host-namespaces --network none --pid host --ipc host --uts host
WEBPID=$($D inspect -f '{{.State.Pid}}' web); echo "web $WEBPID" >> /tmp/gd/raw/ids
echo "webid $($D inspect -f '{{.Id}}' web)" >> /tmp/gd/raw/ids
