"""Crash-safe file primitives shared by every stage.

Artifacts are written atomically (temp file + fsync + rename) and JSONL appends are
line-complete: a reader ignores a trailing partial line, so a crash loses at most the line
being written and a rerun continues where it stopped.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


class DataError(ValueError):
    """Bad input data, with the file, line and field it came from."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None,
                 field: str | None = None):
        self.path, self.line, self.field = (str(path) if path else None), line, field
        where = ""
        if self.path:
            where = self.path + (f":{line}" if line is not None else "")
        if field:
            where += f" field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file, transparently decompressing ``.gz``."""
    p = str(path)
    if p.endswith(".gz"):
        return gzip.open(p, "rt", encoding="utf-8")
    return open(p, encoding="utf-8")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    n = 0
    lines = []
    for r in records:
        lines.append(json.dumps(r, ensure_ascii=False))
        n += 1
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return n


def read_jsonl(path: str | os.PathLike, *, strict: bool = True) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)``; a torn last line (no newline) is skipped, not an error.

    Any other unparsable line raises :class:`DataError` naming file and line when ``strict``.
    """
    with open_text(path) as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not line.endswith("\n"):
                return  # torn final append from a crash
            if strict:
                raise DataError(f"invalid JSON ({e.msg})", path, i) from None
            continue
        if not isinstance(rec, dict):
            raise DataError("expected a JSON object", path, i)
        yield i, rec


def load_jsonl(path: str | os.PathLike) -> list[dict]:
    return [r for _, r in read_jsonl(path)]


class JsonlAppender:
    """Append records to a JSONL file one complete line at a time (resumable outputs).

    On open, a torn trailing line left by a crash is truncated away so the next append starts
    on a fresh line.
    """

    def __init__(self, path: str | os.PathLike, fsync_every: int = 64):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._fsync_every = fsync_every
        self._pending = 0

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        self._pending += 1
        if self._pending >= self._fsync_every:
            os.fsync(self._f.fileno())
            self._pending = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()
