from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private expected-output cache so tests never read a stale user cache."""
    monkeypatch.setenv("PLUMCODE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
