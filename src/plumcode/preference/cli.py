"""``plumcode preferences``: samples.jsonl + verdicts.jsonl -> preferences.jsonl (+ .summary.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from plumcode.io import atomic_write_json, atomic_write_jsonl, load_jsonl
from plumcode.preference.build import PreferenceConfig, build_preferences


def summary_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".summary.json")


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help)
    d = PreferenceConfig()
    p.add_argument("--samples", required=True, help="samples.jsonl from `plumcode sample`")
    p.add_argument("--verdicts", required=True, help="verdicts.jsonl from `plumcode execute`")
    p.add_argument("--out", required=True, help="preferences.jsonl to write (summary goes beside it)")
    p.add_argument("--format", choices=["unpaired", "paired"], default=d.format,
                   help="unpaired {prompt, completion, label} for KTO/SFT, paired {prompt, chosen, rejected} for DPO")
    p.add_argument("--pairing", choices=["all", "random", "best_worst"], default=d.pairing)
    p.add_argument("--max-pairs-per-problem", type=int, default=d.max_pairs_per_problem)
    p.add_argument("--partial-credit", action="store_true",
                   help="best_worst: a partially passing sample may be chosen over a worse one")
    p.add_argument("--max-per-problem", type=int, default=d.max_per_problem,
                   help="unpaired: cap per problem and label (0 = none)")
    p.add_argument("--one-sided", choices=["skip", "unpaired"], default=d.one_sided,
                   help="all-pass / none-pass problems: drop them, or keep them as unpaired examples")
    p.add_argument("--truncated", choices=["drop", "open", "keep"], default=d.truncated,
                   help="samples cut at the token limit: drop them (default), train them without the closing "
                        "end-of-turn (open), or close them like finished answers (keep, the old behaviour)")
    p.add_argument("--balance", choices=["none", "weights", "downsample"], default=d.balance)
    p.add_argument("--max-ratio", type=float, default=d.max_ratio, help="downsample: majority:minority cap")
    p.add_argument("--no-dedup", action="store_true", help="keep samples with identical normalised code")
    p.add_argument("--exclude-reason", action="append", default=[],
                   help="drop failing samples with this status (repeatable), e.g. timeout")
    p.add_argument("--completion-field", choices=["completion", "code"], default=d.completion_field)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = PreferenceConfig(
        format=args.format, pairing=args.pairing, max_pairs_per_problem=args.max_pairs_per_problem,
        partial_credit=args.partial_credit, max_per_problem=args.max_per_problem, one_sided=args.one_sided,
        truncated=args.truncated, balance=args.balance, max_ratio=args.max_ratio, dedup=not args.no_dedup,
        exclude_reasons=tuple(args.exclude_reason), completion_field=args.completion_field, seed=args.seed,
    )
    records, summary = build_preferences(load_jsonl(args.samples), load_jsonl(args.verdicts), cfg)
    atomic_write_jsonl(args.out, records)
    atomic_write_json(summary_path(args.out), {"config": cfg.__dict__ | {"exclude_reasons": list(cfg.exclude_reasons)},
                                                "summary": summary.to_json()})
    for line in summary.lines():
        print(line)
    print(f"wrote {len(records)} records to {args.out}")
    return 0
