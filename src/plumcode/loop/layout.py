"""The run directory's layout: every path a run writes, named once (``docs/loop.md`` shows the tree).

The names are the on-disk format that ``state.json`` points into: a run directory written by an
earlier version must still resume, so a name here never changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROUND_RE = re.compile(r"^round-(\d{3})$")


def round_dir_name(r: int) -> str:
    return f"round-{r:03d}"


def file_stem(name: str) -> str:
    """A benchmark's name as used in the run directory's file names (``humaneval+`` -> ``humanevalplus``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("+", "plus"))


def _run(name: str) -> Any:  # rd.<name>: a path of the run
    return property(lambda self: self.root / name)


def _round(name: str) -> Any:  # rd.<name>(r): a path of round r
    return lambda self, r: self.round(r) / name


def _run_or_round(name: str) -> Any:  # rd.<name>(r=None): the run's, or round r's own
    return lambda self, r=None: (self.root if r is None else self.round(r)) / name


class RunDir:
    """The paths of one run directory."""

    config = _run("config.yaml")
    state = _run("state.json")
    report = _run("report.html")
    lock = _run(".lock")
    problems = _run("problems.jsonl")
    benchmarks = _run("benchmarks")
    decontamination = _run("decontamination.json")
    baseline = _run("baseline")  # the initial policy's evaluation
    tests = _run_or_round("tests.jsonl")  # per round with testgen.refresh_per_round
    train_problems = _run_or_round("train_problems.jsonl")
    samples = _round("samples.jsonl")
    verdicts = _round("verdicts.jsonl")
    preferences = _round("preferences.jsonl")
    preferences_summary = _round("preferences.summary.json")
    checkpoint = _round("checkpoint")

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def round(self, r: int) -> Path:
        return self.root / round_dir_name(r)

    def rounds(self) -> list[int]:
        """The rounds that have a directory, in order."""
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := ROUND_RE.match(p.name)))

    def benchmark(self, name: str) -> Path:
        return self.benchmarks / f"{file_stem(name)}.jsonl"

    def eval_json(self, r: int | None) -> Path:
        """Round r's trained policy on the benchmarks; ``None``: the initial policy."""
        return (self.baseline if r is None else self.round(r)) / "eval.json"

    @property
    def baseline_eval(self) -> Path:
        return self.eval_json(None)

    def eval_samples_dir(self, r: int | None) -> Path:
        return self.eval_json(r).with_name("eval")

    def eval_samples(self, r: int | None, benchmark: str) -> Path:
        return self.eval_samples_dir(r) / f"{file_stem(benchmark)}.samples.jsonl"
