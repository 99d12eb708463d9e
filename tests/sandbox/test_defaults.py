"""One default per sandbox limit: every entry point judges with the same memory limit, so the
loop's evaluation and ``plumcode evaluate``/``execute`` agree on the same samples."""

from __future__ import annotations

import argparse

from plumcode.sandbox import DEFAULT_MEMORY_MB, SandboxConfig


def _cli_default(module: str, command: str, dest: str) -> object:
    import importlib

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    importlib.import_module(module).register(sub, command, "x")
    return sub.choices[command].get_default(dest)


def test_every_entry_point_uses_the_sandbox_memory_default():
    from plumcode.evaluation.core import EvalConfig
    from plumcode.loop.config import SandboxLimits

    found = {
        "SandboxConfig": SandboxConfig().memory_mb,
        "loop SandboxLimits": SandboxLimits().memory_mb,
        "EvalConfig": EvalConfig().memory_mb,
        "plumcode execute": _cli_default("plumcode.sandbox.cli", "execute", "memory_mb"),
        "plumcode evaluate": _cli_default("plumcode.evaluation.cli", "evaluate", "memory_mb"),
    }
    assert found == dict.fromkeys(found, DEFAULT_MEMORY_MB)
