"""One way in to execution: this machine's process pool or Ray, behind one interface.

``execute`` and ``execute_file`` take ``ray_address``: ``None`` runs the local process pool;
``"local"`` (a private local Ray instance, or the Ray this process already runs), ``"auto"`` (the
cluster this machine joined with ``ray start``), ``"host:port"`` or ``"ray://host:10001"`` run the
same sandbox on one actor per Ray node (:mod:`plumcode.sandbox.on_ray`). The verdicts are the
same either way, so a stage says *where* to execute in one argument instead of choosing, connecting
and shutting down an engine itself. ``SandboxConfig.workers`` is per machine in both cases.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from plumcode.io import JsonlAppender, read_jsonl
from plumcode.problems.schema import Problem, read_problems
from plumcode.sandbox._master import SandboxConfig, execute_local, isolation_report
from plumcode.sandbox.types import Sample, Verdict

Problems = Iterable[Problem] | Mapping[str, Problem]


class Executor(Protocol):
    """Runs samples against the problems it was opened with; a context manager."""

    def execute(self, samples: Iterable[Sample], done: Iterable[str] = ()) -> Iterator[Verdict]:
        """Verdicts in completion order for the samples whose id is not in ``done``."""
        ...

    def summary(self) -> dict:
        """Keys ``execute_file`` adds to its summary (``isolation`` there is the fallback when no
        verdict was produced)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


class LocalExecutor:
    """This machine's process pool. Its zygotes are shared by every executor of the process (see
    :func:`plumcode.sandbox.shutdown`), so closing one stops nothing."""

    def __init__(self, problems: Problems, config: SandboxConfig | None = None, *, progress: bool = False):
        self.problems = dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}
        self.config = config or SandboxConfig()
        self.progress = progress

    def execute(self, samples: Iterable[Sample], done: Iterable[str] = ()) -> Iterator[Verdict]:
        skip = set(done)
        todo = (s for s in samples if s.sample_id not in skip) if skip else samples
        return execute_local(self.problems, todo, self.config, progress=self.progress)

    def summary(self) -> dict:
        report = isolation_report(self.config)
        return {"isolation": report["level"], "why_not_namespaces": report.get("why_not_namespaces", "")}

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_executor(problems: Problems, config: SandboxConfig | None = None, *, ray_address: str | None = None,
                  ray_options: Any = None, progress: bool = False) -> Executor:
    """The executor for ``ray_address`` (see the module doc). ``ray_options`` (an
    :class:`~plumcode.sandbox.on_ray.RayExecOptions`) applies only with an address; ``progress``
    (a bar) only without one."""
    if not ray_address:
        return LocalExecutor(problems, config, progress=progress)
    from plumcode.sandbox.on_ray import RayExecutor

    probs = problems.values() if isinstance(problems, Mapping) else problems
    return RayExecutor(probs, config, ray_address, options=ray_options)


def execute(problems: Problems, samples: Iterable[Sample], config: SandboxConfig | None = None,
            progress: bool = False, *, ray_address: str | None = None, ray_options: Any = None) -> Iterator[Verdict]:
    """Run each sample against its problem's tests; yields one verdict per sample, in completion
    order (on Ray, one per sample id). Identical (code, tests) pairs run once (cache). Unknown
    problem ids raise ``KeyError`` naming the sample. A Ray instance started for the call is
    stopped when the verdicts are consumed (or the iterator is closed)."""
    with open_executor(problems, config, ray_address=ray_address, ray_options=ray_options,
                       progress=progress) as ex:
        yield from ex.execute(samples)


def execute_file(problems_path: str | os.PathLike, samples_path: str | os.PathLike, out_path: str | os.PathLike,
                 config: SandboxConfig | None = None, progress: bool = True, *, ray_address: str | None = None,
                 ray_options: Any = None) -> dict:
    """Resumable: samples that already have a verdict line in ``out_path`` are skipped, and
    verdicts are appended as they complete. Returns a summary; on Ray it also holds ``"ray"``
    (:class:`~plumcode.sandbox.on_ray.RayExecStats` as a dict)."""
    problems = read_problems(problems_path)
    done = verdict_ids(out_path)
    samples = [Sample.from_json(rec, str(samples_path), line) for line, rec in read_jsonl(samples_path)]
    todo = [s for s in samples if s.sample_id not in done]
    counts: dict[str, int] = {}
    levels: dict[str, int] = {}
    n_run = n_pass = n_cached = 0
    t0 = time.monotonic()
    with open_executor(problems, config, ray_address=ray_address, ray_options=ray_options,
                       progress=progress) as ex, JsonlAppender(out_path) as out:
        for v in ex.execute(todo):
            out.write(v.to_json())
            n_run += 1
            counts[v.status] = counts.get(v.status, 0) + 1
            levels[v.isolation] = levels.get(v.isolation, 0) + 1
            n_pass += v.passed
            n_cached += v.cached
        extra = ex.summary()
    # the levels these verdicts were actually judged at (a cached verdict keeps its own)
    isolation = ", ".join(sorted(levels)) if levels else extra.get("isolation", "")
    return {"samples": len(samples), "skipped_existing": len(samples) - len(todo), "executed": n_run,
            "passed": n_pass, "cached": n_cached, "status_counts": counts,
            "seconds": round(time.monotonic() - t0, 3), "isolation": isolation, "isolation_counts": levels,
            **{k: v for k, v in extra.items() if k != "isolation"}}


def verdict_ids(path: str | os.PathLike) -> set[str]:
    """sample_ids that already have a verdict in a verdict JSONL file (none if it does not exist;
    a torn or unreadable line is not a verdict)."""
    if not os.path.exists(path):
        return set()
    return {str(rec["sample_id"]) for _, rec in read_jsonl(path, strict=False) if "sample_id" in rec}
