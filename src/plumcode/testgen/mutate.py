"""A small AST mutator: first-order mutants of a reference solution, for mutation kill rates.

Operators (one change per mutant): comparison swaps (``<``/``<=``/``>``/``>=``, ``==``/``!=``,
``in``/``not in``, ``is``/``is not``), arithmetic swaps (``+``/``-``, ``*``/``//``, ``/``/``*``,
``%``/``//``, ``**``/``*``), boolean ``and``/``or`` swaps and ``not`` removal, integer constants
+-1, ``True``/``False`` flips and return-value changes (``return x`` -> ``return None``).
Docstrings and other string constants are left alone. Equivalent mutants are not detected here:
callers keep only mutants that the ground-truth tests kill.
"""

from __future__ import annotations

import ast
import copy
import random
from dataclasses import dataclass

_CMP_SWAP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                               ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
                               ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BIN_SWAP: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv,
                               ast.FloorDiv: ast.Mult, ast.Div: ast.Mult, ast.Mod: ast.FloorDiv,
                               ast.Pow: ast.Mult}


@dataclass(frozen=True)
class Mutant:
    code: str
    op: str  # e.g. "cmp Lt->LtE", "const 3->4"
    line: int


def _sites(tree: ast.AST) -> list[tuple[int, str]]:
    """(node index in ast.walk order, operator) for every applicable mutation."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out: list[tuple[int, str]] = []
    for i, n in enumerate(ast.walk(tree)):
        if isinstance(n, ast.Compare):
            out += [(i, f"cmp{k}") for k, op in enumerate(n.ops) if type(op) in _CMP_SWAP]
        elif isinstance(n, (ast.BinOp, ast.AugAssign)) and type(n.op) in _BIN_SWAP:
            out.append((i, "bin"))
        elif isinstance(n, ast.BoolOp):
            out.append((i, "bool"))
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            out.append((i, "not"))
        elif isinstance(n, ast.Constant) and id(n) not in docstrings:
            if isinstance(n.value, bool):
                out.append((i, "flip"))
            elif isinstance(n.value, int):
                out += [(i, "inc"), (i, "dec")]
        elif isinstance(n, ast.Return) and n.value is not None and not (
                isinstance(n.value, ast.Constant) and n.value.value is None):
            out.append((i, "ret"))
    return out


def _mutate(tree: ast.Module, index: int, kind: str) -> tuple[ast.Module, str, int] | None:
    t = copy.deepcopy(tree)
    nodes = list(ast.walk(t))
    n = nodes[index]
    line = getattr(n, "lineno", 0)
    desc = ""
    if kind.startswith("cmp"):
        k = int(kind[3:])
        old = type(n.ops[k])  # type: ignore[attr-defined]
        n.ops[k] = _CMP_SWAP[old]()  # type: ignore[attr-defined]
        desc = f"cmp {old.__name__}->{_CMP_SWAP[old].__name__}"
    elif kind == "bin":
        old = type(n.op)  # type: ignore[attr-defined]
        n.op = _BIN_SWAP[old]()  # type: ignore[attr-defined]
        desc = f"arith {old.__name__}->{_BIN_SWAP[old].__name__}"
    elif kind == "bool":
        old = type(n.op)  # type: ignore[attr-defined]
        n.op = ast.Or() if old is ast.And else ast.And()  # type: ignore[attr-defined]
        desc = f"bool {old.__name__}->{type(n.op).__name__}"  # type: ignore[attr-defined]
    elif kind == "not":
        # replace `not x` by `x`: find the parent slot holding n
        operand = n.operand  # type: ignore[attr-defined]
        for parent in ast.walk(t):
            for fld, val in ast.iter_fields(parent):
                if val is n:
                    setattr(parent, fld, operand)
                elif isinstance(val, list):
                    for j, v in enumerate(val):
                        if v is n:
                            val[j] = operand
        desc = "bool drop-not"
    elif kind == "flip":
        n.value = not n.value  # type: ignore[attr-defined]
        desc = f"const {not n.value}->{n.value}"  # type: ignore[attr-defined]
    elif kind in ("inc", "dec"):
        old = n.value  # type: ignore[attr-defined]
        n.value = old + (1 if kind == "inc" else -1)  # type: ignore[attr-defined]
        desc = f"const {old}->{n.value}"  # type: ignore[attr-defined]
    elif kind == "ret":
        n.value = ast.Constant(None)  # type: ignore[attr-defined]
        desc = "return -> None"
    else:
        return None
    return ast.fix_missing_locations(t), desc, line


def mutants(code: str, limit: int | None = None, seed: int = 0) -> list[Mutant]:
    """Distinct, compilable first-order mutants of ``code`` (a random subset of ``limit``)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    original = ast.unparse(tree)
    sites = _sites(tree)
    rng = random.Random(seed)
    rng.shuffle(sites)
    out: list[Mutant] = []
    seen = {original}
    for index, kind in sites:
        if limit is not None and len(out) >= limit:
            break
        r = _mutate(tree, index, kind)
        if r is None:
            continue
        t, desc, line = r
        try:
            src = ast.unparse(t)
            compile(src, "<mutant>", "exec")
        except (SyntaxError, ValueError, TypeError):
            continue
        if src in seen:
            continue
        seen.add(src)
        out.append(Mutant(src, desc, line))
    return out
