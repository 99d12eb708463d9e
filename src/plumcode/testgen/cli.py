"""``plumcode tests``: synthesize unit tests for problems with an LM (resumable)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from plumcode.io import read_jsonl
from plumcode.problems.schema import read_problems, write_problems
from plumcode.sandbox.types import Sample

log = logging.getLogger(__name__)


def parse_modes(text: str) -> tuple[str, ...]:
    from plumcode.testgen.synth import VALIDATIONS

    if text.strip().lower() in ("", "none"):
        return ()
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in VALIDATIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {bad}; choose from {', '.join(VALIDATIONS)} or none")
    return modes


def read_sample_codes(path: str | Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line, rec in read_jsonl(path):
        s = Sample.from_json(rec, str(path), line)
        out.setdefault(s.problem_id, []).append(s.code)
    return out


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help + ". Problems already in --out are skipped.")
    p.add_argument("--problems", required=True, help="Problem JSONL (plumcode problems ...)")
    p.add_argument("--out", required=True, help="tests.jsonl to write (appended, resumable)")
    p.add_argument("--model", help="backend spec of the test writer (default, hf:PATH, llama-cpp:GGUF, "
                                    "openai:URL#MODEL); not needed with --revalidate")
    p.add_argument("--validate", type=parse_modes, default=("reference",),
                   help="comma-separated modes: reference,inputs,agreement, or none (default: reference)")
    p.add_argument("--samples", help="policy samples.jsonl (needed by the agreement mode)")
    p.add_argument("--revalidate", metavar="TESTS_JSONL",
                   help="validate the raw model outputs stored in this tests.jsonl again (no model run)")
    p.add_argument("--prompt-style", choices=("chat", "completion"), default="chat",
                   help="chat for instruct models (default), completion for base models")
    p.add_argument("--template-dir", help="directory with prompt templates overriding the defaults")
    p.add_argument("--n-completions", type=int, default=1, help="completions per prompt (default 1)")
    p.add_argument("--n-tests", type=int, default=10, help="tests the prompt asks for (default 10)")
    p.add_argument("--n-inputs", type=int, default=10, help="inputs the inputs prompt asks for (default 10)")
    p.add_argument("--max-tests", type=int, default=20, help="tests kept per problem (default 20)")
    p.add_argument("--max-candidates", type=int, default=40, help="parsed tests examined per problem")
    p.add_argument("--augment-inputs", type=int, default=0, metavar="N",
                   help="inputs mode: N extra inputs per problem by type-aware mutation of the proposed "
                        "ones, expected outputs from the reference (default 0: off; call problems only)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=768)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3.0, help="per-test time limit in the sandbox (s)")
    p.add_argument("--batch-size", type=int, default=8, help="problems per generation call")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--problems-out", help="also write Problem JSONL whose tests are the kept tests")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.testgen.execution import default_runner
    from plumcode.testgen.synth import (
        TestgenConfig,
        generated_from_record,
        problems_with_synthetic_tests,
        read_records,
        synthesize_tests,
        validate,
    )

    problems = read_problems(args.problems)
    if args.limit:
        problems = problems[: args.limit]
    cfg = TestgenConfig(validate=args.validate, prompt_style=args.prompt_style, template_dir=args.template_dir,
                        n_completions=args.n_completions, n_tests=args.n_tests, n_inputs=args.n_inputs,
                        max_tests=args.max_tests, max_candidates=args.max_candidates,
                        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                        timeout_s=args.timeout, batch_size=args.batch_size, augment_inputs=args.augment_inputs)
    samples = read_sample_codes(args.samples) if args.samples else None
    if "agreement" in cfg.validate and not samples:
        raise ValueError("--validate agreement needs --samples (policy samples to agree with)")
    runner = default_runner(cfg.timeout_s)
    if args.revalidate:
        by_id = {p.id: p for p in problems}
        old = [r for r in read_records(args.revalidate) if r["problem_id"] in by_id]
        if Path(args.out).resolve() == Path(args.revalidate).resolve():
            raise ValueError("--revalidate needs a different --out")
        gens = [generated_from_record(r, by_id[r["problem_id"]]) for r in old]
        from plumcode.io import atomic_write_jsonl
        records = validate(gens, cfg, runner, samples)
        atomic_write_jsonl(args.out, records)
    else:
        if not args.model:
            raise ValueError("--model is required (or --revalidate an existing tests.jsonl)")
        from plumcode.generation import load_backend

        backend = load_backend(args.model)
        try:
            records = synthesize_tests(problems, backend, cfg, out=args.out, runner=runner, samples=samples,
                                       progress=True)
        finally:
            backend.close()
    print_funnel(records, args.out)
    if args.problems_out:
        n = write_problems(args.problems_out, problems_with_synthetic_tests(problems, records))
        print(f"{n} problems with synthetic tests -> {args.problems_out}")
    return 0


def print_funnel(records: Sequence[dict], out: str) -> None:
    from plumcode.testgen.synth import funnel_totals

    t = funnel_totals(records)
    print(f"{t['problems']} problems, {t['with_tests']} with kept tests -> {out}")
    print(f"tests: generated {t['generated']}, parsed {t['parsed']}, valid {t['valid']}, kept {t['kept']}")
    if t["rejected_by"]:
        print("rejected: " + ", ".join(f"{k} {v}" for k, v in t["rejected_by"].items()))
