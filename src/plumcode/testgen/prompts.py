"""Prompt templates for test writing and input proposal.

Templates are plain text files with ``$name`` placeholders (``string.Template``, so the braces of
code examples need no escaping). Shipped defaults live in ``templates/``; a user directory with
files of the same names overrides them one by one. ``*_instruct.txt`` becomes a single user chat
message (the backend applies the model's chat template); ``*_base.txt`` is a raw completion
prompt whose unfinished tail (everything after its last comment line) is prepended to the
completion before parsing, so ``assert f(`` + ``1) == 2`` parses as a whole statement.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from plumcode.generation.base import Prompt
from plumcode.problems.schema import Problem
from plumcode.testgen.parse import signature_text

TEMPLATE_DIR = Path(__file__).parent / "templates"
STYLES = ("chat", "completion")
# kind -> template stem; stdio problems use their own
KINDS = {"tests": ("tests", "stdio"), "inputs": ("inputs", "stdio_inputs")}


@dataclass(frozen=True)
class RenderedPrompt:
    prompt: Prompt
    prefix: str  # prepended to each completion before parsing (completion style only)
    template: str  # file name used

    def to_json(self) -> dict:
        return {"prompt": self.prompt, "prefix": self.prefix, "template": self.template}


def load_template(stem: str, style: str, template_dir: str | Path | None = None) -> tuple[str, str]:
    """(text, file name): a user directory's file first, else the shipped default."""
    if style not in STYLES:
        raise ValueError(f"prompt style must be one of {STYLES}, not {style!r}")
    name = f"{stem}_{'instruct' if style == 'chat' else 'base'}.txt"
    for d in ([Path(template_dir)] if template_dir else []) + [TEMPLATE_DIR]:
        p = d / name
        if p.is_file():
            return p.read_text(encoding="utf-8"), str(p if d != TEMPLATE_DIR else f"default:{name}")
    raise FileNotFoundError(f"no prompt template {name} in {template_dir or TEMPLATE_DIR}")


def _fields(problem: Problem, n: int) -> dict[str, str]:
    ep = problem.entry_point or ""
    sig = signature_text(problem) or (f"def {ep}(...): ..." if ep else "")
    if problem.prompt and ep and f"def {ep}" in problem.prompt:
        block = problem.prompt.rstrip() + "\n"
    else:
        doc = problem.instruction.strip().replace('"""', "'''")
        block = f'"""\n{doc}\n"""\n\n' + (sig + "\n" if sig else "")
    return {"instruction": problem.instruction.strip(), "entry_point": ep, "signature": sig,
            "signature_block": block.rstrip(), "n_tests": str(n), "n_inputs": str(n),
            "prompt": (problem.prompt or "").rstrip()}


def render(kind: str, problem: Problem, style: str = "chat", n: int = 10,
           template_dir: str | Path | None = None) -> RenderedPrompt:
    """The prompt asking for ``kind`` ("tests" or "inputs") for ``problem``."""
    stem = KINDS[kind][1 if problem.is_stdio else 0]
    text, name = load_template(stem, style, template_dir)
    body = string.Template(text).safe_substitute(_fields(problem, n))
    if style == "chat":
        return RenderedPrompt([{"role": "user", "content": body.strip()}], "", name)
    body = body.rstrip("\n")
    lines = body.split("\n")
    last_comment = max((i for i, ln in enumerate(lines) if ln.lstrip().startswith("#")), default=-1)
    prefix = "\n".join(lines[last_comment + 1:])
    return RenderedPrompt(body, prefix, name)


COMPLETION_STOPS = ("\n\n\n", "```", "\nif __name__", "\ndef ", "\nclass ", "\n#")
