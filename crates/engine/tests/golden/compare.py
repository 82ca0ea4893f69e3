#!/usr/bin/env python3
"""Structured diff between berth's golden specs (run/<case>.json) and what dockerd handed runc
for the same flags (dockerd/run/<case>.json, and exec/<case>.json against dockerd/exec/; see README.md, "Recorded against dockerd").

    compare.py [CASE...]      every difference, per case (CASE: a run case, exec/<case>,
                              or seccomp-default)
    compare.py --summary      each difference once, with the cases it appears in

A difference is a JSON path with berth's value and dockerd's ("-" where absent). Lists are
matched by their natural key (mounts by destination, namespaces and rlimits by type, devices by
path); lists of strings are compared as sets, and a list with the same members in another order
is reported as `(order)`. The normalisation placeholders (the container ID, the data root,
`<seccomp-default.json>`, `<host-hostname>`) are the same on both sides; `root.path` (berth's
own rootfs mount vs dockerd's overlay2 layer) is left out.
"""
import json, os, sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
IGNORED = {"root.path"}
KEYS = {"mounts": "destination", "namespaces": "type", "rlimits": "type", "devices": "path"}


def short(v, n=160):
    s = "-" if v is None else json.dumps(v, sort_keys=True)
    return s if len(s) <= n else s[: n - 15] + f"… ({len(s)} chars)"


def diff(a, b, path, out):
    if path in IGNORED or a == b:
        return
    last = path.rsplit(".", 1)[-1].split("[")[0]
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            diff(a.get(k), b.get(k), f"{path}.{k}" if path else k, out)
    elif isinstance(a, list) and isinstance(b, list):
        key = KEYS.get(last)
        if key and all(isinstance(x, dict) and key in x for x in a + b):
            ka = [x[key] for x in a]
            kb = [x[key] for x in b]
            da, db = {x[key]: x for x in a}, {x[key]: x for x in b}
            only_a = [k for k in ka if k not in db]
            only_b = [k for k in kb if k not in da]
            for k in sorted(set(ka) | set(kb), key=str):
                if k in da and k in db:
                    diff(da[k], db[k], f"{path}[{key}={k}]", out)
            # Members on one side only: one line each, or one line for many.
            for side, only in ((0, only_a), (1, only_b)):
                if len(only) > 8:
                    v = f"{len(only)} {key}s only here: " + ", ".join(map(str, only))
                    out.append((f"{path}[{key}=…]", v if side == 0 else None, v if side == 1 else None))
                else:
                    for k in only:
                        out.append((f"{path}[{key}={k}]", da.get(k), db.get(k)))
            common = [k for k in ka if k in db]
            if common != [k for k in kb if k in da]:
                out.append((f"{path} (order)", ka, kb))
        elif all(isinstance(x, str) for x in a + b):
            if sorted(a) == sorted(b):
                out.append((f"{path} (order)", a, b))
            else:
                out.append((path, [x for x in a if x not in b] or None, [x for x in b if x not in a] or None))
                if [x for x in a if x in b] != [x for x in b if x in a]:
                    out.append((f"{path} (order)", a, b))
        else:
            ra = [x for x in a if x not in b]
            rb = [x for x in b if x not in a]
            if ra or rb:
                out.append((path, ra or None, rb or None))
            else:
                out.append((f"{path} (order)", a, b))
    else:
        out.append((path, a, b))


def load(*p):
    with open(os.path.join(HERE, *p)) as f:
        return json.load(f)


def case_diffs(case):
    out = []
    if case == "seccomp-default":
        diff(load("seccomp-default.json"), load("dockerd", "seccomp-default.json"), "linux.seccomp", out)
    elif case.startswith("exec/"):
        diff(load(case + ".json"), load("dockerd", case + ".json"), "process", out)
    else:
        diff(load("run", case + ".json"), load("dockerd", "run", case + ".json"), "", out)
    return out


def main(argv):
    summary = "--summary" in argv
    cases = [a for a in argv if not a.startswith("--")] or ["seccomp-default"] + sorted(
        f[:-5] for f in os.listdir(os.path.join(HERE, "dockerd", "run")) if f.endswith(".json")) + sorted(
        "exec/" + f[:-5] for f in os.listdir(os.path.join(HERE, "dockerd", "exec")) if f.endswith(".json"))
    if not summary:
        for case in cases:
            d = case_diffs(case)
            print(f"== {case}: {len(d)} difference(s)  [berth | dockerd]")
            for p, a, b in d:
                print(f"  {p}\n      berth:   {short(a)}\n      dockerd: {short(b)}")
        return
    groups = OrderedDict()
    for case in cases:
        for p, a, b in case_diffs(case):
            groups.setdefault((p, short(a), short(b)), []).append(case)
    for (p, a, b), cs in sorted(groups.items()):
        run = [c for c in cases if c != "seccomp-default" and not c.startswith("exec/")]
        who = "all run cases" if [c for c in cs if c in run] == run and len(cs) == len(run) else ", ".join(cs)
        print(f"{p}  [{who}]\n    berth:   {a}\n    dockerd: {b}")


if __name__ == "__main__":
    main(sys.argv[1:])
