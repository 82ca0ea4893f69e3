#!/usr/bin/env python3
"""Turns the config.json files record.sh copied from a private dockerd into the files under
dockerd/run/, with the run-dependent values replaced by the placeholders berth's files use.

    normalise.py --exec RAW_DIR   (exec processes from record-exec.sh: RAW_DIR holds <case>.json
                                   and `ids`: "<case> <container id>" lines; writes exec/)
    normalise.py RAW_DIR   (RAW_DIR holds <case>.json and `ids`: "<case> <full id>" lines,
                            "web <pid>" and "webid <id>" for the --network container: target)
"""
import json, os, re, socket, sys

ID = "4f1c5a2b9d3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
DATA_ROOT, EXEC_ROOT, SRV = "/tmp/gd/data", "/tmp/gd/exec", "/tmp/gd/srv"
HERE = os.path.dirname(os.path.abspath(__file__))


def walk(v, f):
    if isinstance(v, dict):
        return {k: walk(x, f) for k, x in v.items()}
    if isinstance(v, list):
        return [walk(x, f) for x in v]
    return f(v) if isinstance(v, str) else v


def main(raw):
    ids, web_pid, web_id = {}, None, None
    for line in open(os.path.join(raw, "ids")):
        name, val = line.split()
        if name == "web":
            web_pid = val
        elif name == "webid":
            web_id = val
        else:
            ids[name] = val
    host = socket.gethostname()
    seccomp_default = json.load(open(os.path.join(raw, "plain.json")))["linux"]["seccomp"]
    with open(os.path.join(HERE, "seccomp-default.json"), "w") as f:
        json.dump(seccomp_default, f, indent=2, sort_keys=True)
        f.write("\n")
    for name, cid in sorted(ids.items()):
        spec = json.load(open(os.path.join(raw, name + ".json")))

        def s(x):
            if x == host:
                return "<host-hostname>"
            if x == "HOSTNAME=" + host:
                return "HOSTNAME=<host-hostname>"
            x = x.replace(cid, ID).replace(cid[:12], ID[:12])
            x = re.sub(r"^/proc/\d+/exe$", "/proc/<dockerd-pid>/exe", x)
            if web_id:  # the --network container: target ("web")
                x = x.replace(web_id, "<web-id>").replace(web_id[:12], "<web-hostname>")
            if web_pid:
                x = x.replace(f"/proc/{web_pid}/ns/net", "/proc/4242/ns/net")
            x = re.sub(DATA_ROOT + r"/overlay2/[0-9a-f]{64}/merged", DATA_ROOT + "/overlay2/<layer>/merged", x)
            return x.replace(DATA_ROOT, "/var/lib/berth").replace(EXEC_ROOT, "<exec-root>").replace(SRV, "/srv")

        spec = walk(spec, s)
        # The containers ran `sleep 3600` (the image's `sh` exits at once without stdin);
        # berth's cases run the image's command, `sh`.
        args = spec["process"]["args"]
        if args[-2:] == ["sleep", "3600"] or args[-2:] == ["/bin/sleep", "3600"]:
            spec["process"]["args"] = args[:-2] + ["sh"]
        hooks = spec.get("hooks", {}).get("prestart", [])
        for h in hooks:
            if h.get("args", [None])[0] == "libnetwork-setkey":
                h["args"][-1] = "<network-controller-id>"
        if spec.get("linux", {}).get("seccomp") == seccomp_default:
            spec["linux"]["seccomp"] = "<seccomp-default.json>"
        with open(os.path.join(HERE, "run", name + ".json"), "w") as f:
            json.dump(spec, f, indent=2, sort_keys=True)
            f.write("\n")


def main_exec(raw):
    os.makedirs(os.path.join(HERE, "exec"), exist_ok=True)
    for line in open(os.path.join(raw, "ids")):
        name, cid = line.split()
        proc = json.load(open(os.path.join(raw, name + ".json")))
        proc = walk(proc, lambda x: x.replace(cid, ID).replace(cid[:12], ID[:12]))
        with open(os.path.join(HERE, "exec", name + ".json"), "w") as f:
            json.dump(proc, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "--exec":
        main_exec(sys.argv[2])
    else:
        main(sys.argv[1])
