#!/usr/bin/env python3
"""Finds import cycles between the top-level modules of each crate in crates/.

A module's edges are the other top-level modules of the same crate it names through
`crate::<module>` (in `use` items, including grouped `use crate::{a, b::c}`, and in paths).
A submodule (`foo/bar.rs`) counts as part of `foo`. A module's unit tests (`#[cfg(test)] mod tests`,
last in the file by this project's habit) are not part of the graph: a test may drive its module
through the one above it. Prints each crate's cycles (strongly
connected components with more than one module) and exits 1 if any crate has one.

    python3 scripts/module-cycles.py            # every crate
    python3 scripts/module-cycles.py --graph engine   # print the engine's edges too
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "crates"


def top_module(src: pathlib.Path, path: pathlib.Path) -> str:
    rel = path.relative_to(src)
    first = rel.parts[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def names_in_group(group: str) -> set:
    """Top-level names in the body of `use crate::{...}`, at brace depth 0."""
    names, depth, token = set(), 0, ""
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.add(token.strip().split("::")[0])
            token = ""
            continue
        if depth == 0 and ch not in "{}":
            token += ch
    names.add(token.strip().split("::")[0])
    return {n for n in names if n}


def crate_graph(src: pathlib.Path) -> dict:
    modules = {top_module(src, p) for p in src.rglob("*.rs")} - {"lib", "main"}
    graph = {m: set() for m in modules}
    for path in src.rglob("*.rs"):
        me = top_module(src, path)
        if me in ("lib", "main"):
            continue
        text = strip_comments(path.read_text())
        if path.name == "tests.rs":
            continue
        text = text.split("#[cfg(test)]\nmod tests")[0]
        used = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
        for group in re.findall(r"\bcrate::\{((?:[^{}]|\{[^{}]*\})*)\}", text):
            used |= names_in_group(group)
        graph[me] |= {u for u in used if u in modules and u != me}
    return graph


def cycles(graph: dict) -> list:
    """Tarjan's strongly connected components of size > 1."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    show = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--graph" else None
    failed = False
    for crate in sorted(p for p in ROOT.iterdir() if (p / "src").is_dir()):
        graph = crate_graph(crate / "src")
        if show == crate.name:
            for m in sorted(graph):
                print(f"{m} -> {', '.join(sorted(graph[m])) or '(nothing)'}")
        for comp in cycles(graph):
            failed = True
            print(f"{crate.name}: import cycle among {', '.join(comp)}")
    if not failed:
        print("no import cycle between the modules of any crate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
