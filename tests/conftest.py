"""Fixtures for every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The benchmark data (``PLUMCODE_DATA_DIR``, else ``shared/data`` beside the checkout), set for
    the loaders too; where it is absent the test is skipped (CI machines without the data)."""
    d = Path(os.environ.get("PLUMCODE_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (d / "HumanEval.jsonl.gz").exists():
        pytest.skip(f"benchmark data not found in {d} (set PLUMCODE_DATA_DIR)")
    monkeypatch.setenv("PLUMCODE_DATA_DIR", str(d))
    return d
