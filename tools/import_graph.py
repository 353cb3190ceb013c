#!/usr/bin/env python3
"""Prints the import graph between timeloom's top-level modules (from `use crate::...` and
`crate::...` paths outside test code) and any cycles in it. Usage: python3 tools/import_graph.py"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_tests(text):
    # Drop `#[cfg(test)] mod ... { ... }` blocks and test-only files: tests may import anything.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[path[^\]]*\]\s*)?mod \w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def main():
    edges = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            if f in ("tests.rs", "testing.rs") or f.endswith("_tests.rs"):
                continue
            src = module_of(path)
            if src in ("lib", "testing"):
                continue
            text = strip_tests(open(path, encoding="utf-8").read())
            text = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
            for m in re.finditer(r"crate::(\w+)", text):
                dst = m.group(1)
                if dst != src and dst not in ("Error", "Result", "testing"):
                    edges.setdefault(src, set()).add(dst)
    for src in sorted(edges):
        print(f"{src:12} -> {', '.join(sorted(edges[src]))}")
    # Cycles: strongly connected components of more than one module.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                sccs.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    if sccs:
        print("cycles:", "; ".join(" <-> ".join(c) for c in sccs))
        return 1
    print("no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
