from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    return Path(os.environ.get("PLUMCODE_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    d = shared_data()
    if not (d / "HumanEval.jsonl.gz").exists():
        pytest.skip(f"benchmark data not found in {d} (set PLUMCODE_DATA_DIR)")
    monkeypatch.setenv("PLUMCODE_DATA_DIR", str(d))
    return d


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private expected-output cache so tests never read a stale user cache."""
    monkeypatch.setenv("PLUMCODE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
