"""Branch a run: a new run directory that starts from another run's finished stages.

Comparing objectives (KTO vs DPO vs rejection-sampling SFT) or offline vs online PLUM is only fair
on the *same* data: the same training problems, the same synthetic tests, the same initial-policy
samples and verdicts. ``fork`` copies those artifacts from a trunk run into a new run directory
and marks their stages complete, after checking that every config field the stage depends on is
identical, so the branch's ``Runner`` continues from there (``plumcode run`` resumes it as usual).
Which stages can be shared, what they depend on and what they write: the branch's own
:meth:`~plumcode.loop.runner.Runner.plan` (from :data:`~plumcode.loop.runner.GRAPH`).

``samples_per_problem`` keeps only the first k samples of each problem of round 0 (and their
verdicts): an online arm with two rounds of n/2 samples then spends the same sampling budget as
an offline arm with one round of n, and its first round is a subset of the offline arm's data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from plumcode.io import JsonlAppender, atomic_write_text, load_jsonl
from plumcode.loop.config import RunConfig, dump_config, load_config
from plumcode.loop.layout import RunDir, round_dir_name
from plumcode.loop.runner import Runner, Stage
from plumcode.loop.stages import verdict_counts
from plumcode.loop.state import RunState


def shareable(branch: str | Path, cfg: RunConfig) -> list[Stage]:
    """The stages of run directory ``branch`` (config ``cfg``) that it can take from a trunk, in order."""
    return [s for s in Runner(branch, cfg).plan() if s.depends is not None]


def _field(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def _differences(a: RunConfig, b: RunConfig, fields: tuple[str, ...], *, ignore: tuple[str, ...] = ()) -> list[str]:
    da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
    for dotted in ignore:  # e.g. sampling.n when only a subset of the trunk's samples is taken
        *head, last = dotted.split(".")
        for d in (da, db):
            node = _field(d, ".".join(head)) if head else d
            if isinstance(node, dict):
                node.pop(last, None)
    return [f for f in fields if _field(da, f) != _field(db, f)]


def fork(trunk: str | Path, branch: str | Path, cfg: RunConfig, *, stages: tuple[str, ...] | None = None,
         samples_per_problem: int | None = None) -> list[str]:
    """Start run directory ``branch`` (config ``cfg``) from ``trunk``'s completed ``stages`` (default:
    every :func:`shareable` one).

    Returns the stages taken over. A stage is taken only when the trunk completed it, the branch
    has not, and the config fields it depends on match (otherwise ``ValueError`` names them).
    Stops at the first stage the trunk has not completed: later ones would rest on missing data.
    """
    trunk, branch = Path(trunk), Path(branch)
    tcfg = load_config(RunDir(trunk).config)
    tstate = RunState.load(trunk)
    branch.mkdir(parents=True, exist_ok=True)
    existing = RunDir(branch).config
    if existing.exists() and existing.read_text(encoding="utf-8") != dump_config(cfg):
        raise ValueError(f"{branch} holds a run with a different config")
    atomic_write_text(existing, dump_config(cfg))
    bstate = RunState.load(branch)
    shared = {s.key: s for s in shareable(branch, cfg)}
    r0 = round_dir_name(0)
    taken: list[str] = []
    for stage in tuple(shared) if stages is None else stages:
        if stage not in shared:
            raise ValueError(f"stage {stage!r} cannot be shared; choose from {tuple(shared)}")
        if bstate.is_done(stage):
            continue
        if not tstate.is_done(stage):
            break
        artifacts = shared[stage].artifacts
        subset = samples_per_problem is not None and stage in (f"{r0}/sample", f"{r0}/execute")
        diff = _differences(tcfg, cfg, shared[stage].depends or (), ignore=("sampling.n",) if subset else ())
        if subset and cfg.sampling.n != samples_per_problem:
            diff.append(f"sampling.n (the branch takes {samples_per_problem} samples per problem)")
        if subset and samples_per_problem > tcfg.sampling.n:
            diff.append(f"sampling.n (the trunk has only {tcfg.sampling.n} per problem)")
        if diff:
            raise ValueError(f"cannot share stage {stage!r}: config differs in {', '.join(diff)}")
        for dst in artifacts:
            src = trunk / dst.relative_to(branch)
            if subset:
                _copy_subset(RunDir(trunk).samples(0), src, dst, samples_per_problem)
            else:
                _copy(src, dst)
        summary = dict(tstate.summary(stage))
        summary.pop("completed_at", None)
        if subset:  # the trunk's counts cover all its samples; the branch's summary counts its own share
            summary = _recount(stage, summary, load_jsonl(artifacts[0]), samples_per_problem)
        bstate.complete(stage, {**summary, "forked_from": str(trunk)})
        taken.append(stage)
    return taken


def _copy(src: Path, dst: Path) -> None:
    """Copy a file or folder so that ``dst`` appears whole or not at all."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".forking")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copy2(src, tmp)
    if dst.exists():
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    tmp.rename(dst)


def _copy_subset(samples: Path, src: Path, dst: Path, k: int) -> None:
    """The records of ``src`` whose sample is among the first ``k`` of its problem in ``samples``."""
    keep: set[tuple[str, str]] = set()
    per: dict[str, int] = {}
    for s in load_jsonl(samples):
        pid = str(s["problem_id"])
        if per.get(pid, 0) < k:
            per[pid] = per.get(pid, 0) + 1
            keep.add((pid, str(s["sample_id"])))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".forking")
    tmp.unlink(missing_ok=True)
    with JsonlAppender(tmp) as out:
        for r in load_jsonl(src):
            if (str(r["problem_id"]), str(r["sample_id"])) in keep:
                out.write(r)
    tmp.replace(dst)


def _recount(stage: str, summary: dict[str, Any], rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """A round-0 stage summary recounted over the records the branch kept (``seconds`` stays the
    trunk's, for all its samples)."""
    out = {**summary, "samples_per_problem": k}
    if stage.endswith("/sample"):
        out["samples"] = len(rows)
    else:
        out.update(verdict_counts(rows), executed=len(rows))
        for key in ("skipped_existing", "cached"):
            out.pop(key, None)
    return out
