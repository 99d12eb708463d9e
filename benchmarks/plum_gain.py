"""The headline experiment: pass@1 of PLUM arms against the initial policy, with paired bootstrap CIs.

One trunk run (``WORKDIR/trunk``) writes the tests, evaluates the initial policy (arm ``initial``)
and samples and executes round 0; every other arm is a run directory forked from it
(:func:`plumcode.loop.fork.fork`), so all arms see the same problems, tests and initial samples,
and spend the same sampling budget:

    plum-kto-offline  one round of KTO on n samples/problem
    plum-kto-online   R rounds of KTO, n/R samples/problem each (round 0 = the first n/R of the trunk's)
    plum-dpo          one round of DPO (pairs from the same samples)
    rft               one round of SFT on the passing samples (rejection-sampling fine-tuning)

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
from pathlib import Path

from plumcode.io import atomic_write_json, atomic_write_text
from plumcode.loop.config import RunConfig, dump_config, load_config
from plumcode.loop.fork import fork
from plumcode.loop.runner import Runner, round_dir_name
from plumcode.loop.state import RunState

ROOT = Path(__file__).resolve().parents[1]
TRUNK_UNTIL = "round-000/execute"
ARMS = ("plum-kto-offline", "plum-kto-online", "rft", "plum-dpo")
# a plus benchmark's evaluation also scores its base tests: the column of the original benchmark
BASE_OF = {"humaneval+": "humaneval", "mbpp+": "mbpp"}
COLUMNS = ("humaneval", "humaneval+", "mbpp", "mbpp+", "livecodebench")


class SittingOver(Exception):
    """The sitting's time is up; everything done so far is on disk and resumes next time."""


def arm_config(base: RunConfig, arm: str, online_rounds: int) -> tuple[RunConfig, int | None]:
    """The arm's config and how many of the trunk's round-0 samples per problem it takes."""
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
        raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")
    return RunConfig.model_validate(d), take


def _final_eval(run: Path, cfg: RunConfig) -> Path | None:
    st = RunState.load(run)
    key = f"{round_dir_name(cfg.rounds - 1)}/eval"
    return run / round_dir_name(cfg.rounds - 1) / "eval.json" if st.is_done(key) else None


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


def _yaml(path: Path) -> dict:
    """The arm's whole resolved config, so the results file stands alone outside the workdir."""
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def collect(workdir: Path, base_cfg_path: Path, arms: tuple[str, ...], online_rounds: int) -> dict:
    """Every finished arm's pass@1 (percent) and its paired bootstrap CI against ``initial``."""
    from plumcode.report.stats import paired_bootstrap, paired_scores

    base = load_config(base_cfg_path)
    trunk = workdir / "trunk"
    init_eval = trunk / "baseline" / "eval.json"
    rows, status = [], {}
    init = per_problem(init_eval) if RunState.load(trunk).is_done("baseline/eval") else None
    status["initial"] = "done" if init else "pending"
    if init:
        rows.append({"arm": "initial", **{c: round(100 * sum(v.values()) / len(v), 2) for c, v in init.items()},
                     "ci95": {}, "config": str(trunk / "config.yaml"), "eval": str(init_eval),
                     "resolved_config": _yaml(trunk / "config.yaml")})
    for arm in arms:
        cfg, _ = arm_config(base, arm, online_rounds)
        run = workdir / arm
        ev = _final_eval(run, cfg) if (run / "state.json").exists() else None
        status[arm] = "done" if ev else ("started" if (run / "state.json").exists() else "pending")
        if ev is None or init is None:
            continue
        scores = per_problem(ev)
        row: dict = {"arm": arm, "ci95": {}, "config": str(run / "config.yaml"), "eval": str(ev),
                     "resolved_config": _yaml(run / "config.yaml")}
        for col, v in scores.items():
            row[col] = round(100 * sum(v.values()) / len(v), 2)
            if col in init:
                a, b = paired_scores(v, init[col])
                row["ci95"][col] = paired_bootstrap(a, b).to_json()
        both = [c for c in ("humaneval+", "mbpp+") if c in scores and c in init]
        if len(both) == 2:  # the goal metric: average of HumanEval+ and MBPP+
            row["avg(humaneval+,mbpp+)"] = round((row["humaneval+"] + row["mbpp+"]) / 2, 2)
        rows.append(row)
    if init and "humaneval+" in init and "mbpp+" in init:
        rows[0]["avg(humaneval+,mbpp+)"] = round((rows[0]["humaneval+"] + rows[0]["mbpp+"]) / 2, 2)
    return {"arms": rows, "status": status, "base_config": str(base_cfg_path), "workdir": str(workdir),
            "online_rounds": online_rounds}


def markdown(res: dict, command: str) -> str:
    seen = {c for r in res["arms"] for c in r if c not in ("arm", "ci95", "config", "eval", "resolved_config")}
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
        lines.append(f"| {r['arm']} | " + " | ".join(cells) + " |")
    pending = [a for a, s in res["status"].items() if s != "done"]
    table = "\n".join(lines) if res["arms"] else "No arm has finished yet."
    return ("# plumcode headline experiment (greedy pass@1, %; delta vs initial with paired-bootstrap 95% CI)\n\n"
            + table + "\n\n"
            + (f"Not finished yet: {', '.join(pending)} (rerun the command to continue).\n\n" if pending else "")
            + f"Reproduce: `{command}` (configs: `{res['base_config']}`, each arm's resolved config in "
              f"`{res['workdir']}/<arm>/config.yaml`).\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "plum-gain.yaml"), help="base run config")
    ap.add_argument("--workdir", default="runs/plum-gain")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"arms to run, in order (of {', '.join(ARMS)})")
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
        deadline = time.time() + args.budget_min * 60

        def over(*_: object) -> None:
            raise SittingOver
        signal.signal(signal.SIGALRM, over)
        signal.alarm(int((args.budget_min + args.grace_min) * 60))
        try:
            _sitting(workdir, base, arms, args.online_rounds, deadline)
        except (SittingOver, KeyboardInterrupt):
            print("[plum-gain] sitting over: progress is saved; rerun the same command to continue",
                  file=sys.stderr)
        finally:
            signal.alarm(0)

    res = collect(workdir, base_path, arms, args.online_rounds)
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
    runs = [workdir / "trunk"] + [workdir / a for a in arms if (workdir / a / "state.json").exists()]
    try:
        from plumcode.report import write_report

        write_report(runs, workdir / "report.html")
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
        fork(trunk, run, cfg, samples_per_problem=take)
        Runner(run, cfg).run(deadline=deadline)


if __name__ == "__main__":
    sys.exit(main())
