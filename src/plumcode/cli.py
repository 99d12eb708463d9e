"""The ``plumcode`` command: one subcommand per stage.

Each stage module owns its subcommand through a ``register(subparsers)`` function that adds a
parser whose ``func(args) -> int`` runs it. Modules are imported lazily by name so that
``plumcode execute`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (subcommand, module that implements it, one-line help). Add a line when a stage lands.
COMMANDS: list[tuple[str, str, str]] = [
    ("problems", "plumcode.problems.cli", "load a benchmark or instruction set into Problem JSONL"),
    ("execute", "plumcode.sandbox.cli", "run samples against problem tests in the sandbox"),
    ("sandbox", "plumcode.sandbox.check", "sandbox check: what the sandbox enforces on this machine, proven"),
    ("evaluate", "plumcode.evaluation.cli", "pass@k of samples on a benchmark"),
    ("sample", "plumcode.generation.cli", "sample candidate solutions from a policy"),
    ("serve", "plumcode.generation.server", "OpenAI-compatible server over the transformers backend"),
    ("launch", "plumcode.distributed.cli", "multi-GPU training command (accelerate/DeepSpeed); a managed vLLM server"),
    ("model", "plumcode.models.cli", "fetch / verify / locate registered models (embedded default)"),
    ("tests", "plumcode.testgen.cli", "synthesize unit tests from instructions with an LM"),
    ("test-quality", "plumcode.testgen.quality_cli", "measure synthetic-test quality against ground truth"),
    ("preferences", "plumcode.preference.cli", "turn verdicts into KTO/DPO preference records"),
    ("train", "plumcode.training.cli", "train the policy with KTO/DPO (LoRA or full)"),
    ("export", "plumcode.training.export", "merge a trained adapter into a plain model folder with a model card"),
    ("run", "plumcode.loop.cli", "the PLUM loop over a run directory (config.yaml)"),
    ("report", "plumcode.report.cli", "write report.html for a run directory"),
    ("demo", "plumcode.loop.demo", "the whole loop on the embedded default model, on CPU"),
]


def build_parser() -> argparse.ArgumentParser:
    # registers the multi:/managed: model specs with the generation loader, for every command that
    # loads a model (sample, tests, run, ...); it imports no engine
    import plumcode.distributed  # noqa: F401
    parser = argparse.ArgumentParser(prog="plumcode", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_ in COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue  # stage not present in this build
            raise
        mod.register(sub, name, help_)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # DataError is a ValueError
        if args.verbose:
            raise
        print(f"plumcode {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
