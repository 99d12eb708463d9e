"""Where benchmark files come from: a local copy first, then the Hugging Face hub.

The local copy is looked up in ``PLUMCODE_DATA_DIR`` or, failing that, a ``shared/data`` folder
beside the repository (or beside/above the current directory), so offline machines and CI (which
clones the repo next to a copy of ``shared/``) never touch the network. The hub is only a
fallback, and its absence is reported together with the places that were searched.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plumcode.io import DataError, open_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dirs() -> list[Path]:
    """Candidate local data folders, best first (existing ones only)."""
    env = os.environ.get("PLUMCODE_DATA_DIR")
    if env:
        return [Path(env)]
    cands = [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        cands += [d / "shared" / "data", d.parent / "shared" / "data"]
    out: list[Path] = []
    for c in cands:
        if c.is_dir() and c not in out:
            out.append(c)
    return out


def find_local(patterns: tuple[str, ...]) -> Path | None:
    """First file matching one of ``patterns`` (glob, in order) in the data folders."""
    for d in data_dirs():
        for pat in patterns:
            hits = sorted(d.glob(pat))
            if hits:
                return hits[-1]  # highest version when several match
    return None


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """``(line_or_record_number, record)`` from a JSON array or JSONL file (optionally .gz).

    JSONL errors name the line; for a JSON array the number is the 1-based record index.
    """
    p = str(path)
    with open_text(p) as f:
        head = f.read(4096).lstrip()
    if head.startswith("["):
        with open_text(p) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON ({e.msg})", p, e.lineno) from None
        for i, rec in enumerate(data, 1):
            if not isinstance(rec, dict):
                raise DataError(f"record {i} of the JSON array is not an object", p, i)
            yield i, rec
        return
    from plumcode.io import read_jsonl

    yield from read_jsonl(p)


def hub_records(repo: str, *, config: str | None = None, split: str | None = None,
                filename: str | None = None) -> list[dict]:
    """Records of a hub dataset (``datasets``), or of one raw file in it (``huggingface_hub``).

    Raises RuntimeError with a readable reason when the hub is unreachable or not installed.
    """
    try:
        if filename:
            from huggingface_hub import hf_hub_download

            local = hf_hub_download(repo, filename, repo_type="dataset")
            return [r for _, r in iter_records(local)]
        import datasets

        ds = datasets.load_dataset(repo, config, split=split)
        if isinstance(ds, datasets.DatasetDict):
            rows: list[dict[str, Any]] = []
            for part in ds.values():
                rows.extend(dict(r) for r in part)
            return rows
        return [dict(r) for r in ds]
    except Exception as e:  # noqa: BLE001 - network, auth, missing package: all mean "not available"
        raise RuntimeError(f"{type(e).__name__}: {e}") from e
