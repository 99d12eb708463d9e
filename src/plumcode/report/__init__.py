"""``report.html`` and a terminal summary for one run directory or several side by side."""

from plumcode.report.collect import RoundData, RunData, collect_run, extract_pass_at
from plumcode.report.html import render_html, summary_text, write_report

__all__ = ["RoundData", "RunData", "collect_run", "extract_pass_at", "render_html", "summary_text", "write_report"]
