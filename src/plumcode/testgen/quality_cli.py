"""``plumcode test-quality``: how well synthetic tests label samples, against ground-truth tests."""

from __future__ import annotations

import argparse

from plumcode.io import atomic_write_json, read_jsonl
from plumcode.problems.schema import read_problems
from plumcode.sandbox.types import Sample


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=(
        help + ". Labels each policy sample with the kept synthetic tests and with the problems' own "
        "(ground-truth) tests, and runs mutants of the reference against both."))
    p.add_argument("--problems", required=True, help="Problem JSONL with ground-truth tests (e.g. humaneval+)")
    p.add_argument("--tests", required=True, help="tests.jsonl from plumcode tests")
    p.add_argument("--samples", required=True, help="policy samples.jsonl to label")
    p.add_argument("--mutants", type=int, default=10, help="mutants of the reference per problem (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3.0, help="per-test time limit (s)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.testgen import quality
    from plumcode.testgen.execution import default_runner
    from plumcode.testgen.synth import problems_with_synthetic_tests

    problems = read_problems(args.problems)
    samples = [Sample.from_json(r, args.samples, line) for line, r in read_jsonl(args.samples)]
    runner = default_runner(args.timeout)
    q = quality.prepare(problems, samples, runner, mutants_per_problem=args.mutants, seed=args.seed)
    res = quality.measure(q, problems_with_synthetic_tests(problems, args.tests), runner)
    res["runner"] = runner.name
    print(format_quality(res))
    if args.out:
        atomic_write_json(args.out, res)
    return 0


def format_quality(res: dict) -> str:
    lab = res["labels"]
    lines = [
        f"problems {lab['problems']}, with synthetic tests {lab['covered']} (coverage {lab['coverage']:.1%})",
        f"samples labelled {lab['samples']}: agreement {lab['agreement']:.1%}, "
        f"false-pass {lab['false_pass_rate']:.1%} ({lab['false_pass']}/{lab['gt_fail']} ground-truth failures), "
        f"false-fail {lab['false_fail_rate']:.1%} ({lab['false_fail']}/{lab['gt_pass']} ground-truth passes)",
    ]
    if "mutation" in res:
        m = res["mutation"]
        lines.append(f"mutation kill rate {m['kill_rate']:.1%} ({m['killed']}/{m['mutants']} mutants the ground "
                     f"truth kills; {m['equivalent_or_unkilled_by_gt']} of {m['generated']} generated survive "
                     "the ground truth and are excluded)")
    return "\n".join(lines)
