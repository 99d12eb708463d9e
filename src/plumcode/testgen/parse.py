"""Model output -> individual test cases, with the AST (never regex on code).

A model asked for tests answers with prose, fenced blocks, ``def test_*`` functions, unittest
classes, loops over literal cases, re-implementations of the function, truncated last lines...
Everything is reduced to *candidates*: self-contained snippets holding exactly one assertion plus
the stdlib imports, helper definitions and assignments that assertion needs. Static checks that
need no execution (signature, self-reference, trivially true, does not call the function) happen
here too, so the sandbox only sees plausible tests.
"""

from __future__ import annotations

import ast
import copy
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from plumcode import values
from plumcode.problems.schema import Problem, TestCase

# -- code extraction ------------------------------------------------------------------------------


def extract_code_blocks(text: str) -> list[str]:
    """Fenced blocks of ``text`` (an unclosed last fence runs to the end); the whole text if none.

    Fences are found by scanning lines (they are markdown, not Python); everything inside is then
    handled by the AST.
    """
    blocks: list[str] = []
    cur: list[str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("```"):
            if cur is None:
                lang = s[3:].strip().lower()
                cur = [] if lang in ("", "python", "py", "python3") else ["__skip__"]
            else:
                if cur[:1] != ["__skip__"]:
                    blocks.append("\n".join(cur))
                cur = None
            continue
        if cur is not None:
            cur.append(line)
    if cur is not None and cur[:1] != ["__skip__"]:
        blocks.append("\n".join(cur))
    return blocks if blocks else [text]


def doctest_to_code(block: str) -> str:
    """``>>> f(1)`` followed by an output line ``2`` -> ``assert f(1) == 2`` (models often answer
    with doctest transcripts); a ``>>>`` line without a literal output is kept as a statement."""
    lines = block.splitlines()
    if not any(ln.lstrip().startswith(">>>") for ln in lines):
        return block
    out: list[str] = []
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if not s.startswith(">>>"):
            i += 1
            continue
        src = s[3:].strip()
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            src += "\n" + lines[i].strip()[3:].strip()
            i += 1
        want = lines[i].strip() if i < len(lines) else ""
        if want and not want.startswith(">>>"):
            i += 1
            try:
                ast.parse(src, mode="eval")
                ast.literal_eval(want)
                out.append(f"assert {src} == {want}")
                continue
            except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
                pass
        out.append(src)
    return "\n".join(out)


def parse_lenient(src: str, max_repairs: int = 40) -> ast.Module | None:
    """``ast.parse`` that survives a truncated last statement or a stray prose line.

    On a syntax error the offending line is dropped and parsing retried (bounded), so the
    complete statements around it are kept. Returns None when nothing parses.
    """
    lines = src.splitlines()
    for _ in range(max_repairs):
        if not any(ln.strip() for ln in lines):
            return None
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as e:
            bad = (e.lineno or len(lines)) - 1
            if bad >= len(lines):
                bad = len(lines) - 1
            if bad < 0:
                return None
            del lines[bad]
        except (ValueError, RecursionError, MemoryError):
            return None
    return None


# -- the function's signature ---------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """Parameters of the function under test, read from the stub's (or reference's) AST."""

    name: str
    params: tuple[str, ...]  # positional parameters in order (positional-only first)
    n_posonly: int
    n_required: int  # leading positional parameters without a default
    kwonly: tuple[str, ...] = ()
    kwonly_required: tuple[str, ...] = ()
    varargs: bool = False
    varkw: bool = False

    @classmethod
    def from_def(cls, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
        a = fn.args
        pos = [p.arg for p in a.posonlyargs] + [p.arg for p in a.args]
        if pos and pos[0] in ("self", "cls") and _is_method(fn):
            pos = pos[1:]
        n_req = len(pos) - len(a.defaults)
        kwreq = tuple(p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None)
        return cls(fn.name, tuple(pos), len(a.posonlyargs), max(n_req, 0),
                   tuple(p.arg for p in a.kwonlyargs), kwreq, a.vararg is not None, a.kwarg is not None)

    def header(self) -> str:
        return f"def {self.name}({', '.join(self.params)})"

    def check_call(self, call: ast.Call) -> str | None:
        """Why ``call`` cannot bind to this signature, or None if it can (or cannot be told)."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None
        npos = len(call.args)
        if npos > len(self.params) and not self.varargs:
            return f"{self.name} takes {len(self.params)} positional arguments, test passes {npos}"
        bound = set(self.params[:npos])
        for kw in call.keywords:
            name = kw.arg
            assert name is not None
            if name in self.params[: self.n_posonly]:
                return f"{name!r} is positional-only"
            if name in bound:
                return f"{name!r} given twice"
            if name not in self.params and name not in self.kwonly and not self.varkw:
                return f"{self.name} has no parameter {name!r}"
            bound.add(name)
        missing = [p for p in self.params[: self.n_required] + self.kwonly_required if p not in bound]
        if missing:
            return f"missing argument(s) {', '.join(missing)}"
        return None

    def to_positional(self, call: ast.Call) -> list[ast.expr] | None:
        """The call's arguments as a positional list (keywords placed by name), if possible."""
        if self.check_call(call) is not None or any(isinstance(a, ast.Starred) for a in call.args):
            return None
        if not call.keywords:
            return list(call.args)
        byname = {k.arg: k.value for k in call.keywords}
        if any(k not in self.params for k in byname):
            return None
        out = list(call.args)
        for p in self.params[len(call.args):]:
            if p in byname:
                out.append(byname.pop(p))
            elif byname:
                return None  # a gap (default in the middle): cannot express positionally
            else:
                break
        return out


def _is_method(fn: ast.AST) -> bool:
    return bool(getattr(fn, "_plum_method", False))


def find_signature(src: str | None, name: str) -> Signature | None:
    """The signature of top-level function (or method) ``name`` in ``src``."""
    if not src:
        return None
    tree = parse_lenient(src)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return Signature.from_def(node)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name == name:
                    sub._plum_method = True  # type: ignore[attr-defined]
                    return Signature.from_def(sub)
    return None


def problem_signature(problem: Problem) -> Signature | None:
    """From the prompt stub first (what the instruction shows), else the reference solution."""
    if problem.entry_point is None:
        return None
    return (find_signature(problem.prompt, problem.entry_point)
            or find_signature(problem.reference_solution, problem.entry_point))


def signature_text(problem: Problem) -> str | None:
    """A ``def`` header with annotations and defaults, body elided: safe to show the test writer
    (it never leaks the reference's body)."""
    if problem.entry_point is None:
        return None
    for src in (problem.prompt, problem.reference_solution):
        tree = parse_lenient(src) if src else None
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == problem.entry_point:
                stub = copy.deepcopy(node)
                stub.body = [ast.Expr(ast.Constant(...))]
                stub.decorator_list = []
                return ast.unparse(stub)
    return None


# -- candidates -----------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One proposed test and what became of it."""

    test: TestCase
    key: str  # normalised form used for dedup
    origin: str = "model"  # "model" (the LM wrote the expectation) | "inputs" | "augmented" (reference computed it)
    status: str = "pending"  # pending -> valid -> kept | rejected
    stage: str = ""  # which step decided the status
    reason: str = ""
    meta: dict = field(default_factory=dict)

    def reject(self, stage: str, reason: str) -> None:
        self.status, self.stage, self.reason = "rejected", stage, reason

    def to_json(self) -> dict:
        d = {"test": self.test.to_json(), "origin": self.origin, "status": self.status,
             "stage": self.stage, "reason": self.reason}
        if self.meta:
            d["meta"] = self.meta
        return d


@dataclass
class ParseStats:
    blocks: int = 0
    unparsable_blocks: int = 0
    extracted: int = 0  # assertions found, before dedup
    duplicates: int = 0
    dropped_reimplementations: int = 0


_UNITTEST_CMP = {"assertEqual": ast.Eq, "assertEquals": ast.Eq, "assertListEqual": ast.Eq,
                 "assertTupleEqual": ast.Eq, "assertDictEqual": ast.Eq, "assertSetEqual": ast.Eq,
                 "assertSequenceEqual": ast.Eq, "assertMultiLineEqual": ast.Eq,
                 "assertNotEqual": ast.NotEq, "assertIs": ast.Is, "assertIsNot": ast.IsNot,
                 "assertIn": ast.In, "assertNotIn": ast.NotIn, "assertGreater": ast.Gt,
                 "assertGreaterEqual": ast.GtE, "assertLess": ast.Lt, "assertLessEqual": ast.LtE}


def _unittest_to_assert(stmt: ast.stmt) -> ast.Assert | None:
    """``self.assertEqual(a, b)`` and friends -> ``assert a == b``."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    f = call.func
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"):
        return None
    a = call.args
    m = f.attr
    test: ast.expr | None = None
    if m in _UNITTEST_CMP and len(a) >= 2:
        test = ast.Compare(a[0], [_UNITTEST_CMP[m]()], [a[1]])
    elif m == "assertTrue" and a:
        test = a[0]
    elif m == "assertFalse" and a:
        test = ast.UnaryOp(ast.Not(), a[0])
    elif m == "assertIsNone" and a:
        test = ast.Compare(a[0], [ast.Is()], [ast.Constant(None)])
    elif m == "assertIsNotNone" and a:
        test = ast.Compare(a[0], [ast.IsNot()], [ast.Constant(None)])
    elif m == "assertAlmostEqual" and len(a) >= 2:
        places = a[2] if len(a) > 2 else next((k.value for k in call.keywords if k.arg == "places"),
                                              ast.Constant(7))
        diff = ast.BinOp(a[0], ast.Sub(), a[1])
        test = ast.Compare(ast.Call(ast.Name("round", ast.Load()), [diff, places], []), [ast.Eq()],
                           [ast.Constant(0)])
    if test is None:
        return None
    return ast.fix_missing_locations(ast.Assert(test=test, msg=None))


def _names(node: ast.AST | Iterable[ast.AST]) -> set[str]:
    nodes = node if isinstance(node, Iterable) else [node]
    out: set[str] = set()
    for n in nodes:
        for sub in ast.walk(n):
            if isinstance(sub, ast.Name):
                out.add(sub.id)
    return out


def _bound(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    out = set()
    for t in targets:
        for sub in ast.walk(t):
            if isinstance(sub, ast.Name):
                out.add(sub.id)
    return out


def _stdlib_import(stmt: ast.stmt, entry_point: str) -> bool:
    """Keep only stdlib imports: ``from solution import f`` / ``import pytest`` would not resolve."""
    std = sys.stdlib_module_names
    if isinstance(stmt, ast.Import):
        return all(a.name.split(".")[0] in std for a in stmt.names)
    if isinstance(stmt, ast.ImportFrom):
        if stmt.level or not stmt.module or stmt.module.split(".")[0] not in std:
            return False
        return all(a.name not in ("*", entry_point) for a in stmt.names)
    return False


@dataclass
class _Scope:
    """Statements visible to assertions: stdlib imports, helper defs, assignments (in order)."""

    defs: list[ast.stmt] = field(default_factory=list)


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.new, node.ctx) if node.id == self.old else node


def _literal_cases(loop: ast.For) -> list[ast.stmt] | None:
    """Unroll ``for x, y in [(1, 2), ...]: assert f(x) == y`` into one assignment per case."""
    if not isinstance(loop.iter, (ast.List, ast.Tuple)) or loop.orelse:
        return None
    try:
        for elt in loop.iter.elts:
            ast.literal_eval(elt)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    return [ast.fix_missing_locations(ast.Assign(targets=[copy.deepcopy(loop.target)], value=elt))
            for elt in loop.iter.elts]


def _collect(body: list[ast.stmt], entry_point: str, scope: list[ast.stmt],
             out: list[tuple[list[ast.stmt], ast.Assert]], stats: ParseStats, depth: int = 0) -> None:
    """Walk statements in order; each assertion is emitted with the scope seen so far."""
    local = list(scope)
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            out.append((list(local), stmt))
            continue
        conv = _unittest_to_assert(stmt)
        if conv is not None:
            out.append((list(local), conv))
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if _stdlib_import(stmt, entry_point):
                local.append(stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if stmt.name == entry_point:
                stats.dropped_reimplementations += 1
                continue
            if depth < 3 and (stmt.name.startswith("test") or stmt.name == "check"
                              or any(isinstance(s, ast.Assert) for s in stmt.body)):
                params = [p.arg for p in stmt.args.posonlyargs + stmt.args.args]
                body = stmt.body
                if len(params) == 1 and params[0] not in ("self", "cls"):  # check(candidate)
                    body = [_Rename(params[0], entry_point).visit(copy.deepcopy(s)) for s in body]
                _collect(body, entry_point, list(local), out, stats, depth + 1)
            else:
                local.append(stmt)
        elif isinstance(stmt, ast.ClassDef):
            if stmt.name == entry_point:
                stats.dropped_reimplementations += 1
            elif depth < 3 and any(isinstance(b, ast.Attribute) and b.attr == "TestCase"
                                   or isinstance(b, ast.Name) and b.id == "TestCase" for b in stmt.bases):
                for sub in stmt.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith("test"):
                        _collect(sub.body, entry_point, local, out, stats, depth + 1)
            else:
                local.append(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            local.append(stmt)
        elif isinstance(stmt, ast.For) and depth < 3:
            cases = _literal_cases(stmt)
            if cases is None:
                continue
            for case in cases:
                _collect(stmt.body, entry_point, local + [case], out, stats, depth + 1)
        elif isinstance(stmt, ast.If) and depth < 3:
            t = stmt.test  # if __name__ == "__main__":
            if isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__":
                _collect(stmt.body, entry_point, local, out, stats, depth + 1)
        # anything else (prints, calls of test functions, try blocks, ...) is not a test


def _needed(scope: list[ast.stmt], roots: list[ast.AST]) -> list[ast.stmt]:
    """The scope statements ``roots`` depend on (transitively), in their original order."""
    need = _names(roots)
    chosen: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i in range(len(scope) - 1, -1, -1):  # latest binding first
            if i in chosen:
                continue
            if _bound(scope[i]) & need:
                chosen.add(i)
                need |= _names(scope[i])
                changed = True
    return [s for i, s in enumerate(scope) if i in chosen]


def _canonical(node: ast.Assert) -> ast.Assert:
    """Assertion without message, ``==`` operands in a fixed order (``2 == f(1)`` ~ ``f(1) == 2``)."""
    a = ast.Assert(test=copy.deepcopy(node.test), msg=None)
    t = a.test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], (ast.Eq, ast.NotEq)):
        left, right = t.left, t.comparators[0]
        if ast.unparse(left) > ast.unparse(right):
            t.left, t.comparators = right, [left]
    return ast.fix_missing_locations(a)


def parse_assert_tests(texts: Iterable[str], entry_point: str, stats: ParseStats | None = None,
                       prefix: str = "") -> list[Candidate]:
    """Split model outputs into deduplicated single-assertion candidates (status ``pending``)."""
    stats = stats if stats is not None else ParseStats()
    seen: set[str] = set()
    out: list[Candidate] = []
    for text in texts:
        for block in extract_code_blocks(prefix + text):
            stats.blocks += 1
            tree = parse_lenient(doctest_to_code(block))
            if tree is None:
                stats.unparsable_blocks += 1
                continue
            found: list[tuple[list[ast.stmt], ast.Assert]] = []
            _collect(tree.body, entry_point, [], found, stats)
            for scope, node in found:
                stats.extracted += 1
                canon = _canonical(node)
                plain = ast.Assert(test=node.test, msg=None)
                deps = _needed(scope, [canon])
                imports = [s for s in scope if isinstance(s, (ast.Import, ast.ImportFrom)) and s not in deps]
                body = [s for s in deps if s not in imports]
                mod = ast.Module(body=imports + body + [plain], type_ignores=[])
                code = ast.unparse(ast.fix_missing_locations(mod))
                key = ast.unparse(ast.Module(body=body + [canon], type_ignores=[]))
                if key in seen:
                    stats.duplicates += 1
                    continue
                seen.add(key)
                out.append(Candidate(TestCase("assert", code=code), key=key))
    return out


# -- static checks --------------------------------------------------------------------------------


def _calls_to(tree: ast.AST, name: str) -> list[ast.Call]:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == name]
    return sorted(calls, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))


def _truthy_constant(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
        return len(getattr(node, "elts", getattr(node, "keys", []))) > 0
    try:
        return bool(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False


def static_check(cand: Candidate, entry_point: str, sig: Signature | None) -> str | None:
    """Why the candidate is unusable without running it, or None. Reason strings start with a
    stable tag (``no_call``, ``signature``, ``self_reference``, ``trivially_true``, ``syntax``)."""
    code = cand.test.code or ""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return f"syntax: {e.msg}"
    if entry_point not in _names(tree):
        return f"no_call: the test never uses {entry_point}"
    if sig is not None:
        for call in _calls_to(tree, entry_point):
            why = sig.check_call(call)
            if why:
                return f"signature: {why}"
    asserts = [s for s in tree.body if isinstance(s, ast.Assert)]
    if not asserts:
        return "syntax: no assertion"
    test = asserts[-1].test
    # names whose value derives from the function under test (assignments and helper defs)
    tainted = {entry_point}
    for stmt in tree.body[:-1]:
        if _names(stmt) & tainted:
            tainted |= _bound(stmt)

    def involves(node: ast.AST) -> bool:
        return bool(_names(node) & tainted)

    if isinstance(test, ast.Compare):
        operands = [test.left, *test.comparators]
        if sum(involves(o) for o in operands) >= 2:
            return "self_reference: the expected value is computed with the function under test"
        dumps = [ast.dump(o) for o in operands]
        if len(set(dumps)) < len(dumps) and any(isinstance(op, (ast.Eq, ast.Is, ast.LtE, ast.GtE))
                                                 for op in test.ops):
            return "trivially_true: both sides are the same expression"
    if _truthy_constant(test):
        return "trivially_true: the asserted expression is a non-empty constant"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or) and any(_truthy_constant(v)
                                                                          for v in test.values):
        return "trivially_true: 'or' with a true constant"
    if not involves(test):
        return f"no_call: the assertion does not depend on {entry_point}"
    return None


# -- stdin/stdout pairs and input-only proposals --------------------------------------------------


def parse_stdio_tests(texts: Iterable[str], stats: ParseStats | None = None,
                      prefix: str = "") -> list[Candidate]:
    """``tests = [("stdin", "expected stdout"), ...]`` (any list of 2-tuples of strings)."""
    stats = stats if stats is not None else ParseStats()
    seen: set[tuple[str, str]] = set()
    out: list[Candidate] = []
    for text in texts:
        for block in extract_code_blocks(prefix + text):
            stats.blocks += 1
            nodes = _literal_nodes(block)
            if nodes is None:
                stats.unparsable_blocks += 1
                continue
            for node in nodes:
                if not isinstance(node, (ast.Tuple, ast.List)) or len(node.elts) != 2:
                    continue
                try:
                    inp, outp = (ast.literal_eval(e) for e in node.elts)
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    continue
                if not (isinstance(inp, str) and isinstance(outp, str)):
                    continue
                stats.extracted += 1
                inp = inp if inp.endswith("\n") or not inp else inp + "\n"
                k = (inp.strip(), "\n".join(ln.rstrip() for ln in outp.strip().splitlines()))
                if k in seen:
                    stats.duplicates += 1
                    continue
                seen.add(k)
                out.append(Candidate(TestCase("stdio", input=inp, output=outp), key=json.dumps(k)))
    return out


def _literal_nodes(block: str, wrap_list: bool = False) -> list[ast.AST] | None:
    """All nodes of the block; for a list cut off mid-way (``tests = [("1", "2"),\n ("3",``), the
    nodes of each line parsed on its own, which recovers the complete items."""
    tree = parse_lenient(block)
    nodes: list[ast.AST] = list(ast.walk(tree)) if tree is not None else []
    if any(isinstance(n, (ast.List, ast.Tuple)) for n in nodes):
        return nodes
    found = False
    for line in block.splitlines():
        s = line.strip().rstrip(",")
        if not s or s.startswith("#"):
            continue
        try:
            expr = ast.parse(f"[{s}]" if wrap_list else s, mode="eval")
        except SyntaxError:
            continue
        found = True
        nodes.extend(ast.walk(expr))
    return nodes if (found or tree is not None) else None


@dataclass
class ProposedInput:
    args: tuple
    key: str
    source: str  # the call as written


def parse_input_calls(texts: Iterable[str], entry_point: str, sig: Signature | None,
                      rejected: list[tuple[str, str]] | None = None, prefix: str = "") -> list[ProposedInput]:
    """Calls ``entry_point(<literals>)`` anywhere in the outputs -> argument tuples (deduplicated).

    Non-literal arguments, wrong signatures and values the typed JSON cannot carry are recorded
    in ``rejected`` as ``(source, reason)``.
    """
    rejected = rejected if rejected is not None else []
    seen: set[str] = set()
    out: list[ProposedInput] = []
    for text in texts:
        for block in extract_code_blocks(prefix + text):
            tree = parse_lenient(doctest_to_code(block))
            if tree is None:
                continue
            for call in _calls_to(tree, entry_point):
                src = ast.unparse(call)
                if sig is not None:
                    why = sig.check_call(call)
                    if why:
                        rejected.append((src, f"signature: {why}"))
                        continue
                    arg_nodes = sig.to_positional(call)
                elif call.keywords:
                    arg_nodes = None
                else:
                    arg_nodes = list(call.args)
                if arg_nodes is None:
                    rejected.append((src, "keywords: cannot be passed positionally"))
                    continue
                try:
                    args = tuple(ast.literal_eval(a) for a in arg_nodes)
                    key = json.dumps(values.encode(args), sort_keys=True)
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    rejected.append((src, "non_literal: arguments must be literals"))
                    continue
                if key in seen:
                    continue
                seen.add(key)
                out.append(ProposedInput(args, key, src))
    return out


def parse_stdio_inputs(texts: Iterable[str], prefix: str = "") -> list[str]:
    """``inputs = ["stdin 1", ...]``: every string literal inside a list literal."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        for block in extract_code_blocks(prefix + text):
            for node in _literal_nodes(block, wrap_list=True) or []:
                if isinstance(node, ast.List):
                    for e in node.elts:
                        if isinstance(e, ast.Constant) and isinstance(e.value, str):
                            s = e.value if e.value.endswith("\n") else e.value + "\n"
                            if s.strip() and s not in seen:
                                seen.add(s)
                                out.append(s)
    return out
