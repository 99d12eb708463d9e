"""The run report shows the trainer's health warnings and the truncated-sample counts."""

from __future__ import annotations

from pathlib import Path

from plumcode.loop.state import RunState
from plumcode.report.collect import collect_run
from plumcode.report.html import render_html, summary_text


def test_health_warnings_reach_the_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "round-000").mkdir(parents=True)
    (run / "config.yaml").write_text("name: r\nrounds: 1\n")
    st = RunState.load(run)
    st.complete("round-000/preferences", {"records": 4, "truncated": 3, "dropped_truncated": 3})
    st.complete("round-000/train", {"steps": 2, "health_ok": False,
                                    "health_warnings": "the desirable/chosen completions' log-prob fell 3.1 nats"})
    data = collect_run(run)
    assert data.rounds[0].health == ["the desirable/chosen completions' log-prob fell 3.1 nats"]
    assert data.rounds[0].truncated == (3, 3)
    text = summary_text([data])
    assert "training health WARNING: the desirable/chosen completions' log-prob fell 3.1 nats" in text
    assert "fell 3.1 nats" in render_html([data])
