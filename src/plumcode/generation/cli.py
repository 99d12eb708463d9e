"""``plumcode sample``: N candidate solutions per problem from a policy into samples.jsonl (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, name: str, help: str) -> None:
    p = subparsers.add_parser(name, help=help, description=__doc__.splitlines()[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--problems", required=True,
                   help="Problem JSONL (plumcode problems output) or a benchmark name (humaneval, mbpp, ...)")
    p.add_argument("--model", default="default",
                   help="backend spec: default | hf:<dir|hub id|gguf>[?adapter=<dir>] | openai:<url>#<model> | "
                        "llama-cpp:<gguf> | vllm:<path>")
    p.add_argument("--out", required=True, help="samples.jsonl to append to (rerun resumes)")
    p.add_argument("--n", type=int, default=8, help="samples per problem")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--stop", action="append", default=[], help="extra stop string (repeatable)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per forward batch (hf backend)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--prompt-style", choices=["chat", "completion"], default=None,
                   help="default: chat when the model has a chat template, else completion")
    p.add_argument("--system", default=None, help="system message for chat prompts")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--allow-policy-change", action="store_true",
                   help="append even if --out holds samples of another policy")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _load_problems(spec: str, limit: int | None) -> list:
    from plumcode.problems.schema import read_problems

    path = Path(spec)
    if path.exists():
        problems = read_problems(path)
    else:
        try:
            from plumcode.problems.loaders import benchmark_names, load_benchmark
        except ImportError:
            raise FileNotFoundError(f"problems file not found: {spec}") from None
        if spec not in benchmark_names():
            raise FileNotFoundError(f"problems file not found: {spec} (nor a benchmark: "
                                    f"{', '.join(benchmark_names())})")
        problems = load_benchmark(spec)
    if not problems:
        raise ValueError(f"{spec}: no problems")
    return problems[:limit] if limit else problems


def run(args: argparse.Namespace) -> int:
    from plumcode.generation import SamplingParams, load_backend, sample_problems

    if args.n < 1 or args.max_tokens < 1:
        raise ValueError("--n and --max-tokens must be >= 1")
    if not 0 < args.top_p <= 1:
        raise ValueError("--top-p must be in (0, 1]")
    problems = _load_problems(args.problems, args.limit)
    params = SamplingParams(n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            stop=tuple(args.stop), seed=args.seed)
    backend = load_backend(args.model, batch_size=args.batch_size)
    try:
        summary = sample_problems(problems, backend, params, args.out, batch_size=args.batch_size,
                                  prompt_style=args.prompt_style, system=args.system,
                                  progress=not args.no_progress, allow_policy_change=args.allow_policy_change)
    finally:
        backend.close()
    print(json.dumps(summary), file=sys.stdout)
    return 0
