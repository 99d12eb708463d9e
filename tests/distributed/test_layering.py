"""``distributed`` builds on ``generation`` and ``sandbox``, never the reverse: the loader learns the
``multi:``/``managed:`` specs by registration, the sandbox runs on Ray by itself, and the import
graph read from the source (``scripts/import_cycles.py``) has no cycle through either."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_no_import_cycle_through_distributed_sandbox_or_generation():
    ic = _script()
    edges = ic.graph(ROOT / "src", modules=False)
    mine = {"distributed", "generation", "raycluster"}
    assert [c for c in ic.cycles(edges) if mine & set(c)] == []
    assert {a for a, b in edges if b == "distributed"} == {"cli"}, \
        "only the plumcode command imports distributed (which registers its specs)"
    modules = ic.graph(ROOT / "src", modules=True)
    assert [c for c in ic.cycles(modules) if any(m.startswith(("plumcode.sandbox", "plumcode.generation",
                                                               "plumcode.distributed")) for m in c)] == []


def test_loader_imports_the_registering_package_on_first_use():
    """The sandbox and generation import nothing of distributed; a library caller's first ``managed:``
    spec imports it by name (no module-level import, so no cycle) and reaches its loader."""
    code = ("import sys\n"
            "import plumcode.sandbox, plumcode.generation\n"
            "from plumcode.generation import load_backend\n"
            "assert 'plumcode.distributed' not in sys.modules, sorted(m for m in sys.modules if 'distributed' in m)\n"
            "try:\n    load_backend('managed:nosuchengine:x')\nexcept ValueError as e:\n    print(e)\n"
            "print('plumcode.distributed' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "unknown managed engine 'nosuchengine'" in r.stdout and r.stdout.strip().endswith("True")


def test_distributed_registers_its_specs_and_the_cli_imports_it():
    from plumcode.cli import build_parser
    from plumcode.generation import loader

    build_parser()
    import plumcode.distributed.sampling as sampling
    import plumcode.distributed.servers as servers

    assert loader._REGISTERED["multi"] is sampling.load_multi_spec
    assert loader._REGISTERED["managed"] is servers.load_managed_spec
    with pytest.raises(ValueError, match="no replica"):
        loader.load_backend("multi:")
    with pytest.raises(ValueError, match="unknown managed engine 'sglang'"):
        loader.load_backend("managed:sglang:m")
