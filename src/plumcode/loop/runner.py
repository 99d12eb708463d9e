"""The PLUM loop over a run directory: the paper's algorithm, one call per stage into its package.

Offline PLUM (``rounds: 1``) and online PLUM (``rounds > 1``) are one code path::

    problems -> tests -> baseline evaluation -> per round: sample -> execute -> preferences -> train -> evaluate

Round r samples from round r-1's checkpoint (on-policy). Each stage is marked complete in
``state.json`` only once its artifacts are whole; an interrupted stage is rerun and resumes at
record level (samples, verdicts and tests are appended line by line and skipped when present).
Where each stage writes: :data:`GRAPH`, in the names of :class:`~plumcode.loop.layout.RunDir`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumcode.io import JsonlAppender, atomic_write_json, atomic_write_text, load_jsonl
from plumcode.loop import stages
from plumcode.loop.config import RunConfig, dump_config, load_config
from plumcode.loop.layout import RunDir, round_dir_name
from plumcode.loop.state import RunState

log = logging.getLogger(__name__)

# The stage graph, per kind of stage: the config fields its artifacts depend on and the artifacts
# (r: the stage's round, None at run level). Runner.plan() puts the stages in order; fork gives a
# branch run the trunk's finished stages that no training has touched yet (run level and round 0)
# when those fields match. None: never shared (it follows training, or is cheap to redo).
_SAMPLED = ("seed", "problems", "testgen", "policy.model", "sampling")
GRAPH: dict[str, tuple[tuple[str, ...] | None, Callable[[RunDir, Any], tuple[Path, ...]]]] = {
    "problems": (("problems", "evaluation.benchmarks"), lambda d, r: (d.problems, d.benchmarks, d.decontamination)),
    "tests": (("seed", "problems", "testgen", "policy.model"), lambda d, r: (d.tests(r), d.train_problems(r))),
    "baseline/eval": (("seed", "problems", "policy.model", "evaluation", "sandbox"), lambda d, r: (d.baseline,)),
    "sample": (_SAMPLED, lambda d, r: (d.samples(r),)),
    "execute": ((*_SAMPLED, "sandbox"), lambda d, r: (d.verdicts(r),)),
    "preferences": (None, lambda d, r: (d.preferences(r), d.preferences_summary(r))),
    "train": (None, lambda d, r: (d.checkpoint(r),)),
    "eval": (None, lambda d, r: (d.eval_json(r), d.eval_samples_dir(r))),
}


@dataclass(frozen=True)
class Stage:
    """One step of the plan: its key in ``state.json``, the call that does it, and its :data:`GRAPH`
    entry (``depends`` None: not shared between runs)."""

    key: str
    run: Callable[[], dict[str, Any] | None]
    depends: tuple[str, ...] | None
    artifacts: tuple[Path, ...]


class Runner:
    """Runs (or resumes) the stages of one run directory in order."""

    def __init__(self, run_dir: str | Path, cfg: RunConfig, *, echo: Callable[[str], None] | None = None):
        self.dir = Path(run_dir)
        self.rd = RunDir(self.dir)
        self.cfg = cfg
        self.state = RunState.load(self.dir)
        self.echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self._backends: dict[str, Any] = {}

    # -- orchestration -------------------------------------------------------------------------------
    def plan(self) -> list[Stage]:
        """Every stage of the run, in order.

        Tests come before sampling, except with ``agreement`` validation, which needs the round's
        samples: then the tests stage runs right after the (first, or every) sampling stage.
        """
        cfg, tc, ev = self.cfg, self.cfg.testgen, self.cfg.evaluation
        plan = [self._step("problems", None, self._problems)]
        if not tc.refresh_per_round and not tc.after_sampling:
            plan.append(self._step("tests", None, lambda: self._tests(None, 0)))
        if ev.baseline and ev.benchmarks:
            plan.append(self._step("baseline/eval", None, lambda: self._evaluate(None)))
        for r in range(cfg.rounds):
            t = r if tc.refresh_per_round else None  # the round's own tests, or the run's
            tests_from_samples = tc.after_sampling and (tc.refresh_per_round or r == 0)
            if tc.refresh_per_round and not tc.after_sampling:
                plan.append(self._step("tests", t, lambda r=r, t=t: self._tests(t, r)))
            # sample only problems with kept tests when those exist already (saves generation)
            src = self.rd.problems if tests_from_samples else self.rd.train_problems(t)
            plan.append(self._step("sample", r, lambda r=r, src=src: self._sample(r, src)))
            if tests_from_samples:
                plan.append(self._step("tests", t, lambda r=r, t=t: self._tests(t, r, self.rd.samples(r))))
            plan += [self._step("execute", r, lambda r=r, t=t: self._execute(r, t)),
                     self._step("preferences", r, lambda r=r: self._preferences(r)),
                     self._step("train", r, lambda r=r: self._train(r))]
            if ev.benchmarks and (ev.rounds == "all" or r == cfg.rounds - 1):
                plan.append(self._step("eval", r, lambda r=r: self._evaluate(r)))
        return plan

    def _step(self, kind: str, r: int | None, fn: Callable[[], dict[str, Any] | None]) -> Stage:
        depends, artifacts = GRAPH[kind]
        key = kind if r is None else f"{round_dir_name(r)}/{kind}"
        before_training = r is None or r == 0
        return Stage(key, fn, depends if before_training else None, artifacts(self.rd, r))

    def run(self, *, until: str | None = None, deadline: float | None = None) -> RunState:
        """Run every stage not yet complete; with ``until``, stop after that stage (a trunk that
        other runs :func:`~plumcode.loop.fork.fork` from); with ``deadline`` (epoch seconds), start
        no stage after it (a sitting of a long experiment; rerunning continues)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with _RunLock(self.dir), _sigterm_as_interrupt():
            atomic_write_text(self.rd.config, dump_config(self.cfg))
            self.state.finished = False
            t0 = time.time()
            steps = self.plan()
            if until is not None:
                keys = [st.key for st in steps]
                if until not in keys:
                    raise ValueError(f"until={until!r} is not a stage of this run ({', '.join(keys)})")
                steps = steps[:keys.index(until) + 1]
            paused = False
            try:
                for i, st in enumerate(steps, 1):
                    if deadline is not None and time.time() > deadline and not self.state.is_done(st.key):
                        self.echo(f"[plumcode] deadline reached: pausing before {st.key} (rerun to continue)")
                        paused = True
                        break
                    self._stage(f"({i}/{len(steps)}) ", st.key, st.run)
            finally:
                self._close_backends()
            if paused:
                return self.state
            if until is None:
                self.state.finished = True
                self.state.save()
        self.echo(f"[plumcode] {'run complete' if until is None else f'stages up to {until} complete'} "
                  f"in {time.time() - t0:.0f}s: {self.dir}")
        return self.state

    def _stage(self, prefix: str, key: str, fn: Callable[[], dict[str, Any] | None]) -> None:
        if self.state.is_done(key):
            self.echo(f"[plumcode] {prefix}{key}: done earlier, kept")
            return
        self.echo(f"[plumcode] {prefix}{key}: running")
        self.state.begin(key)
        t0 = time.time()
        summary = fn() or {}
        summary["seconds"] = round(time.time() - t0, 2)
        self.state.complete(key, summary)
        brief = ", ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list)))
        self.echo(f"[plumcode] {prefix}{key}: complete ({brief})")

    # -- policy identity (on-policy bookkeeping) -----------------------------------------------------
    def checkpoint_of(self, r: int) -> Path | None:
        """The adapter/weights produced by round r, or None when that round did not train."""
        s = self.state.summary(f"{round_dir_name(r)}/train")
        if s.get("skipped") or not s:
            return None
        return self.rd.checkpoint(r)

    def latest_checkpoint(self, before_round: int) -> Path | None:
        for r in range(before_round - 1, -1, -1):
            ck = self.checkpoint_of(r)
            if ck is not None:
                return ck
        return None

    def policy_spec(self, r: int) -> str:
        """Backend spec of the policy that samples in round r (r=0: the initial policy).

        ``policy_spec(rounds)`` is the final policy. With ``policy.reload: none`` every round
        samples from the initial policy (off-policy ablation).
        """
        base = self.cfg.policy.model
        if r == 0 or self.cfg.policy.reload == "none":
            return base
        ck = self.latest_checkpoint(r)
        if ck is None:
            return base
        return stages.with_checkpoint(base, ck, lora=self.cfg.policy.lora.enabled,
                                      reload=self.cfg.policy.reload)

    def backend(self, spec: str) -> Any:
        """One live backend at a time for the policy (memory on a laptop), cached by spec."""
        if spec in self._backends:
            return self._backends[spec]
        self._close_backends()
        self.echo(f"[plumcode] loading backend {spec}")
        b = stages.load_backend(spec, seed=self.cfg.seed)
        self._backends[spec] = b
        return b

    def _close_backends(self) -> None:
        for b in self._backends.values():
            try:
                b.close()
            except Exception as e:  # pragma: no cover - best effort cleanup
                log.debug("closing backend: %s", e)
        self._backends.clear()

    # -- stages --------------------------------------------------------------------------------------
    def _problems(self) -> dict[str, Any]:
        pc = self.cfg.problems
        problems = stages.load_training_problems(pc.source, pc.path)
        n_loaded = len(problems)
        if pc.id_range is not None:
            lo, hi = pc.id_range
            problems = [p for p in problems if lo <= _numeric_id(p.id) <= hi]
        if pc.require_reference:
            problems = [p for p in problems if p.reference_solution]
        bench_problems: dict[str, list] = {}
        for b in self.cfg.evaluation.benchmarks:
            bp = stages.load_benchmark(b.name, b.path, limit=b.limit)
            bench_problems[b.name] = bp
            stages.write_problems(self.rd.benchmark(b.name), bp)
        dropped_all: list[dict] = []
        if pc.decontaminate and bench_problems:
            # against the *whole* benchmarks, not only the evaluated slices; before the limit, so
            # `limit` counts clean problems
            full = []
            for b in self.cfg.evaluation.benchmarks:
                full.extend(stages.load_benchmark(b.name, b.path, with_tests=False))
            for name in pc.decontaminate_against:
                full.extend(stages.load_benchmark(name, None, with_tests=False))
            problems, dropped_all = stages.decontaminate(problems, full, pc.decontamination_ngram)
        problems = problems[pc.offset:]
        if pc.limit is not None:
            problems = problems[:pc.limit]
        atomic_write_json(self.rd.decontamination, {
            "ngram": pc.decontamination_ngram, "enabled": pc.decontaminate,
            "benchmarks": [b.name for b in self.cfg.evaluation.benchmarks] + pc.decontaminate_against,
            "n_checked": n_loaded, "n_dropped": len(dropped_all), "dropped": dropped_all,
        })
        if not problems:
            raise RuntimeError("no training problems left (check problems.source/limit/id_range)")
        stages.write_problems(self.rd.problems, problems)
        return {"loaded": n_loaded, "problems": len(problems), "decontaminated": len(dropped_all),
                "benchmarks": {k: len(v) for k, v in bench_problems.items()}}

    def _tests(self, t: int | None, r: int, samples_path: Path | None = None) -> dict[str, Any]:
        """The tests of round ``t`` (None: the run's), written by round r's policy."""
        tc, rd = self.cfg.testgen, self.rd
        problems = stages.read_problems(rd.problems)
        # "policy": the current policy writes the tests (the initial one unless tests are refreshed)
        spec = self.policy_spec(r) if tc.model == "policy" else tc.model
        backend = self.backend(spec)
        samples: dict[str, list[str]] | None = None
        if samples_path is not None:
            samples = {}
            for s in load_jsonl(samples_path):
                samples.setdefault(str(s["problem_id"]), []).append(s.get("code") or "")
        summary = stages.synthesize(problems, backend, tc, rd.tests(t), seed=self.cfg.seed, samples=samples)
        kept = stages.problems_with_tests(problems, rd.tests(t), tc)
        stages.write_problems(rd.train_problems(t), kept)
        summary.update({"problems": len(problems), "problems_with_tests": len(kept),
                        "tests_kept": sum(len(p.tests) for p in kept)})
        if not kept:
            raise RuntimeError("test synthesis kept no tests for any problem; nothing to train on "
                               f"(see {rd.tests(t)})")
        return summary

    def _sample(self, r: int, problems_path: Path) -> dict[str, Any]:
        spec = self.policy_spec(r)
        problems = stages.read_problems(problems_path)
        sc = self.cfg.sampling
        n = stages.sample(problems, self.backend(spec), self.rd.samples(r), n=sc.n, temperature=sc.temperature,
                          top_p=sc.top_p, max_tokens=sc.max_tokens, seed=self.cfg.seed + r,
                          batch_size=sc.batch_size, desc=f"sample r{r}")
        return {"policy": spec, "problems": len(problems), "samples": n}

    def _execute(self, r: int, t: int | None) -> dict[str, Any]:
        rd = self.rd
        return stages.execute(rd.train_problems(t), rd.samples(r), rd.verdicts(r), self.cfg.sandbox)

    def _preferences(self, r: int) -> dict[str, Any]:
        rd = self.rd
        return stages.preferences(load_jsonl(rd.samples(r)), load_jsonl(rd.verdicts(r)), self.cfg.preference,
                                  self.cfg.training.objective, rd.preferences(r), seed=self.cfg.seed,
                                  problems_path=rd.problems)

    def _train(self, r: int) -> dict[str, Any]:
        prefs = self.rd.preferences(r)
        records = load_jsonl(prefs) if prefs.exists() else []
        why = _untrainable(records, self.cfg.training.objective)
        if why:
            self.echo(f"[plumcode] round {r}: not training ({why}); the next round samples the same policy")
            return {"skipped": True, "reason": why, "records": len(records)}
        base = self.cfg.policy.train_model or self.cfg.policy.model
        start = base
        if r > 0 and self.cfg.training.continue_from_previous and self.cfg.policy.reload != "none":
            ck = self.latest_checkpoint(r)
            if ck is not None:
                start = stages.with_checkpoint(base, ck, lora=self.cfg.policy.lora.enabled, reload="in-process")
        self._close_backends()  # free the sampling model's memory before training
        res = stages.train(prefs, start, self.cfg, self.rd.checkpoint(r), seed=self.cfg.seed + r)
        res.update({"records": len(records), "start": start})
        return res

    def _evaluate(self, r: int | None) -> dict[str, Any]:
        """Round r's trained policy (None: the initial one) on the benchmarks."""
        ec, spec = self.cfg.evaluation, self.policy_spec(0 if r is None else r + 1)
        results: dict[str, Any] = {}
        backend = self.backend(spec)
        greedy = ec.temperature == 0.0 and ec.n == 1
        done: dict[tuple, dict] = {}  # greedy: a prompt already answered for an earlier benchmark
        for b in ec.benchmarks:
            problems = stages.read_problems(self.rd.benchmark(b.name))
            samples_path = self.rd.eval_samples(r, b.name)
            if greedy:
                _reuse_greedy(problems, done, samples_path)
            stages.sample(problems, backend, samples_path, n=ec.n, temperature=ec.temperature, top_p=1.0,
                          max_tokens=ec.max_tokens, seed=self.cfg.seed, batch_size=self.cfg.sampling.batch_size,
                          desc=f"eval {b.name}")
            if greedy:
                keys = {p.id: _prompt_key(p) for p in problems}
                for rec in load_jsonl(samples_path):
                    done.setdefault(keys.get(str(rec["problem_id"]), ()), rec)
            results[b.name] = stages.evaluate(self.rd.benchmark(b.name), samples_path, ec, self.cfg.sandbox,
                                              benchmark=b.name)
        atomic_write_json(self.rd.eval_json(r), {"policy": spec, "benchmarks": results})
        return {"policy": spec, **{f"pass@1[{k}]": v.get("pass@1") for k, v in results.items()}}


def _prompt_key(p: Any) -> tuple:
    return (p.id, p.instruction, p.prompt, p.entry_point)


def _reuse_greedy(problems: list, done: dict[tuple, dict], samples_path: Path) -> int:
    """Copy greedy answers to identical prompts from an earlier benchmark of the same evaluation
    (HumanEval and HumanEval+ share 163 of 164 prompts): greedy decoding would only repeat them."""
    have = {str(r["problem_id"]) for r in load_jsonl(samples_path)} if samples_path.exists() else set()
    recs = [done[_prompt_key(p)] for p in problems if p.id not in have and _prompt_key(p) in done]
    if recs:
        with JsonlAppender(samples_path) as out:
            for r in recs:
                out.write(r)
    return len(recs)


def _untrainable(records: list[dict], objective: str) -> str | None:
    """Why a round's preference data cannot train ``objective`` (None: it can): its registry entry says."""
    from plumcode.training.objectives import get

    return get(objective).untrainable(records)


class _RunLock:
    """One process per run directory: a second ``plumcode run`` on it fails instead of interleaving
    appends. ``flock`` is released by the kernel when the holder dies, even by SIGKILL."""

    def __init__(self, run_dir: Path):
        self.path = RunDir(run_dir).lock
        self._f: Any = None

    def __enter__(self) -> _RunLock:
        import fcntl

        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.close()
            raise RuntimeError(f"{self.path.parent} is being run by another process") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
        self._f.close()


class _sigterm_as_interrupt:
    """SIGTERM (cluster preemption, ``kill``) stops the run like Ctrl-C: state stays consistent."""

    def __enter__(self) -> None:
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            def _raise(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt
            self._old = signal.signal(signal.SIGTERM, _raise)

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


_NUM = re.compile(r"(\d+)\D*$")


def _numeric_id(pid: str) -> int:
    m = _NUM.search(pid)
    return int(m.group(1)) if m else -1


def run(run_dir: str | Path, config: RunConfig) -> RunState:
    return Runner(run_dir, config).run()


RESUMABLE_OVERRIDES = ("rounds",)


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """The run's own config; only ``rounds`` may change on resume (to extend an online run):
    anything else would mix artifacts of two configurations in one directory."""
    path = RunDir(run_dir).config
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a plumcode run directory")
    old = load_config(path)
    new = load_config(path, overrides)
    a, b = old.model_dump(), new.model_dump()
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_OVERRIDES)
    if changed:
        raise ValueError(f"--resume can only change {', '.join(RESUMABLE_OVERRIDES)}; "
                         f"not {', '.join(changed)} (start a new run directory for that)")
    return new


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> RunState:
    """Continue a run from its own ``config.yaml`` and ``state.json``."""
    return Runner(run_dir, resume_config(run_dir, overrides)).run()
