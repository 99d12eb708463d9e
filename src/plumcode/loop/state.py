"""``run/state.json``: which stage of which round is complete (the resume point).

A stage is marked complete only after all of its artifacts are on disk (atomically written or
fully appended), so after a crash the first stage not listed is the one to (re)run; stages resume
at record level, so rerunning an interrupted stage redoes only the missing records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumcode.io import DataError, atomic_write_json
from plumcode.loop.layout import RunDir

STATE_VERSION = 1


@dataclass
class RunState:
    path: Path
    completed: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage key -> summary
    order: list[str] = field(default_factory=list)
    current: str | None = None
    started_at: float = field(default_factory=time.time)
    finished: bool = False

    @classmethod
    def load(cls, run_dir: str | Path) -> RunState:
        path = RunDir(run_dir).state
        if not path.exists():
            return cls(path=path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"unreadable state ({e.msg})", path) from None
        if d.get("version") != STATE_VERSION:
            raise DataError(f"unsupported state version {d.get('version')!r}", path)
        st = cls(path=path, started_at=d.get("started_at", time.time()), finished=bool(d.get("finished")))
        for item in d.get("completed", []):
            st.completed[item["stage"]] = item.get("summary", {})
            st.order.append(item["stage"])
        st.current = d.get("current")
        return st

    def is_done(self, stage: str) -> bool:
        return stage in self.completed

    def summary(self, stage: str) -> dict[str, Any]:
        return self.completed.get(stage, {})

    def begin(self, stage: str) -> None:
        self.current = stage
        self.save()

    def complete(self, stage: str, summary: dict[str, Any] | None = None) -> None:
        if stage not in self.completed:
            self.order.append(stage)
        self.completed[stage] = {**(summary or {}), "completed_at": time.time()}
        self.current = None
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, {
            "version": STATE_VERSION,
            "started_at": self.started_at,
            "current": self.current,
            "finished": self.finished,
            "completed": [{"stage": s, "summary": self.completed[s]} for s in self.order],
        })
