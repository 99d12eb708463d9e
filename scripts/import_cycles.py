"""Import cycles between the parts of plumcode, read from the source; optionally, every module
imported alone in a fresh interpreter.

    .venv/bin/python scripts/import_cycles.py                # cycles between parts; exit 1 if any
    .venv/bin/python scripts/import_cycles.py --modules      # cycles between modules instead
    .venv/bin/python scripts/import_cycles.py --import-each  # also: `import M` in a new process per module

A part is a subpackage (``plumcode.sandbox``) or a top-level module (``plumcode.io``). Every import
statement counts, at the top of a file or inside a function: a lazy import still makes the
importing code depend on the imported package, so it is an edge here as it is for a reader. The
cycles printed are the strongly connected components of that graph, with the lines that make
their edges.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, src: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of every import in a file; ``from a import b`` gives ``a`` and ``a.b``."""
    me = module_name(path, src)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out.append((base, node.lineno))
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return out


def graph(src: Path, modules: bool) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> the import lines that make the edge."""
    files = {module_name(f, src): f for f in sorted((src / "plumcode").rglob("*.py"))}

    def node(name: str) -> str | None:
        if modules:  # the longest known module the name starts with (``a.b.C`` -> ``a.b``)
            while name and name not in files:
                name = name.rpartition(".")[0]
            return name or None
        bits = name.split(".")
        return bits[1] if bits[0] == "plumcode" and len(bits) > 1 and any(
            m == f"plumcode.{bits[1]}" or m.startswith(f"plumcode.{bits[1]}.") for m in files) else None

    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for mod, f in files.items():
        a = node(mod)
        for name, line in imported(f, src):
            b = node(name)
            where = f"{f.relative_to(src.parent)}:{line} {name}"
            # importing ``pkg.mod`` always runs ``pkg/__init__`` first: not an edge of design
            ancestor = modules and b is not None and a is not None and a.startswith(b + ".")
            if a and b and a != b and not ancestor and where not in edges[(a, b)]:
                edges[(a, b)].append(where)
    return edges


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(succ[v]):
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

    sys.setrecursionlimit(10_000)
    for v in sorted({x for e in edges for x in e}):
        if v not in index:
            visit(v)
    return out


def import_each(src: Path) -> list[str]:
    """Modules that fail ``import M`` alone in a fresh interpreter (a cycle at import time, or a
    module that only works after another one was imported)."""
    failed = []
    for f in sorted((src / "plumcode").rglob("*.py")):
        mod = module_name(f, src)
        if mod.endswith("__main__"):
            continue  # runs the CLI on import
        r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(src)})
        if r.returncode != 0:
            failed.append(f"{mod}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC, help="the folder holding plumcode/ (default: this checkout's)")
    ap.add_argument("--modules", action="store_true", help="cycles between modules, not parts")
    ap.add_argument("--import-each", action="store_true", help="also import every module in a fresh interpreter")
    a = ap.parse_args(argv)
    if not (a.src / "plumcode").is_dir():
        ap.error(f"no plumcode package in {a.src}")
    edges = graph(a.src, a.modules)
    found = cycles(edges)
    what = "modules" if a.modules else "parts"
    if not found:
        print(f"no import cycle between the {len({x for e in edges for x in e})} {what} of plumcode")
    for comp in found:
        print("cycle between: " + ", ".join(comp))
        for x in comp:
            for y in comp:
                for where in edges.get((x, y), [])[:3]:
                    print(f"  {x} -> {y}: {where}")
                if len(edges.get((x, y), [])) > 3:
                    print(f"    (+{len(edges[(x, y)]) - 3} more)")
    failed = import_each(a.src) if a.import_each else []
    if a.import_each:
        print(f"imported alone: {'all modules' if not failed else f'{len(failed)} failed'}")
        for line in failed:
            print(f"  {line}")
    return 1 if found or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
