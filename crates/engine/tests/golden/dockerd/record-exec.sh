#!/bin/bash
# Needs: dockerd ... --add-runtime rec=/tmp/gd/runc-rec (runc-rec here, copied there).
# Records the process dockerd hands runc for each exec case: the containers run under the "rec"
# runtime (dockerd --add-runtime rec=runc-rec), a runc wrapper that copies `runc exec --process
# FILE` to /tmp/gd/rawexec before running runc. The exec bodies are the golden cases' own,
# posted to the API as the CLI would; start is detached.
D="docker -H unix:///tmp/gd/sock"
api() { curl -s --unix-socket /tmp/gd/sock -H 'Content-Type: application/json' -X POST "http://x/v1.41$1" -d "$2"; }
mkdir -p /tmp/gd/rawexec/cases
$D run -d --runtime rec --name c-plain --network none busybox /bin/sleep 3600 >/dev/null
$D run -d --runtime rec --name c-tty --network none -it busybox /bin/sleep 3600 >/dev/null
$D run -d --runtime rec --name c-sec --network none --security-opt no-new-privileges --security-opt seccomp=unconfined busybox /bin/sleep 3600 >/dev/null
for c in c-plain c-sec; do  # `app`: uid 1000, gid 1000, groups 1000 and 27 as in golden.rs
  $D exec $c sh -c 'echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd; echo app:x:1000: >> /etc/group; echo g27:x:27:app >> /etc/group; mkdir -p /home/app /srv'
done
rec() { # name container body
  rm -f /tmp/gd/rawexec/*.json
  local id; id=$(api /containers/$2/exec "$3" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
  api /exec/$id/start '{"Detach": true, "Tty": '$(echo "$3" | grep -q '"Tty": true' && echo true || echo false)'}' >/dev/null
  sleep 1
  local f; f=$(ls /tmp/gd/rawexec/*.json 2>/dev/null | tail -1)
  [ -n "$f" ] && cp "$f" /tmp/gd/rawexec/cases/$1.json || echo "FAIL $1"
  echo "$1 $($D inspect -f '{{.Id}}' $2)" >> /tmp/gd/rawexec/cases/ids
}
rec plain c-plain '{"Cmd": ["ls", "-l"]}'
rec user c-plain '{"Cmd": ["id"], "User": "app"}'
rec env c-plain '{"Cmd": ["env"], "Env": ["FOO=bar", "PATH=/opt/bin"]}'
rec workdir c-plain '{"Cmd": ["pwd"], "WorkingDir": "/tmp"}'
rec tty c-plain '{"Cmd": ["sh"], "Tty": true, "AttachStdin": true}'
rec privileged c-plain '{"Cmd": ["sh"], "Privileged": true}'
rec no-tty-in-tty-container c-tty '{"Cmd": ["ls"]}'
rec all c-sec '{"Cmd": ["sh"], "Tty": true, "User": "app", "Env": ["A=1"], "WorkingDir": "/srv", "Privileged": true}'
