"""``plumcode model fetch|path|verify|list [NAME]``: manage registered models in the user cache."""

from __future__ import annotations

import argparse

from plumcode.models.registry import DEFAULT_MODEL, REGISTRY, get_entry


def register(subparsers: argparse._SubParsersAction, name: str, help: str) -> None:
    p = subparsers.add_parser(name, help=help, description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["fetch", "path", "verify", "list"],
                   help="fetch: download + verify into the cache; path: print the GGUF path; "
                        "verify: re-hash the cached file; list: registered models")
    p.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"registered model (default {DEFAULT_MODEL})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.models.fetch import ModelError, ensure_model, model_path, verify_model

    if args.action == "list":
        for e in REGISTRY.values():
            where = model_path(e.name)
            state = "cached" if where.exists() else "not fetched"
            print(f"{e.name}\t{e.description}\tlicense={e.license}\thub={e.hf_repo}\t{state}: {where}")
        return 0
    try:
        e = get_entry(args.name)
    except KeyError as err:
        raise ValueError(str(err.args[0])) from None
    try:
        if args.action == "path":
            p = model_path(e.name)
            print(p)
            return 0 if p.exists() else 1
        if args.action == "verify":
            p = verify_model(e.name, full=True)
            print(f"OK {p} sha256={e.sha256}")
            return 0
        p = ensure_model(e.name)
        print(p)
        return 0
    except ModelError as err:
        raise RuntimeError(str(err)) from None
