"""Prompts from a :class:`Problem`, and robust code extraction from what a model wrote back.

Two prompt styles:

- ``chat`` (instruct models): one user message; the backend renders it with the model's own chat
  template (tokenizer, GGUF metadata or the server). Stub problems (HumanEval) show the stub and
  ask for the whole function; free-form instructions ask for the named function or a program.
- ``completion`` (base models): the code stub itself, which the model continues (its body), or a
  comment-wrapped instruction followed by an opening code fence. Stop sequences end the
  continuation at the next top-level statement.

:func:`extract_code` turns raw model output into a program: fenced blocks (closed or not), prose
around code, several blocks (the one defining the entry point wins), a function body without its
header (the stub is re-attached), broken indentation, and example-usage/``__main__`` clutter that
would run (or block on ``input()``) when the sandbox imports the candidate.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from plumcode.generation.base import Prompt
from plumcode.problems.schema import Problem

STYLES = ("chat", "completion")

# Codex/HumanEval stops for continuing a function body: the next top-level statement.
COMPLETION_STOPS: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ",
                                     "\n```")
FREEFORM_COMPLETION_STOPS: tuple[str, ...] = ("\n```", "\nif __name__", "\n# Test", "\n# Example")

SPECIAL_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|EOT|>", "</s>", "<|eot_id|>", "<|end|>", "<|file_sep|>",
                  "<|fim_pad|>", "<|im_start|>")

_FORMAT_HINT = "Return the complete, self-contained Python code in a single ```python code block."


def _is_stdio(problem: Problem) -> bool:
    if problem.entry_point is not None:
        return False
    return any(t.kind == "stdio" for t in problem.tests) or problem.metadata.get("style") == "stdio" \
        or "livecodebench" in problem.source.lower()


def chat_text(problem: Problem) -> str:
    """The user message for an instruct model."""
    if problem.prompt and problem.entry_point:
        return ("Complete the following Python function. Keep its signature, and include the imports it "
                f"needs.\n```python\n{problem.prompt.rstrip()}\n```\n{_FORMAT_HINT}")
    text = problem.instruction.strip()
    if problem.entry_point:
        if f"`{problem.entry_point}`" not in text and f"{problem.entry_point}(" not in text:
            text += f"\n\nWrite a Python function `{problem.entry_point}` that solves this."
    elif _is_stdio(problem):
        text += ("\n\nWrite a complete Python program that reads the input from standard input and prints "
                 "the answer to standard output.")
    return f"{text}\n\n{_FORMAT_HINT}"


def completion_text(problem: Problem) -> str:
    """The raw prompt for a base model: the stub to continue, or the instruction as comments."""
    if problem.prompt:
        return problem.prompt
    comment = "\n".join("# " + line if line.strip() else "#" for line in problem.instruction.strip().splitlines())
    tail = f"# Python function `{problem.entry_point}`:\n" if problem.entry_point else "# Python solution:\n"
    return f"{comment}\n{tail}```python\n"


def build_prompt(problem: Problem, style: str = "chat", system: str | None = None) -> Prompt:
    """The prompt for ``problem`` in ``style`` (``chat`` gives messages, ``completion`` a string)."""
    if style == "chat":
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": chat_text(problem)}]
    if style == "completion":
        return completion_text(problem)
    raise ValueError(f"unknown prompt style {style!r} (one of {', '.join(STYLES)})")


def stop_sequences(problem: Problem, style: str = "chat") -> tuple[str, ...]:
    """Stops that end a completion-style continuation; chat models stop on their own EOS."""
    if style != "completion":
        return ()
    return COMPLETION_STOPS if problem.prompt else FREEFORM_COMPLETION_STOPS


def render_chat_template(template: str, messages: list[dict], *, bos_token: str = "", eos_token: str = "",
                         add_generation_prompt: bool = True) -> str:
    """Render a HF-style Jinja chat template (e.g. read from GGUF metadata) without a tokenizer."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg: str) -> None:
        raise ValueError(f"chat template: {msg}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token=bos_token, eos_token=eos_token,
                                            add_generation_prompt=add_generation_prompt)


# ----------------------------------------------------------------------------- code extraction

@dataclass
class Extraction:
    code: str
    method: str  # fence | fence-unclosed | stub+body | raw | prose-trimmed | none
    reason: str = ""  # why ``code`` is empty or suspect ("" when fine)


_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:(?P<close>^[ \t]*```[ \t]*$)|\Z)", re.M | re.S)
_PY_LANGS = {"", "python", "py", "python3", "py3", "python2", "pycon", "ipython", "sage"}
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@\w|if __name__|[A-Za-z_][\w.]*\s*=[^=]"
                         r"|for |while |try:|with |print\(|return |raise )")
_PROSE_LINE = re.compile(r"^[A-Z][^=()\[\]{}:]*[a-z][^=()\[\]{}]*[.:!?]?\s*$")


def _strip_specials(text: str) -> str:
    for t in SPECIAL_TOKENS:
        if t in text:
            text = text.split(t)[0] if t != "<|im_start|>" else text.replace(t, "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _fenced_blocks(text: str) -> list[tuple[str, str, bool]]:
    """``(lang, code, closed)`` of every fenced block, an unclosed last fence included."""
    out = []
    for m in _FENCE_RE.finditer(text):
        out.append((m.group(1).lower(), m.group(2), m.group("close") is not None))
    return out


def _parses(code: str) -> bool:
    """Compiles (not only parses: ``return`` outside a function must count as broken)."""
    try:
        compile(code, "<candidate>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _defines(code: str, name: str | None) -> bool:
    if not name:
        return False
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", code, re.M) is not None \
        or re.search(rf"^{re.escape(name)}\s*=\s*lambda", code, re.M) is not None


def _repair_indent(code: str) -> str:
    code = code.expandtabs(4) if "\t" in code else code
    if _parses(code):
        return code
    ded = textwrap.dedent(code)
    if _parses(ded):
        return ded
    # first line pulled to column 0 while the rest stays indented (copy-paste artefact)
    lines = code.split("\n")
    if lines and lines[0] and not lines[0][0].isspace() and len(lines) > 1:
        rest = [ln for ln in lines[1:] if ln.strip()]
        if rest:
            ind = min(len(ln) - len(ln.lstrip()) for ln in rest)
            if ind > 0 and not lines[0].rstrip().endswith(":"):
                fixed = "\n".join([" " * ind + lines[0]] + lines[1:])
                if _parses(textwrap.dedent(fixed)):
                    return textwrap.dedent(fixed)
    return ded


def _body_indent(prompt: str) -> str:
    for line in reversed(prompt.rstrip("\n").split("\n")):
        if line.strip():
            ind = line[: len(line) - len(line.lstrip())]
            return ind if line.strip().endswith(('"""', "'''")) or not line.rstrip().endswith(":") \
                else ind + "    "
    return "    "


def _attach_stub(prompt: str, body: str) -> str:
    """Put a body the model wrote (without the header) under the stub, fixing its indentation."""
    stub = prompt if prompt.endswith("\n") else prompt + "\n"
    body = body.expandtabs(4) if "\t" in body else body
    lines = body.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return stub
    cand = stub + "\n".join(lines)
    if _parses(cand):
        return cand
    want = _body_indent(prompt)
    ded = textwrap.dedent("\n".join(lines))
    cand = stub + textwrap.indent(ded, want)
    if _parses(cand):
        return cand
    # only the first line lost its indentation (continuation right after the stub's last line)
    first, rest = lines[0], lines[1:]
    cand = stub + want + first.lstrip() + ("\n" + "\n".join(rest) if rest else "")
    return cand if _parses(cand) else stub + "\n".join(lines)


def _trim_to_code(text: str) -> tuple[str, bool]:
    """Drop prose lines before the first code-looking line and after the last parsable prefix."""
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if _CODE_START.match(ln)), None)
    if start is None:
        return "", False
    lines = lines[start:]
    trimmed = start > 0
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end])
        if _parses(chunk):
            return chunk.rstrip() + "\n", trimmed or end < len(lines)
        # stop shrinking once we cut into an indented block start (prose only trails at top level)
    return "\n".join(lines), trimmed


def _longest_parsable_prefix(code: str) -> str | None:
    lines = code.rstrip().split("\n")
    for end in range(len(lines) - 1, 0, -1):
        if lines[end].startswith((" ", "\t")):
            continue  # cut only before a top-level line: keeps whole definitions
        chunk = "\n".join(lines[:end])
        if _parses(chunk):
            return chunk.rstrip() + "\n"
    return None


def _strip_clutter(code: str, entry_point: str | None, require_entry: bool = True) -> str:
    """Remove top-level example usage, asserts and ``__main__`` blocks from a function solution.

    The sandbox imports the candidate before calling ``entry_point``: a stray ``input()`` or a
    failing example ``assert`` would turn a correct function into a failure.
    """
    if not entry_point:
        return code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.split("\n")
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        bad = False
        if isinstance(node, ast.If):
            t = node.test
            bad = isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"
        elif isinstance(node, ast.Assert):
            bad = True
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            bad = True  # print(...), main(), entry_point(example)
        elif isinstance(node, (ast.For, ast.While)):
            bad = True  # example loops at top level
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            f = node.value.func
            bad = isinstance(f, ast.Name) and f.id in {entry_point, "input"}
        if bad:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            drop.append((start, node.end_lineno or node.lineno))
    if not drop:
        return code
    keep = [ln for i, ln in enumerate(lines, 1) if not any(a <= i <= b for a, b in drop)]
    out = "\n".join(keep).strip("\n") + "\n"
    return out if _parses(out) and (_defines(out, entry_point) or not require_entry) else code


def extract(text: str, problem: Problem | None = None) -> Extraction:
    """Extract a program from raw model output, saying how (and why not, when it fails)."""
    entry = problem.entry_point if problem else None
    stub = problem.prompt if problem else None
    raw = _strip_specials(text)
    if not raw.strip():
        return Extraction("", "none", "empty completion")

    blocks = [(lang, body, closed) for lang, body, closed in _fenced_blocks(raw) if lang in _PY_LANGS]
    method = ""
    code = ""
    if blocks:
        good = [b for b in blocks if _defines(b[1], entry)] if entry else []
        pool = good or blocks
        parsable = [b for b in pool if _parses(_repair_indent(b[1]))]
        pick = max(parsable or pool, key=lambda b: len(b[1].strip()))
        if not entry and parsable:
            pick = parsable[0] if len(parsable) == 1 else max(parsable, key=lambda b: len(b[1]))
        code = _repair_indent(pick[1])
        method = "fence" if pick[2] else "fence-unclosed"
        code = _with_helpers(code, [_repair_indent(b[1]) for b in blocks if b is not pick])
    else:
        body = raw
        first = next((ln for ln in body.split("\n") if ln.strip()), "")
        if stub and entry and not _defines(body, entry) and (first[:1] in (" ", "\t") or not _CODE_START.match(first)
                                                            and _parses(_attach_stub(stub, body))):
            code = _attach_stub(stub, body)
            method = "stub+body"
        elif _parses(body) and (_CODE_START.match(first) or _defines(body, entry)):
            code, method = body, "raw"
        else:
            code, trimmed = _trim_to_code(body)
            method = "prose-trimmed" if trimmed else "raw"
    if not code.strip():
        return Extraction("", "none", "no code in completion")

    # a body without the header (chat models sometimes echo only the body)
    if stub and entry and not _defines(code, entry):
        first = next((ln for ln in code.split("\n") if ln.strip()), "")
        if first[:1] in (" ", "\t") or re.match(r"\s*(return|if|for|while|result|res|ans)\b", first):
            attached = _attach_stub(stub, code)
            if _parses(attached):
                code, method = attached, method + "+stub"
    code = _repair_indent(code)
    if not _parses(code):
        prefix = _longest_parsable_prefix(code)
        if prefix and (not entry or _defines(prefix, entry)):
            code = prefix
            method += "+truncated"
    code = _strip_clutter(code, entry)
    # re-attach the stub's imports / helpers the model dropped (HumanEval prompts carry typing imports)
    if stub and entry and _defines(code, entry) and _parses(code):
        code = _missing_imports(stub, code) + code
    reason = ""
    if not _parses(code):
        reason = "extracted code does not parse"
    elif entry and not _defines(code, entry):
        reason = f"no definition of `{entry}` in completion"
    return Extraction(code if code.endswith("\n") else code + "\n", method, reason)


def _names(code: str) -> tuple[set[str], set[str]]:
    """(names the code binds anywhere, names it loads); empty sets when it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(), set()
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, used


def _with_helpers(code: str, others: list[str]) -> str:
    """Prepend other blocks that define names the chosen block uses but never defines."""
    import builtins

    bound, used = _names(code)
    free = used - bound - set(dir(builtins))
    if not free:
        return code
    extra = []
    for other in others:
        ob, _ = _names(other)
        if ob & free and _parses(other):
            extra.append(_strip_clutter(other, "__helper__", require_entry=False))
            free -= ob
    return "\n\n".join(extra + [code]) if extra else code


def _missing_imports(stub: str, code: str) -> str:
    """Import lines of the stub that the extracted code lacks (``from typing import List``)."""
    try:
        tree = ast.parse(stub)
    except SyntaxError:
        return ""
    have = set(code.split("\n"))
    lines = stub.split("\n")
    add = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            src = "\n".join(lines[node.lineno - 1: node.end_lineno])
            if src not in have and src not in code:
                add.append(src)
    return ("\n".join(add) + "\n") if add else ""


def extract_code(text: str, problem: Problem | None = None) -> str:
    """The program in a model's output ("" when there is none). See :func:`extract` for the why."""
    return extract(text, problem).code
