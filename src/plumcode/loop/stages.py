"""Thin adapters from the loop's configuration to each stage's library API.

The loop owns no stage logic: everything here translates :class:`RunConfig` sections into the
stage packages' own config objects and calls their resumable entry points. Stage packages are
imported lazily so ``plumcode run --explain`` needs neither torch nor the sandbox.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from plumcode.io import atomic_write_json, atomic_write_jsonl, load_jsonl
from plumcode.problems.schema import Problem, read_problems, write_problems

__all__ = ["read_problems", "write_problems"]

log = logging.getLogger(__name__)


def build_config(cls: type, values: dict[str, Any], *, what: str) -> Any:
    """Instantiate a stage config from the fields it knows; report the ones it does not.

    Loop-level defaults may name fields a stage does not have (yet): those are skipped with a
    debug line; user-given ``options`` keys that the stage does not know are errors.
    """
    known: set[str] | None = None
    if dataclasses.is_dataclass(cls):
        known = {f.name for f in dataclasses.fields(cls) if f.init}
    elif hasattr(cls, "model_fields"):
        known = set(cls.model_fields)
    if known is None:
        return cls(**values)
    skipped = sorted(set(values) - known)
    if skipped:
        log.debug("%s: %s has no field(s) %s", what, cls.__name__, ", ".join(skipped))
    return cls(**{k: v for k, v in values.items() if k in known})


def check_options(cls: type, options: dict[str, Any], what: str) -> None:
    known: set[str] = set()
    if dataclasses.is_dataclass(cls):
        known = {f.name for f in dataclasses.fields(cls) if f.init}
    elif hasattr(cls, "model_fields"):
        known = set(cls.model_fields)
    bad = sorted(set(options) - known)
    if bad and known:
        raise ValueError(f"{what}.options: unknown field(s) {', '.join(bad)} "
                         f"(known: {', '.join(sorted(known))})")


# -- problems ----------------------------------------------------------------------------------------

def _looks_like_path(source: str) -> bool:
    return os.sep in source or source.endswith((".jsonl", ".json", ".gz", ".jsonl.gz")) or Path(source).exists()


def load_training_problems(source: str, path: str | None) -> list[Problem]:
    """``problems.source``: a Problem JSONL or instruction file, or a name ``plumcode.problems``
    knows (a benchmark or split such as ``mbpp-train``, else an instruction set)."""
    from plumcode.problems import load_benchmark as _load
    from plumcode.problems import load_instructions
    from plumcode.problems.loaders import ALIASES, BENCHMARKS

    if _looks_like_path(source) and path is None:
        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"problems.source {source}: no such file")
        try:
            return read_problems(p)
        except ValueError:
            return list(load_instructions(p))
    if ALIASES.get(source.lower(), source.lower()) in BENCHMARKS:
        return list(_load(source, path))
    return list(load_instructions(path or source))


def load_benchmark(name: str, path: str | None, *, with_tests: bool = True, limit: int | None = None
                   ) -> list[Problem]:
    """A named benchmark (its first ``limit`` problems), or the user's own evaluation set: any name
    with a Problem-JSONL ``path``.

    ``limit`` is applied before HumanEval+/MBPP+ expected outputs are computed (a laptop demo
    evaluating a slice does not pay minutes and GBs for the whole set); ``with_tests=False``
    skips computing them at all (decontamination needs the texts only).
    """
    from plumcode.problems import BENCHMARKS
    from plumcode.problems import load_benchmark as _load
    from plumcode.problems.loaders import ALIASES

    key = ALIASES.get(name.lower(), name.lower())
    if path is not None and key not in BENCHMARKS:
        return read_problems(path)[:limit]
    return _load(name, path, limit=limit, with_expected=with_tests)


def decontaminate(train: list[Problem], bench: list[Problem], n: int) -> tuple[list[Problem], list[dict]]:
    """``plumcode.problems.decontaminate`` (word ``n``-grams of text, 30-grams of code, identical
    instructions), with each dropped problem as a JSON record for ``decontamination.json``."""
    from plumcode.problems import decontaminate as _decontaminate

    kept, dropped = _decontaminate(train, bench, n=n)
    return kept, [d.to_json() | {"instruction": d.problem.instruction[:200]} for d in dropped]


# -- policy backends ---------------------------------------------------------------------------------

def with_checkpoint(spec: str, checkpoint: Path, *, lora: bool, reload: str) -> str:
    """The backend spec of ``spec`` after training produced ``checkpoint``.

    In-process backends (``hf:``, ``default``) reload the base with the adapter
    (``?adapter=<dir>``), or load full weights from the checkpoint. Server backends
    (``openai:``, ``managed:``) get ``?adapter=<dir>``, which the generation backend hot-loads into
    the server (vLLM's ``/v1/load_lora_adapter`` or ``plumcode serve``). A ``managed:`` server
    stays managed after full fine-tuning (``managed:<engine>:<checkpoint>/model``, its options
    kept): ``hf:`` there would silently switch the engine; the loop closes the old backend before
    training, so loading this spec restarts the server on the new weights.
    """
    checkpoint = Path(checkpoint).resolve()
    if spec.strip().startswith("multi:"):  # every replica hot-loads the adapter / restarts
        from plumcode.generation.loader import multi_replicas

        replicas = multi_replicas(spec)
        if lora or all(_is_managed(r) for r in replicas):
            return "multi:" + "|".join(with_checkpoint(r, checkpoint, lora=lora, reload=reload)
                                       for r in replicas)
        return f"hf:{checkpoint}"
    base, _, query = spec.strip().partition("?")
    params = [q for q in query.split("&") if q and not q.startswith("adapter=")]
    if not lora:
        if not _is_managed(base):
            return f"hf:{checkpoint}"
        engine = base.split(":", 2)[1]
        weights = checkpoint if (checkpoint / "config.json").is_file() else checkpoint / "model"  # trainer's layout
        return f"managed:{engine}:{weights}" + ("?" + "&".join(params) if params else "")
    params.append(f"adapter={checkpoint}")
    return base + "?" + "&".join(params)


def _is_managed(spec: str) -> bool:
    return spec.strip().lower().startswith("managed:")


def load_backend(spec: str, *, seed: int) -> Any:
    from plumcode.generation import load_backend as _load

    return _load(spec)


# -- tests -------------------------------------------------------------------------------------------

def synthesize(problems: list[Problem], backend: Any, tc: Any, out_path: Path, *, seed: int,
               samples: dict[str, list[str]] | None = None) -> dict[str, Any]:
    from plumcode.testgen import TestgenConfig, funnel_totals, synthesize_tests

    check_options(TestgenConfig, tc.options, "testgen")
    values: dict[str, Any] = {
        "validate": tuple(tc.validation), "prompt_style": tc.prompt_style, "template_dir": tc.template_dir,
        "n_completions": tc.n_samples, "n_tests": tc.n_tests, "max_tests": tc.max_tests,
        "temperature": tc.temperature, "max_tokens": tc.max_tokens, "seed": seed, "timeout_s": tc.timeout_s,
    }
    values.update(tc.options)
    cfg = build_config(TestgenConfig, values, what="testgen")
    records = synthesize_tests(problems, backend, cfg, out=out_path, samples=samples, progress=True)
    tot = funnel_totals(records)
    return {"records": len(records), "tests_generated": tot["generated"], "tests_parsed": tot["parsed"],
            "tests_valid": tot["valid"], "tests_kept_total": tot["kept"], "problems_with_tests": tot["with_tests"],
            "rejected_by": tot["rejected_by"]}


def problems_with_tests(problems: list[Problem], tests_path: Path, tc: Any) -> list[Problem]:
    from plumcode.testgen import problems_with_synthetic_tests

    out = problems_with_synthetic_tests(problems, tests_path)
    return [p for p in out if len(p.tests) >= tc.min_tests]


# -- sampling / execution / preferences / training / evaluation ------------------------------------

def sample(problems: list[Problem], backend: Any, out_path: Path, *, n: int, temperature: float, top_p: float,
           max_tokens: int, seed: int, batch_size: int | None, desc: str) -> int:
    from plumcode.generation import SamplingParams, sample_problems

    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    kwargs: dict[str, Any] = {}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    try:
        sample_problems(problems, backend, params, out_path, **kwargs)
    except TypeError:
        if not kwargs:
            raise
        sample_problems(problems, backend, params, out_path)
    recs = load_jsonl(out_path)
    ids = {r["sample_id"] for r in recs}
    if len(ids) != len(recs):
        raise RuntimeError(f"{out_path}: duplicate sample ids after sampling ({len(recs) - len(ids)})")
    return len(recs)


def sandbox_config(sb: Any) -> Any:
    from plumcode.sandbox import SandboxConfig

    check_options(SandboxConfig, sb.options, "sandbox")
    values = {"timeout_s": sb.timeout_s, "memory_mb": sb.memory_mb, "workers": sb.workers}
    values = {k: v for k, v in values.items() if v is not None}
    values.update(sb.options)
    return build_config(SandboxConfig, values, what="sandbox")


def execute(problems_path: Path, samples_path: Path, out_path: Path, sb: Any) -> dict[str, Any]:
    """Run the round's samples against the kept tests (resumable: samples with a verdict are skipped).

    Samples of problems that kept no test (possible when tests are made after sampling, for
    agreement validation) are left out through an executable subset written beside the samples.
    """
    ids = {p.id for p in read_problems(problems_path)}
    samples = load_jsonl(samples_path)
    src = samples_path
    if any(str(s["problem_id"]) not in ids for s in samples):
        src = samples_path.with_name(samples_path.stem + ".executable.jsonl")
        atomic_write_jsonl(src, [s for s in samples if str(s["problem_id"]) in ids])
    from plumcode.sandbox import execute_file

    res = execute_file(problems_path, src, out_path, sandbox_config(sb),
                       ray_address=getattr(sb, "ray_address", None))
    verdicts = load_jsonl(out_path)
    vids = [v["sample_id"] for v in verdicts]
    if len(set(vids)) != len(vids):
        raise RuntimeError(f"{out_path}: duplicate verdicts ({len(vids) - len(set(vids))})")
    out = verdict_counts(verdicts)
    if isinstance(res, dict):
        out.update({k: res[k] for k in ("executed", "skipped_existing", "cached", "isolation") if k in res})
        if "ray" in res:
            ray = res["ray"]
            out["ray"] = {"nodes": len(ray["nodes"]), "chunks_retried": ray["chunks_retried"],
                          "actors_lost": ray["actors_lost"]}
    return out


def verdict_counts(verdicts: list[dict]) -> dict[str, Any]:
    """The execute stage's summary of its verdicts, also per problem (all pass, none pass, or a
    signal to learn from): the report and a fork's subset read their counts from here."""
    per: dict[str, list[bool]] = {}
    for v in verdicts:
        per.setdefault(str(v.get("problem_id")), []).append(bool(v.get("passed")))
    passed = sum(map(sum, per.values()))
    return {"verdicts": len(verdicts), "passed": passed,
            "pass_rate": round(passed / len(verdicts), 4) if verdicts else 0.0,
            "statuses": dict(Counter(str(v.get("status", "?")) for v in verdicts)),
            "problems_all_pass": sum(all(x) for x in per.values()),
            "problems_none_pass": sum(not any(x) for x in per.values()),
            "problems_with_signal": sum(any(x) and not all(x) for x in per.values())}


def preferences(samples: list[dict], verdicts: list[dict], pc: Any, objective: str, out_path: Path, *,
                seed: int, problems_path: Path | None = None) -> dict[str, Any]:
    from plumcode.preference import PreferenceConfig, build_preferences

    check_options(PreferenceConfig, pc.options, "preference")
    from plumcode.training.objectives import get

    obj = get(objective)
    fmt = {"auto": obj.preference_format}.get(pc.strategy, pc.strategy)
    values: dict[str, Any] = {"format": fmt, "seed": seed}
    if pc.max_per_problem is not None:
        values["max_pairs_per_problem" if fmt == "paired" else "max_per_problem"] = pc.max_per_problem
    values.update(pc.options)
    cfg = build_config(PreferenceConfig, values, what="preference")
    records, summary = build_preferences(samples, verdicts, cfg)
    if obj.data == "desirable":  # e.g. rejection-sampling fine-tuning: the passing samples only
        records = [r for r in records if r.get("label", True)]
    atomic_write_jsonl(out_path, records)
    s = summary.to_json() if hasattr(summary, "to_json") else dict(summary)
    s["records_written"] = len(records)
    cfg_json = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}
    # beside the data, where the trainer reads the KTO class weights (same form as `plumcode preferences`)
    atomic_write_json(out_path.with_name(out_path.name.removesuffix(".jsonl") + ".summary.json"),
                      {"config": cfg_json, "summary": s})
    return {k: v for k, v in s.items() if k != "reasons"} | {"reasons": s.get("reasons", {})}


def training_spec(spec: str) -> tuple[str, str | None]:
    """A backend spec as the trainer's model argument: ``(model, adapter)``.

    ``hf:<path>?adapter=<dir>`` -> (``<path>``, ``<dir>``); ``default`` stays a registered name.
    """
    base, _, query = spec.partition("?")
    adapter = None
    for q in query.split("&"):
        if q.startswith("adapter="):
            adapter = q.removeprefix("adapter=")
    if base.startswith("hf:"):
        base = base.removeprefix("hf:")
    elif _is_managed(base):  # managed:<engine>:<weights>: the trainer loads the served weights
        base = base.split(":", 2)[2]
    elif ":" in base and not Path(base).exists() and base.split(":", 1)[0] in ("openai", "llama-cpp", "vllm"):
        raise ValueError(f"the trainer cannot load {base!r}; set policy.train_model to hf:<weights of the "
                         "same model>")
    return base, adapter


def train(prefs_path: Path, model_spec: str, cfg: Any, out_dir: Path, *, seed: int) -> dict[str, Any]:
    from plumcode.training import TrainConfig
    from plumcode.training import train as _train

    t = cfg.training
    check_options(TrainConfig, t.options, "training")
    lora = cfg.policy.lora
    values: dict[str, Any] = {
        "objective": t.objective, "epochs": t.epochs, "learning_rate": t.learning_rate, "beta": t.beta,
        "batch_size": t.batch_size, "grad_accum": t.grad_accum, "max_length": t.max_length, "seed": seed,
        "lora": lora.enabled, "lora_r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
    }
    if lora.target_modules != "all-linear":
        tm = lora.target_modules
        values["lora_targets"] = tuple([tm] if isinstance(tm, str) else tm)
    values.update(t.options)
    tcfg = build_config(TrainConfig, values, what="training")
    model, adapter = training_spec(model_spec)
    if adapter is not None and (Path(adapter) / "adapter" / "adapter_config.json").is_file():
        adapter = str(Path(adapter) / "adapter")  # a plumcode checkpoint: its PEFT adapter inside
    res = _train(prefs_path, model, tcfg, out_dir, adapter=adapter)
    d = res.to_json() if hasattr(res, "to_json") else dataclasses.asdict(res)
    h = d.get("health") or {}
    out = {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, type(None)))}
    if h:  # the run's state and report carry the trainer's health check
        out.update({"health_ok": bool(h.get("ok", True)), "health_warnings": "; ".join(h.get("warnings") or []),
                    "chosen_logratio": h.get("chosen_logratio"), "probe_growth": h.get("probe_growth")})
    return out


def evaluate(problems_path: Path, samples_path: Path, ec: Any, sb: Any, *, benchmark: str) -> dict[str, Any]:
    """pass@k of the samples on a benchmark slice (``plumcode.evaluation``, the same path as
    ``plumcode evaluate``). Top-level ``pass@k`` keys are the benchmark's main figure (plus tests
    for HumanEval+). Execution takes seconds to minutes, so it is rerun rather than resumed."""
    from plumcode import evaluation
    from plumcode.sandbox import Sample

    values = {"ks": tuple(ec.k), "timeout_s": sb.timeout_s, "memory_mb": sb.memory_mb, "workers": sb.workers,
              "ray_address": sb.ray_address, "progress": True}
    ecfg = build_config(evaluation.EvalConfig, values, what="evaluation")
    samples = [Sample.from_json(r, str(samples_path), i) for i, r in enumerate(load_jsonl(samples_path), 1)]
    d = evaluation.evaluate(read_problems(problems_path), samples, ecfg, benchmark=benchmark).to_json()
    figs = d.get("pass_at_k") or {}
    main = figs.get(d.get("benchmark")) or (next(iter(figs.values())) if figs else {})
    d.update({k: v for k, v in main.items() if str(k).startswith("pass@")})
    return d
