"""The headline experiment: pass@1 of PLUM arms against the initial policy, with paired bootstrap CIs.

One trunk run (``WORKDIR/trunk``) writes the tests, evaluates the initial policy (arm ``initial``)
and samples and executes round 0; every other arm is a run directory forked from it
(:func:`plumcode.loop.fork.fork`), so all arms see the same problems, tests and initial samples,
and spend the same sampling budget:

    plum-kto-offline  one round of KTO on n samples/problem
    plum-kto-online   R rounds of KTO, n/R samples/problem each (round 0 = the first n/R of the trunk's)
    plum-dpo          one round of DPO (pairs from the same samples)
    rft               one round of SFT on the passing samples (rejection-sampling fine-tuning)

Ablations (``ABLATIONS``: ``kto-offline-twosided``, ``kto-offline-anchored``, ``kto-offline-noaug``)
change one designed arm in one respect and run only when named in ``--arms``.

Resumable across sittings: ``--budget-min`` stops starting new stages after that many minutes
and interrupts a running stage ``--grace-min`` later (stages resume at record level); rerun the
same command to continue. After every sitting the finished arms are written to
``benchmarks/results/plum_gain.json`` and ``.md`` and ``WORKDIR/report.html`` shows them side by side.

    python benchmarks/plum_gain.py --workdir runs/plum-gain --budget-min 110
    python benchmarks/plum_gain.py --workdir runs/plum-gain --results-only   # tables from what is done
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plumcode.io import atomic_write_json, atomic_write_text
from plumcode.loop.config import RunConfig, apply_overrides, dump_config, load_config
from plumcode.loop.fork import fork, shareable
from plumcode.loop.layout import RunDir, round_dir_name
from plumcode.loop.runner import Runner
from plumcode.loop.state import RunState

ROOT = Path(__file__).resolve().parents[1]
TRUNK_UNTIL = f"{round_dir_name(0)}/execute"
ARMS = ("plum-kto-offline", "plum-kto-online", "rft", "plum-dpo")


@dataclass(frozen=True)
class Ablation:
    """A designed arm changed in one respect, run only when named in --arms. Ablations answer "why"
    questions about the designed arms, so they never replace one and the table marks them."""

    of: str  # the designed arm it modifies
    why: str
    overrides: tuple[str, ...] = ()  # config overrides (``--set`` syntax)
    # "no-augmented": the arm's copy of the trunk's tests loses the type-aware augmented ones before
    # its round 0 executes, so the trunk's samples are relabelled by the LM-proposed inputs alone
    tests: str = "all"

    def describe(self) -> list[str]:
        return list(self.overrides) + (["tests: augmented dropped"] if self.tests == "no-augmented" else [])


ABLATIONS: dict[str, Ablation] = {
    "kto-offline-twosided": Ablation("plum-kto-offline", "only problems whose samples carry both labels: "
                                     "no undesirable-only records of none-pass problems",
                                     ("preference.options.one_sided=skip",)),
    "kto-offline-anchored": Ablation("plum-kto-offline", "plus the NLL of the desirable completions (RPO-style): "
                                     "does keeping the chosen likelihood up stop the drift?",
                                     ("training.options.sft_weight=1.0",)),
    "kto-offline-noaug": Ablation("plum-kto-offline", "labels from the LM-proposed inputs only: the label audit "
                                  "measures 4% false fails without the augmented tests against 18% with them",
                                  tests="no-augmented"),
}
# a plus benchmark's evaluation also scores its base tests: the column of the original benchmark
BASE_OF = {"humaneval+": "humaneval", "mbpp+": "mbpp"}
COLUMNS = ("humaneval", "humaneval+", "mbpp", "mbpp+", "livecodebench")


class SittingOver(Exception):
    """The sitting's time is up; everything done so far is on disk and resumes next time."""


def arm_config(base: RunConfig, arm: str, online_rounds: int) -> tuple[RunConfig, int | None]:
    """The arm's config and how many of the trunk's round-0 samples per problem it takes."""
    if arm in ABLATIONS:
        ab = ABLATIONS[arm]
        cfg, take = arm_config(base, ab.of, online_rounds)
        d = apply_overrides(cfg.model_dump(mode="json"), list(ab.overrides))
        d["name"] = arm
        return RunConfig.model_validate(d), take
    d = base.model_dump(mode="json")
    d["name"] = arm
    take = None
    if arm == "plum-kto-offline":
        d.update(rounds=1)
        d["training"]["objective"] = "kto"
    elif arm == "plum-kto-online":
        n = base.sampling.n
        if n % online_rounds:
            raise ValueError(f"sampling.n={n} must divide into {online_rounds} rounds for an equal budget")
        take = n // online_rounds
        d.update(rounds=online_rounds)
        d["sampling"]["n"] = take
        d["training"]["objective"] = "kto"
    elif arm == "plum-dpo":
        d.update(rounds=1)
        d["training"]["objective"] = "dpo"
    elif arm == "rft":
        d.update(rounds=1)
        d["training"]["objective"] = "sft"
    else:
        raise ValueError(f"unknown arm {arm!r}; choose from {ARMS} or the ablations {tuple(ABLATIONS)}")
    return RunConfig.model_validate(d), take


def _final_eval(run: Path, cfg: RunConfig) -> Path | None:
    st = RunState.load(run)
    key = f"{round_dir_name(cfg.rounds - 1)}/eval"
    return RunDir(run).eval_json(cfg.rounds - 1) if st.is_done(key) else None


def per_problem(eval_json: Path) -> dict[str, dict[str, float]]:
    """column -> problem id -> pass@1 (fraction of the problem's samples that passed)."""
    d = json.loads(eval_json.read_text(encoding="utf-8"))["benchmarks"]
    out: dict[str, dict[str, float]] = {}
    for bench, res in d.items():
        probs = res.get("problems") or []
        out[bench] = {str(p["problem_id"]): (p.get("n_correct", 0) / p["n"] if p.get("n") else 0.0) for p in probs}
        if bench in BASE_OF and probs and all("n_base_correct" in p for p in probs):
            out[BASE_OF[bench]] = {str(p["problem_id"]): (p["n_base_correct"] / p["n"] if p.get("n") else 0.0)
                                   for p in probs}
    return out


def answer_stats(run: Path, r: int | None, cfg: RunConfig) -> dict[str, dict]:
    """How long the evaluation answers of ``run``'s round r (None: its initial policy) are and how
    many hit the token limit, per benchmark: preference training can drift the policy's length, and a
    cut-off answer usually fails."""
    from plumcode.io import load_jsonl

    out = {}
    for b in cfg.evaluation.benchmarks:
        f = RunDir(run).eval_samples(r, b.name)
        rows = list(load_jsonl(f)) if f.exists() else []
        if rows:
            toks = [int(r.get("n_tokens") or 0) for r in rows]
            out[b.name] = {
                "samples": len(rows), "mean_tokens": round(sum(toks) / len(toks), 1),
                "cut_at_limit": sum(r.get("finish_reason") == "length" for r in rows)}
    return out


TRAIN_METRICS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen")


def round_stats(run: Path, cfg: RunConfig) -> list[dict]:
    """What each round trained on and how training moved, from the run report's collector: the
    pass rate of the round's samples (on-policy progress on the training problems), how many
    problems gave a signal, the records, and the train metrics averaged over the last third of the
    steps (one step's values are too noisy to compare arms; a KTO batch without a desirable record
    logs no chosen reward, so each metric averages the steps that logged it)."""
    from plumcode.report.collect import collect_run

    st = RunState.load(run)
    out = []
    for rr in collect_run(run).rounds[:cfg.rounds]:
        if not st.is_done(f"{round_dir_name(rr.index)}/execute"):
            break
        row: dict = {"round": rr.index, "samples": rr.verdicts, "pass_rate": round(rr.pass_rate or 0.0, 4),
                     "problems_with_signal": rr.problems_with_signal, "problems_all_pass": rr.problems_all_pass,
                     "problems_none_pass": rr.problems_none_pass, "records": rr.records, "pairs": rr.pairs,
                     "desirable": rr.desirable, "undesirable": rr.undesirable}
        tr = st.summary(f"{round_dir_name(rr.index)}/train") if rr.trained else {}
        steps = [x for x in rr.log_history if "step" in x] if tr else []
        if steps:
            tail = steps[-max(1, len(steps) // 3):]
            row["train"] = {"steps": tr.get("steps"), "seconds": round(float(tr.get("seconds") or 0), 1),
                            **{m: round(sum(v) / len(v), 4) for m in TRAIN_METRICS
                               if (v := [x[m] for x in tail if m in x])}}
        out.append(row)
    return out


def _yaml(path: Path) -> dict:
    """The arm's whole resolved config, so the results file stands alone outside the workdir."""
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def collect(workdir: Path, base_cfg_path: Path, arms: tuple[str, ...], online_rounds: int) -> dict:
    """Every finished arm's pass@1 (percent) and its paired bootstrap CI against ``initial``."""
    from plumcode.report.stats import averaged_paired_bootstrap, paired_bootstrap, paired_scores

    base = load_config(base_cfg_path)
    trunk = workdir / "trunk"
    init_eval = RunDir(trunk).baseline_eval
    rows, status = [], {}
    init = per_problem(init_eval) if RunState.load(trunk).is_done("baseline/eval") else None
    status["initial"] = "done" if init else "pending"
    if init:
        rows.append({"arm": "initial", **{c: round(100 * sum(v.values()) / len(v), 2) for c, v in init.items()},
                     "ci95": {}, "config": str(RunDir(trunk).config), "eval": str(init_eval),
                     "resolved_config": _yaml(RunDir(trunk).config), "answers": answer_stats(trunk, None, base)})
    for arm in arms:
        cfg, _ = arm_config(base, arm, online_rounds)
        run = workdir / arm
        started = RunDir(run).state.exists()
        ev = _final_eval(run, cfg) if started else None
        status[arm] = "done" if ev else ("started" if started else "pending")
        if ev is None or init is None:
            continue
        scores = per_problem(ev)
        row: dict = {"arm": arm, "ci95": {}, "config": str(RunDir(run).config), "eval": str(ev),
                     "resolved_config": _yaml(RunDir(run).config), "answers": answer_stats(run, cfg.rounds - 1, cfg),
                     "rounds": round_stats(run, cfg)}
        if arm in ABLATIONS:
            ab = ABLATIONS[arm]
            row.update(ablation_of=ab.of, overrides=ab.describe(), why=ab.why)
        for col, v in scores.items():
            row[col] = round(100 * sum(v.values()) / len(v), 2)
            if col in init:
                a, b = paired_scores(v, init[col])
                row["ci95"][col] = paired_bootstrap(a, b).to_json()
                # a delta near zero can hide much churn: the problems the arm newly solves and loses
                row.setdefault("churn", {})[col] = {"gained": sum(x > y for x, y in zip(a, b, strict=True)),
                                                    "lost": sum(x < y for x, y in zip(a, b, strict=True))}
        both = [c for c in ("humaneval+", "mbpp+") if c in scores and c in init]
        if len(both) == 2:  # the goal metric: average of HumanEval+ and MBPP+
            row["avg(humaneval+,mbpp+)"] = round((row["humaneval+"] + row["mbpp+"]) / 2, 2)
            row["ci95"]["avg(humaneval+,mbpp+)"] = averaged_paired_bootstrap(
                [paired_scores(scores[c], init[c]) for c in both]).to_json()
        rows.append(row)
    if init and "humaneval+" in init and "mbpp+" in init:
        rows[0]["avg(humaneval+,mbpp+)"] = round((rows[0]["humaneval+"] + rows[0]["mbpp+"]) / 2, 2)
    return {"arms": rows, "status": status, "base_config": str(base_cfg_path), "workdir": str(workdir),
            "online_rounds": online_rounds}


AUDIT_VERSION = 2  # a cached label_audit.json of another version is recomputed


def _canon(test: dict) -> str:
    return json.dumps(test, sort_keys=True)


def _augmented(trunk: Path) -> dict[str, set[str]]:
    """problem id -> the kept tests (canonical JSON) that type-aware augmentation made (tests.jsonl)."""
    from plumcode.io import load_jsonl

    if not RunDir(trunk).tests().exists():
        return {}
    return {str(r["problem_id"]): {_canon(t["test"]) for t in r.get("tests", [])
                                   if t.get("status") == "kept" and t.get("origin") == "augmented"}
            for r in load_jsonl(RunDir(trunk).tests())}


def _audit(pairs: list[tuple[str, bool, bool]]) -> dict:
    """Agreement of (problem, synthetic label, dataset label) triples."""
    n = len(pairs)
    gt_fail = sum(not g for _, _, g in pairs)

    def signal(idx: int) -> int:  # problems whose samples carry both labels
        by: dict[str, set[bool]] = {}
        for rec in pairs:
            by.setdefault(rec[0], set()).add(rec[idx])
        return sum(len(v) == 2 for v in by.values())

    return {"samples": n, "problems": len({p for p, _, _ in pairs}),
            "pass_rate_synthetic": round(sum(s for _, s, _ in pairs) / max(n, 1), 4),
            "pass_rate_dataset": round((n - gt_fail) / max(n, 1), 4),
            "agreement": round(sum(s == g for _, s, g in pairs) / max(n, 1), 4),
            "false_pass": f"{sum(s and not g for _, s, g in pairs)}/{gt_fail}",
            "false_fail": f"{sum(g and not s for _, s, g in pairs)}/{n - gt_fail}",
            "problems_with_signal_synthetic": signal(1), "problems_with_signal_dataset": signal(2)}


def label_audit(workdir: Path) -> dict | None:
    """How far the synthetic tests' labels on the trunk's round-0 samples agree with the training
    problems' own dataset asserts (MBPP's three, the first of which the prompt shows): the training
    signal's label noise, measured on the data PLUM actually trains on. The dataset asserts are weak
    tests themselves, so a 'false pass' here is a lower bound and a 'false fail' may be a true fail.

    ``without_augmented`` relabels the same samples from their per-test results with the
    type-aware augmented tests left out (the LM-proposed inputs only): what augmentation buys in
    false passes and costs in false fails, with no new execution."""
    from plumcode.io import atomic_write_jsonl, load_jsonl
    from plumcode.problems.schema import read_problems
    from plumcode.sandbox import SandboxConfig, execute
    from plumcode.sandbox.types import Sample

    trunk = workdir / "trunk"
    if not RunState.load(trunk).is_done(TRUNK_UNTIL):
        return None
    out = workdir / "label_audit.json"  # round 0 of the trunk never changes once done: computed once
    if out.exists():
        cached = json.loads(out.read_text(encoding="utf-8"))
        if cached.get("version") == AUDIT_VERSION:
            return cached
    rd = RunDir(trunk)
    probs = [p for p in read_problems(rd.problems) if p.tests]
    if not probs:  # the instructions carry no tests of their own: nothing to audit against
        return None
    ids = {p.id for p in probs}
    samples = [Sample(r["problem_id"], r["sample_id"], r["code"]) for r in load_jsonl(rd.samples(0))
               if r["problem_id"] in ids]
    gt_path = workdir / "label_audit.verdicts.jsonl"  # the dataset asserts' verdicts, kept for inspection
    gt_rows = list(load_jsonl(gt_path)) if gt_path.exists() else []
    if {r["sample_id"] for r in gt_rows} != {s.sample_id for s in samples}:
        gt_rows = [v.to_json() for v in execute(probs, samples, SandboxConfig())]
        atomic_write_jsonl(gt_path, gt_rows)
    gt = {str(r["sample_id"]): bool(r["passed"]) for r in gt_rows}
    verdicts = list(load_jsonl(rd.verdicts(0)))
    with_tests = {r["id"]: r.get("tests") or [] for r in load_jsonl(rd.train_problems())}
    pairs = [(str(v["problem_id"]), bool(v["passed"]), gt[str(v["sample_id"])]) for v in verdicts
             if str(v["sample_id"]) in gt and with_tests.get(v["problem_id"])]
    res = {"version": AUDIT_VERSION, **_audit(pairs)}
    aug = _augmented(trunk)
    if any(aug.values()):
        keep = {pid: [_canon(t) not in aug.get(pid, set()) for t in tests] for pid, tests in with_tests.items()}
        sub = []
        for v in verdicts:
            pid, sid = str(v["problem_id"]), str(v["sample_id"])
            k, statuses = keep.get(pid) or [], [t.get("status") for t in v.get("tests") or []]
            if sid not in gt or not any(k) or len(statuses) != len(k):
                continue  # no LM-proposed test left, or a verdict without per-test results
            sub.append((pid, all(st == "pass" for st, kk in zip(statuses, k, strict=True) if kk), gt[sid]))
        res["without_augmented"] = _audit(sub)
    atomic_write_json(out, res)
    return res


def markdown(res: dict, command: str) -> str:
    seen = {c for r in res["arms"] for c in r
            if c not in ("arm", "ci95", "config", "eval", "resolved_config", "ablation_of", "overrides", "why",
                         "answers", "rounds", "churn")}
    cols = [c for c in COLUMNS if c in seen] + sorted(seen - set(COLUMNS) - {"avg(humaneval+,mbpp+)"})
    cols += ["avg(humaneval+,mbpp+)"] if "avg(humaneval+,mbpp+)" in seen else []
    lines = ["| arm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in res["arms"]:
        cells = []
        for c in cols:
            v = r.get(c)
            ci = r["ci95"].get(c)
            cells.append("" if v is None else (f"{v:.1f} ({ci['delta']:+.1f} [{ci['low']:+.1f}, {ci['high']:+.1f}])"
                                               if ci else f"{v:.1f}"))
        name = f"{r['arm']} (ablation: {', '.join(r['overrides'])})" if r.get("ablation_of") else r["arm"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pending = [a for a, s in res["status"].items() if s != "done"]
    table = "\n".join(lines) if res["arms"] else "No arm has finished yet."
    benches = list(dict.fromkeys(b for r in res["arms"] for b in r.get("answers", {})))
    if benches:
        table += ("\n\nEvaluation answers: mean length in tokens / answers cut at the token limit\n\n| arm | "
                  + " | ".join(benches) + " |\n" + "|---" * (len(benches) + 1) + "|\n")
        for r in res["arms"]:
            a = r.get("answers", {})
            table += f"| {r['arm']} | " + " | ".join(
                f"{a[b]['mean_tokens']:.0f} / {a[b]['cut_at_limit']}" if b in a else "" for b in benches) + " |\n"
        table = table.rstrip("\n")
    churn = [r for r in res["arms"] if r.get("churn")]
    if churn:
        cb = [c for c in cols if any(c in r["churn"] for r in churn)]
        table += ("\n\nProblems gained / lost against the initial policy\n\n| arm | " + " | ".join(cb) + " |\n"
                  + "|---" * (len(cb) + 1) + "|\n")
        for r in churn:
            table += f"| {r['arm']} | " + " | ".join(
                f"+{r['churn'][b]['gained']} / -{r['churn'][b]['lost']}" if b in r["churn"] else "" for b in cb) + " |\n"
        table = table.rstrip("\n")
    if any(r.get("rounds") for r in res["arms"]):
        table += ("\n\nTraining data and dynamics per round (pass rate of the round's samples on the synthetic tests; "
                  "problems with both labels / all-pass / none-pass; records; train metrics averaged over the last "
                  "third of the steps)\n\n| arm | round | pass rate | problems 2-sided / all / none | records | steps "
                  "| chosen reward | rejected reward | margin | loss |\n" + "|---" * 10 + "|\n")
        for r in res["arms"]:
            for x in r.get("rounds", []):
                t = x.get("train", {})
                kind = (f"{x['pairs']} pairs" if x.get("pairs") else
                        f"{x.get('desirable', 0)}+ / {x.get('undesirable', 0)}-" if x.get("desirable") is not None
                        else x.get("records", ""))
                table += (f"| {r['arm']} | {x['round']} | {100 * (x.get('pass_rate') or 0):.1f}% | "
                          f"{x.get('problems_with_signal', '')} / {x.get('problems_all_pass', '')} / "
                          f"{x.get('problems_none_pass', '')} | {kind} | {t.get('steps', '')} | "
                          + " | ".join(f"{t[m]:+.2f}" if m in t else "" for m in
                                       ("rewards/chosen", "rewards/rejected", "rewards/margins"))
                          + (f" | {t['loss']:.3f} |" if "loss" in t else " | |") + "\n")
        table = table.rstrip("\n")
    if res.get("label_audit"):
        au = res["label_audit"]
        table += ("\n\nLabel audit, round-0 samples of the trunk (synthetic tests vs the training problems' own "
                  f"dataset asserts): {au['samples']} samples on {au['problems']} problems, agreement "
                  f"{100 * au['agreement']:.1f}%, false pass {au['false_pass']}, false fail {au['false_fail']}, "
                  f"pass rate {100 * au['pass_rate_synthetic']:.1f}% (synthetic) vs "
                  f"{100 * au['pass_rate_dataset']:.1f}% (dataset), problems with both labels "
                  f"{au['problems_with_signal_synthetic']} vs {au['problems_with_signal_dataset']}.")
        if au.get("without_augmented"):
            wa = au["without_augmented"]
            table += (f" Without the augmented tests (LM-proposed inputs only, same samples): {wa['samples']} samples, "
                      f"agreement {100 * wa['agreement']:.1f}%, false pass {wa['false_pass']}, false fail "
                      f"{wa['false_fail']}, problems with both labels {wa['problems_with_signal_synthetic']}.")
    return ("# plumcode headline experiment (greedy pass@1, %; delta vs initial with paired-bootstrap 95% CI)\n\n"
            + table + "\n\n"
            + (f"Not finished yet: {', '.join(pending)} (rerun the command to continue).\n\n" if pending else "")
            + f"Reproduce: `{command}` (configs: `{res['base_config']}`, each arm's resolved config in "
              f"`{res['workdir']}/<arm>/config.yaml`).\n")


def sitting(work: Callable[[float], None], budget_min: float, grace_min: float, label: str) -> None:
    """Run ``work(deadline)`` as one sitting: no stage starts after ``budget_min`` minutes, and a running
    one is interrupted ``grace_min`` later; everything done so far is on disk and resumes next time."""
    def over(*_: object) -> None:
        raise SittingOver
    signal.signal(signal.SIGALRM, over)
    signal.alarm(int((budget_min + grace_min) * 60))
    try:
        work(time.time() + budget_min * 60)
    except (SittingOver, KeyboardInterrupt):
        print(f"[{label}] sitting over: progress is saved; rerun the same command to continue", file=sys.stderr)
    finally:
        signal.alarm(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "plum-gain.yaml"), help="base run config")
    ap.add_argument("--workdir", default="runs/plum-gain")
    ap.add_argument("--arms", default=",".join(ARMS),
                    help=f"arms to run, in order (of {', '.join(ARMS)}; ablations: {', '.join(ABLATIONS)})")
    ap.add_argument("--online-rounds", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base config field for every arm (fix it for the whole experiment)")
    ap.add_argument("--budget-min", type=float, default=110.0, help="stop starting stages after this many minutes")
    ap.add_argument("--grace-min", type=float, default=10.0, help="then interrupt the running stage this much later")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "plum_gain.json"))
    ap.add_argument("--results-only", action="store_true", help="only write the tables from finished arms")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    base_path = workdir / "base.yaml"  # the base config as first used, overrides applied: fixed for all sittings
    base = load_config(args.config, args.overrides)
    if base_path.exists() and base_path.read_text(encoding="utf-8") != dump_config(base):
        print(f"{workdir} was started with another base config ({base_path}); use another --workdir",
              file=sys.stderr)
        return 2
    atomic_write_text(base_path, dump_config(base))
    for a in arms:
        arm_config(base, a, args.online_rounds)  # fail fast on a bad arm name or budget split

    if not args.results_only:
        sitting(lambda deadline: _sitting(workdir, base, arms, args.online_rounds, deadline),
                args.budget_min, args.grace_min, "plum-gain")

    res = collect(workdir, base_path, arms, args.online_rounds)
    audit = label_audit(workdir)
    if audit:
        res["label_audit"] = audit
    # what reproduces the numbers: the experiment's own settings, not this sitting's flags
    cmd = ["python benchmarks/plum_gain.py", f"--workdir {args.workdir}"]
    if Path(args.config).resolve() != (ROOT / "configs" / "plum-gain.yaml").resolve():
        cmd.append(f"--config {args.config}")
    if args.online_rounds != 2:
        cmd.append(f"--online-rounds {args.online_rounds}")
    cmd += [f"--set {o}" for o in args.overrides]
    command = " ".join(cmd) + "   # rerun until every arm is done (each sitting <= --budget-min)"
    atomic_write_json(Path(args.results), res)
    md = markdown(res, command)
    atomic_write_text(Path(args.results).with_suffix(".md"), md)
    print(md)
    runs = [workdir / "trunk"] + [workdir / a for a in arms if RunDir(workdir / a).state.exists()]
    try:
        from plumcode.report import write_report

        write_report(runs, RunDir(workdir).report)  # the arms side by side, at the workdir's root
    except Exception as e:  # noqa: BLE001 - the tables above are the result; the page is a view
        print(f"[plum-gain] report not written: {e}", file=sys.stderr)
    return 0


def _sitting(workdir: Path, base: RunConfig, arms: tuple[str, ...], online_rounds: int, deadline: float) -> None:
    def check() -> None:
        if time.time() > deadline:
            raise SittingOver

    trunk = workdir / "trunk"
    Runner(trunk, base).run(until=TRUNK_UNTIL, deadline=deadline)
    for arm in arms:
        check()
        if not RunState.load(trunk).is_done(TRUNK_UNTIL):
            raise SittingOver
        cfg, take = arm_config(base, arm, online_rounds)
        run = workdir / arm
        if RunState.load(run).finished:
            continue
        ab = ABLATIONS.get(arm)
        if ab is not None and ab.tests == "no-augmented":
            keys = tuple(s.key for s in shareable(run, cfg) if s.key != TRUNK_UNTIL)
            fork(trunk, run, cfg, stages=keys, samples_per_problem=take)
            drop_augmented_tests(trunk, run)
        else:
            fork(trunk, run, cfg, samples_per_problem=take)
        Runner(run, cfg).run(deadline=deadline)


def drop_augmented_tests(trunk: Path, run: Path) -> None:
    """Remove the type-aware augmented tests from ``run``'s training problems (once, before its round 0
    executes); ``run/ablation.json`` records what was dropped, the tests stage's summary the tests kept."""
    from plumcode.io import atomic_write_jsonl, load_jsonl

    marker = run / "ablation.json"
    if marker.exists():
        return
    if RunState.load(run).is_done(TRUNK_UNTIL):
        raise RuntimeError(f"{run}: round 0 already executed on the full tests; start the ablation afresh")
    aug = _augmented(trunk)
    rows, before, after = [], 0, 0
    for r in load_jsonl(RunDir(run).train_problems()):
        tests = r.get("tests") or []
        kept = [t for t in tests if _canon(t) not in aug.get(str(r["id"]), set())]
        before, after = before + len(tests), after + len(kept)
        rows.append({**r, "tests": kept})
    atomic_write_jsonl(RunDir(run).train_problems(), rows)
    st = RunState.load(run)
    if st.is_done("tests"):  # the fork copied the trunk's summary; the report reads the count from it
        st.complete("tests", {**st.summary("tests"), "tests_kept": after})
    atomic_write_json(marker, {"tests": "no-augmented", "tests_before": before, "tests_after": after,
                               "problems_without_tests": sum(not r["tests"] for r in rows)})


if __name__ == "__main__":
    sys.exit(main())
