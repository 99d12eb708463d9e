"""One self-contained HTML page (plots as base64 PNGs) and a terminal summary for one or more runs.

Several run directories side by side compare arms of an experiment (e.g. KTO vs DPO vs SFT, or
online vs offline): every table gets one column group per run and every plot one line per run.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence
from pathlib import Path

from plumcode.io import atomic_write_text
from plumcode.loop.layout import RunDir
from plumcode.report.collect import RunData, collect_run

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.muted{color:#777}.up{color:#0a7a26}.down{color:#b00020}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6em;overflow-x:auto;font-size:.85em;max-height:26em}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.pair h4{margin:.3em 0}
img{max-width:100%;border:1px solid #eee}
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _policy_labels(n_rounds: int) -> list[str]:
    return ["initial"] + [f"after r{i}" for i in range(n_rounds)]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(runs: Sequence[RunData]) -> list[tuple[str, str]]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report still works without plots
        return []
    out: list[tuple[str, str]] = []
    benches: list[str] = []
    for r in runs:
        benches += [b for b in r.benchmarks() if b not in benches]
    if benches:
        fig, axes = plt.subplots(1, len(benches), figsize=(4.2 * len(benches), 3.2), squeeze=False)
        for ax, b in zip(axes[0], benches, strict=True):
            for r in runs:
                ys = r.pass_at(b, 1)
                xs = [i for i, y in enumerate(ys) if y is not None]
                ax.plot(xs, [100 * ys[i] for i in xs], marker="o", label=r.name)
            ax.set_title(f"{b} pass@1")
            n_pol = max(len(r.pass_at(b, 1)) for r in runs)
            ax.set_xticks(range(n_pol), _policy_labels(n_pol - 1))
            ax.set_ylim(0, 100)
            ax.set_ylabel("%")
            ax.grid(alpha=.3)
        axes[0][0].legend(fontsize=8)
        out.append(("pass@1 per round", _png(fig)))
    for key, title in (("loss", "training loss"), ("rewards/margins", "reward margin (chosen - rejected)")):
        series = []
        for r in runs:
            step0 = 0
            for rd in r.rounds:
                rows = [x for x in rd.log_history if key in x]
                if rows:
                    xs = [step0 + float(x.get("step", i + 1)) for i, x in enumerate(rows)]
                    series.append((f"{r.name} r{rd.index}", xs, [float(x[key]) for x in rows]))
                    step0 = xs[-1]
        if series:
            fig, ax = plt.subplots(figsize=(6.5, 3.2))
            for label, xs, ys in series:
                ax.plot(xs, ys, marker=".", label=label)
            ax.set_title(title)
            ax.set_xlabel("step (cumulative over rounds)")
            ax.grid(alpha=.3)
            ax.legend(fontsize=8)
            out.append((title, _png(fig)))
    rounds_max = max((len(r.rounds) for r in runs), default=0)
    if rounds_max:
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for r in runs:
            xs = [rd.index for rd in r.rounds if rd.pass_rate is not None]
            ax.plot(xs, [100 * rd.pass_rate for rd in r.rounds if rd.pass_rate is not None], marker="o",
                    label=r.name)
        ax.set_title("training samples passing their synthetic tests")
        ax.set_xlabel("round")
        ax.set_xticks(range(rounds_max))
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.grid(alpha=.3)
        ax.legend(fontsize=8)
        out.append(("sample pass rate", _png(fig)))
    return out


def funnel_rows(run: RunData) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    rs = run.rounds

    def per_round(label: str, f) -> None:
        rows.append((label, [f(rd) for rd in rs]))

    t = run.tests
    per_round("problems", lambda rd: str((rd.tests or {}).get("problems_tested", run.problems)))
    per_round("tests generated", lambda rd: str((rd.tests or t).get("tests_generated", "–")))
    per_round("tests parsed / valid", lambda rd: f"{(rd.tests or t).get('tests_parsed', '–')} / "
                                                 f"{(rd.tests or t).get('tests_valid', '–')}")
    per_round("tests kept (after cap)", lambda rd: str((rd.tests or t).get("tests_kept", "–")))
    per_round("problems with kept tests", lambda rd: str((rd.tests or t).get("problems_with_tests", "–")))
    per_round("samples", lambda rd: str(rd.samples))
    per_round("samples executed", lambda rd: str(rd.verdicts))
    per_round("sample pass rate", lambda rd: _pct(rd.pass_rate))
    per_round("problems with signal (some pass, some fail)", lambda rd: str(rd.problems_with_signal))
    per_round("problems all pass / none pass", lambda rd: f"{rd.problems_all_pass} / {rd.problems_none_pass}")
    per_round("preference records", lambda rd: str(rd.records))
    per_round("pairs / desirable+undesirable",
              lambda rd: str(rd.pairs) if rd.pairs else f"{rd.desirable}+{rd.undesirable}")
    per_round("samples cut at the token limit (dropped)",
              lambda rd: f"{rd.truncated[0]} ({rd.truncated[1]})" if rd.truncated else "–")
    per_round("trained", lambda rd: "yes" if rd.trained else ("skipped (no data)" if rd.train_skipped else "no"))
    per_round("training health", lambda rd: "–" if rd.health is None else
              ("ok" if not rd.health else f"WARNING ({len(rd.health)})"))
    return rows


def health_lines(run: RunData) -> list[str]:
    """The trainer's health warnings in full, one line each: drift a user should see before evaluating."""
    return [f"round {rd.index} training health WARNING: {w}" for rd in run.rounds for w in (rd.health or [])]


def summary_text(runs: Sequence[RunData]) -> str:
    lines: list[str] = []
    for run in runs:
        status = "finished" if run.finished else f"incomplete (current stage: {run.current or 'none'})"
        lines.append(f"== {run.name} ({run.path}) — {status}")
        lines.append(f"problems {run.problems} (decontaminated away: {run.decontaminated})")
        if run.rounds:
            rows = funnel_rows(run)
            w = max(len(r[0]) for r in rows)
            lines.append(" " * (w + 2) + "  ".join(f"{'r' + str(rd.index):>10}" for rd in run.rounds))
            for label, vals in rows:
                lines.append(f"{label:<{w}}  " + "  ".join(f"{v:>10}" for v in vals))
        lines += health_lines(run)
        for b in run.benchmarks():
            vals = run.pass_at(b, 1)
            labels = _policy_labels(len(run.rounds))
            lines.append(f"pass@1 {b}: " + ", ".join(f"{lab} {_pct(v)}" for lab, v in zip(labels, vals, strict=True)
                                                    if v is not None))
    return "\n".join(lines)


def render_html(runs: Sequence[RunData]) -> str:
    title = "plumcode report: " + ", ".join(r.name for r in runs)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>",
             f"<p class='muted'>generated {_e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}</p>"]
    # overview
    parts.append("<h2>Runs</h2><table><tr><th class='l'>run</th><th class='l'>directory</th><th>status</th>"
                 "<th class='l'>policy</th><th>objective</th><th>rounds</th><th>problems</th>"
                 "<th>decontaminated</th></tr>")
    for r in runs:
        c = r.config
        parts.append(
            f"<tr><td class='l'>{_e(r.name)}</td><td class='l'>{_e(r.path)}</td>"
            f"<td>{'finished' if r.finished else _e('at ' + str(r.current or '-'))}</td>"
            f"<td class='l'>{_e(c.get('policy', {}).get('model', '?'))}</td>"
            f"<td>{_e(c.get('training', {}).get('objective', '?'))}</td><td>{len(r.rounds)}/{_e(c.get('rounds', '?'))}"
            f"</td><td>{r.problems}</td><td>{r.decontaminated}</td></tr>")
    parts.append("</table>")
    # pass@1
    benches: list[str] = []
    for r in runs:
        benches += [b for b in r.benchmarks() if b not in benches]
    if benches:
        parts.append("<h2>pass@1 per benchmark</h2><table><tr><th class='l'>run</th><th class='l'>benchmark</th>")
        n = max(len(r.rounds) for r in runs)
        parts += [f"<th>{_e(lab)}</th>" for lab in _policy_labels(n)] + ["<th>Δ vs initial</th></tr>"]
        for r in runs:
            for b in benches:
                vals = r.pass_at(b, 1) + [None] * (n + 1 - len(r.pass_at(b, 1)))
                last = next((v for v in reversed(vals) if v is not None), None)
                delta = "–"
                if vals[0] is not None and last is not None:
                    d = 100 * (last - vals[0])
                    delta = f"<span class='{'up' if d > 0 else 'down' if d < 0 else ''}'>{d:+.1f}</span>"
                parts.append(f"<tr><td class='l'>{_e(r.name)}</td><td class='l'>{_e(b)}</td>"
                             + "".join(f"<td>{_pct(v)}</td>" for v in vals) + f"<td>{delta}</td></tr>")
        parts.append("</table><p class='muted'>“initial” is the policy before training (baseline); "
                     "“after rN” is the checkpoint trained in round N.</p>")
    # funnel
    parts.append("<h2>Funnel per round</h2>")
    for r in runs:
        if not r.rounds:
            parts.append(f"<p>{_e(r.name)}: no round started yet.</p>")
            continue
        parts.append(f"<h3>{_e(r.name)}</h3><table><tr><th class='l'></th>"
                     + "".join(f"<th>round {rd.index}</th>" for rd in r.rounds) + "</tr>")
        for label, vals in funnel_rows(r):
            parts.append(f"<tr><td class='l'>{_e(label)}</td>" + "".join(f"<td>{_e(v)}</td>" for v in vals) + "</tr>")
        parts.append("</table>")
        warn = health_lines(r)
        if warn:
            parts.append("<ul class='warn'>" + "".join(f"<li>{_e(w)}</li>" for w in warn) + "</ul>")
        statuses = sorted({s for rd in r.rounds for s in rd.statuses})
        if statuses:
            parts.append("<table><tr><th class='l'>verdict status</th>"
                         + "".join(f"<th>round {rd.index}</th>" for rd in r.rounds) + "</tr>")
            for s in statuses:
                parts.append(f"<tr><td class='l'>{_e(s)}</td>"
                             + "".join(f"<td>{rd.statuses.get(s, 0)}</td>" for rd in r.rounds) + "</tr>")
            parts.append("</table>")
        stages = sorted({s for rd in r.rounds for s in rd.seconds})
        if stages:
            parts.append("<table><tr><th class='l'>stage seconds</th>"
                         + "".join(f"<th>round {rd.index}</th>" for rd in r.rounds) + "</tr>")
            for s in stages:
                parts.append(f"<tr><td class='l'>{_e(s)}</td>"
                             + "".join(f"<td>{rd.seconds.get(s, 0):.0f}</td>" for rd in r.rounds) + "</tr>")
            parts.append("</table>")
    # plots
    plots = _plots(runs)
    if plots:
        parts.append("<h2>Plots</h2>")
        for t, src in plots:
            parts.append(f"<h3>{_e(t)}</h3><img alt='{_e(t)}' src='{src}'>")
    # examples
    parts.append("<h2>Example preference data (chosen vs rejected)</h2>")
    any_ex = False
    for r in runs:
        for rd in r.rounds:
            for ex in rd.examples[:2]:
                any_ex = True
                parts.append(f"<h4>{_e(r.name)} · round {rd.index} · {_e(ex['problem_id'])}</h4>"
                             f"<details><summary>prompt</summary><pre>{_e(ex['prompt'])}</pre></details>"
                             f"<div class='pair'><div><h4 class='up'>chosen (passes all tests)</h4>"
                             f"<pre>{_e(ex['chosen'])}</pre></div><div><h4 class='down'>rejected "
                             f"({_e(ex['reason'])})</h4><pre>{_e(ex['rejected'])}</pre></div></div>")
    if not any_ex:
        parts.append("<p class='muted'>no problem had both a passing and a failing sample yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None, *, echo: bool = False) -> Path:
    """Write the HTML report for one or more runs; returns its path (default: first run's report.html)."""
    runs = [collect_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("no run directory given")
    path = Path(out) if out else RunDir(runs[0].path).report
    atomic_write_text(path, render_html(runs))
    if echo:
        print(summary_text(runs))
    return path
