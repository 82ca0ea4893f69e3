# Sourced by the runtime benchmarks: make_true_bundle DIR makes an OCI bundle in DIR (runc's
# default spec) whose rootfs is Debian's static busybox and whose process runs `true`.
make_true_bundle() {
  local b="$1"
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for a in sh true; do ln -s busybox "$b/rootfs/bin/$a"; done
  runc spec --bundle "$b"
  python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"), indent=1)
PY
}
