"""``plumcode demo``: the whole PLUM loop on the embedded default model, on a laptop CPU.

Qwen2.5-Coder-0.5B-Instruct (backend ``default``) writes unit tests for a slice of MBPP training
problems (task ids 601-974, MBPP's own train split; those that MBPP+ also holds are removed by
decontamination, since MBPP+ comes from sanitized MBPP, which spans every split), the tests are
validated against MBPP's reference solutions, the same model samples candidates, the sandbox runs
them, KTO trains a LoRA adapter, and the initial and trained policies are evaluated on slices of
HumanEval+ and MBPP+. Sizes are printed first and every one has a flag to scale up. The config it
runs is ``configs/demo.yaml`` (kept identical to :data:`DEMO_CONFIG`).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "rounds": 1,
    "problems": {"source": "mbpp-train", "limit": 12, "require_reference": True, "decontaminate": True},
    "testgen": {"model": "policy", "n_samples": 1, "temperature": 0.0, "max_tokens": 384, "n_tests": 8,
                "max_tests": 6, "validation": ["reference"]},
    "policy": {"model": "default", "lora": {"r": 16, "alpha": 16}},
    "sampling": {"n": 4, "temperature": 0.8, "max_tokens": 320},
    "preference": {"strategy": "auto"},
    "training": {"objective": "kto", "epochs": 1, "learning_rate": 5e-6, "batch_size": 4,
                 "grad_accum": 4, "max_length": 768},
    "evaluation": {"benchmarks": [{"name": "humaneval+", "limit": 12}, {"name": "mbpp+", "limit": 12}],
                   "n": 1, "temperature": 0.0, "max_tokens": 384},
    "sandbox": {"timeout_s": 5.0},
}


def demo_config(*, problems: int | None = None, n: int | None = None, rounds: int | None = None,
                eval_limit: int | None = None, model: str | None = None, overrides: list[str] | None = None):
    from plumcode.loop.config import RunConfig, apply_overrides

    d = copy.deepcopy(DEMO_CONFIG)
    if problems is not None:
        d["problems"]["limit"] = problems
    if n is not None:
        d["sampling"]["n"] = n
    if rounds is not None:
        d["rounds"] = rounds
    if eval_limit is not None:
        for b in d["evaluation"]["benchmarks"]:
            b["limit"] = eval_limit
    if model is not None:
        d["policy"]["model"] = model
    apply_overrides(d, overrides or [])
    return RunConfig.model_validate(d)


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__.splitlines()[0])
    p.add_argument("--out", "-o", default="runs/demo", help="run directory (rerun to resume; default runs/demo)")
    p.add_argument("--problems", type=int, help="training problems (default 12)")
    p.add_argument("--n", type=int, help="samples per problem per round (default 4)")
    p.add_argument("--rounds", type=int, help="PLUM rounds (default 1; 2 = online)")
    p.add_argument("--eval-limit", type=int, help="problems per evaluation benchmark (default 12)")
    p.add_argument("--model", help="policy backend spec (default: the embedded default model)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set training.objective=dpo")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and sizes, run nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from plumcode.loop.config import dump_config
    from plumcode.loop.layout import RunDir
    from plumcode.loop.runner import Runner

    cfg = demo_config(problems=args.problems, n=args.n, rounds=args.rounds, eval_limit=args.eval_limit,
                      model=args.model, overrides=args.overrides)
    out = Path(args.out)
    ev = ", ".join(f"{b.name}[:{b.limit}]" for b in cfg.evaluation.benchmarks)
    print(f"plumcode demo: policy {cfg.policy.model}, {cfg.problems.limit} problems from {cfg.problems.source} "
          "(MBPP task ids 601-974, decontaminated), tests by the policy validated "
          f"against references, {cfg.sampling.n} samples/problem, {cfg.rounds} round(s) of "
          f"{cfg.training.objective.upper()} + LoRA r={cfg.policy.lora.r}, eval on {ev}; run dir {out}\n"
          "scale up with --problems/--n/--rounds/--eval-limit or --set KEY=VALUE", file=sys.stderr)
    if args.dry_run:
        print(dump_config(cfg))
        return 0
    existing = RunDir(out).config
    if existing.exists() and existing.read_text(encoding="utf-8") != dump_config(cfg):
        print(f"plumcode demo: {out} holds a run with different settings; pass another --out "
              f"(or `plumcode run --resume {out}`)", file=sys.stderr)
        return 2
    Runner(out, cfg).run()
    from plumcode.report import write_report

    path = write_report([out], echo=True)
    print(f"report: {path}", file=sys.stderr)
    return 0
