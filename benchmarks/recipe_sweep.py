"""The recipe sweep: which training recipe makes PLUM improve the policy, selected on the dev split.

Every setting is scored by greedy pass@1 on ``mbpp-dev`` (50 MBPP train-split problems that are never
trained on, against their own asserts); HumanEval(+), MBPP(+) and LiveCodeBench are not looked at
here (``benchmarks/plum_gain.py`` runs them for the final arms only). All settings fork from one trunk
(``WORKDIR/trunk``: the training problems, their synthetic tests, the initial policy on dev, round-0
samples and verdicts), so they differ only in the preference and training fields they name.

Per setting the results report dev pass@1 with a paired bootstrap CI against the initial policy, the
trajectory of the desirable/chosen log-ratio (policy - reference, nats; it should not fall), the
trainer's health check (including the probe answer-length growth), the mean answer length on the dev
prompts, and for online settings the pass rate of each round's own samples on the training problems
(round 1 should beat round 0).

    python benchmarks/recipe_sweep.py --workdir runs/recipe-sweep --budget-min 100   # a sitting; rerun
    python benchmarks/recipe_sweep.py --workdir runs/recipe-sweep --results-only
    python benchmarks/recipe_sweep.py --workdir runs/recipe-sweep --settings kto-lr5e-6,dpo-lr5e-6

The trunk is the expensive part (tests + 384 samples on 2 CPU cores); ``--save-trunk`` packs it into
``benchmarks/results/recipe_sweep/trunk.tar.gz`` and a new workdir starts from that archive, so a
sweep continues on a fresh machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plum_gain import SittingOver, answer_stats, per_problem, round_stats, sitting  # noqa: E402

from plumcode.io import atomic_write_json, atomic_write_text, load_jsonl  # noqa: E402
from plumcode.loop.config import RunConfig, apply_overrides, dump_config, load_config  # noqa: E402
from plumcode.loop.fork import fork  # noqa: E402
from plumcode.loop.layout import RunDir, round_dir_name  # noqa: E402
from plumcode.loop.runner import Runner  # noqa: E402
from plumcode.loop.state import RunState  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRUNK_UNTIL = f"{round_dir_name(0)}/execute"
DEV = "mbpp-dev"
TRUNK_ARCHIVE = ROOT / "benchmarks" / "results" / "recipe_sweep" / "trunk.tar.gz"


@dataclass(frozen=True)
class Setting:
    why: str
    overrides: tuple[str, ...] = ()
    rounds: int = 1  # >1: online, n/rounds samples per round (round 0 = the first n/rounds of the trunk's)


# The base config (configs/recipe-sweep.yaml) is TRL's guidance: LoRA lr 5e-6 (KTOConfig/DPOConfig
# default 1e-6, the KTO docs 5e-7..5e-6), alpha = r, an effective batch of 16 (4 x 4 accumulation),
# truncated samples dropped. Each setting changes it in the named respects.
SETTINGS: dict[str, Setting] = {
    "kto-lr5e-6": Setting("TRL-guided KTO: lr 5e-6, alpha = r = 16, effective batch 16, truncated dropped"),
    "kto-old": Setting("the recipe of the degraded headline: lr 5e-5, alpha 2r, batch 4, truncated kept",
                       ("training.learning_rate=5e-5", "policy.lora.alpha=32", "training.grad_accum=1",
                        "preference.options.truncated=keep")),
    "kto-lr1e-6": Setting("TRL's default learning rate", ("training.learning_rate=1e-6",)),
    "kto-lr2e-5": Setting("a larger step", ("training.learning_rate=2e-5",)),
    "kto-twosided": Setting("only problems whose samples carry both labels", ("preference.options.one_sided=skip",)),
    "kto-cap2": Setting("at most 2 records per class and problem: one-sided problems weigh less",
                        ("preference.max_per_problem=2",)),
    "kto-sft": Setting("plus the NLL of the desirable completions (weight 1)", ("training.options.sft_weight=1.0",)),
    "kto-epochs2": Setting("two epochs", ("training.epochs=2",)),
    "kto-truncopen": Setting("truncated samples kept, scored without the closing tokens",
                             ("preference.options.truncated=open",)),
    "dpo-lr5e-6": Setting("DPO on pairs from the same samples", ("training.objective=dpo",)),
    "simpo": Setting("SimPO (reference-free, length-normalised) on the same pairs; the paper's beta 2, gamma/beta 0.5",
                     ("training.objective=simpo", "training.beta=2.0", "training.options.simpo_gamma=1.0")),
    "kto-online-anchored": Setting("2 rounds of n/2, reference = the initial policy in both rounds",
                                   ("training.options.reference=base",), rounds=2),
    "kto-online-recentred": Setting("2 rounds of n/2, reference = the round's starting policy",
                                    ("training.options.reference=start",), rounds=2),
}
ORDER = ("kto-lr5e-6", "kto-old", "dpo-lr5e-6", "kto-twosided", "kto-sft", "simpo", "kto-online-anchored",
         "kto-online-recentred", "kto-lr2e-5", "kto-lr1e-6", "kto-cap2", "kto-epochs2", "kto-truncopen")


def setting_config(base: RunConfig, name: str) -> tuple[RunConfig, int | None]:
    """The setting's run config and how many of the trunk's round-0 samples per problem it takes."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
    st = SETTINGS[name]
    d = apply_overrides(base.model_dump(mode="json"), list(st.overrides))
    d["name"] = name
    take = None
    if st.rounds > 1:
        n = base.sampling.n
        if n % st.rounds:
            raise ValueError(f"sampling.n={n} must divide into {st.rounds} rounds for an equal budget")
        take = n // st.rounds
        d["rounds"] = st.rounds
        d["sampling"]["n"] = take
    return RunConfig.model_validate(d), take


def logratio_trajectory(run: Path, cfg: RunConfig) -> list[dict]:
    """Per round: the desirable/chosen log-ratio (nats) averaged over each third of the steps."""
    out = []
    for r in range(cfg.rounds):
        log = RunDir(run).checkpoint(r) / "train_log.jsonl"
        if not log.exists():
            continue
        by_step = {x["step"]: x for x in load_jsonl(log) if "step" in x}  # a resumed log repeats steps
        vals = [by_step[k]["rewards/chosen"] / cfg.training.beta for k in sorted(by_step)
                if "rewards/chosen" in by_step[k]]
        if not vals:
            continue
        k = max(1, len(vals) // 3)
        thirds = [vals[:k], vals[k:2 * k] or vals[:k], vals[2 * k:] or vals[-k:]]
        out.append({"round": r, "steps": len(by_step),
                    "chosen_logratio_thirds": [round(sum(t) / len(t), 3) for t in thirds]})
    return out


def _health(run: Path, cfg: RunConfig) -> list[dict]:
    out = []
    for r in range(cfg.rounds):
        p = RunDir(run).checkpoint(r) / "train_result.json"
        if p.exists():
            h = json.loads(p.read_text()).get("health") or {}
            out.append({"round": r, **{k: h.get(k) for k in ("ok", "chosen_logratio", "probe_tokens_before",
                                                             "probe_tokens_after", "probe_growth", "warnings")}})
    return out


def _truncation(run: Path, cfg: RunConfig) -> list[dict]:
    out = []
    for r in range(cfg.rounds):
        p = RunDir(run).preferences_summary(r)
        if p.exists():
            s = json.loads(p.read_text())["summary"]
            out.append({"round": r, "truncated": s.get("truncated"), "dropped_truncated": s.get("dropped_truncated"),
                        "records": s.get("records_written", s.get("records"))})
    return out


def collect(workdir: Path, base: RunConfig, names: tuple[str, ...]) -> dict:
    from plumcode.report.stats import paired_bootstrap, paired_scores

    trunk = workdir / "trunk"
    rows, status = [], {}
    init = None
    if RunState.load(trunk).is_done("baseline/eval"):
        init = per_problem(RunDir(trunk).baseline_eval)[DEV]
        rows.append({"setting": "initial", DEV: round(100 * sum(init.values()) / len(init), 2),
                     "answers": answer_stats(trunk, None, base).get(DEV)})
    for name in names:
        cfg, _ = setting_config(base, name)
        run = workdir / name
        st = RunState.load(run) if RunDir(run).state.exists() else None
        key = f"{round_dir_name(cfg.rounds - 1)}/eval"
        done = st is not None and st.is_done(key)
        status[name] = "done" if done else ("started" if st is not None else "pending")
        if not done or init is None:
            continue
        scores = per_problem(RunDir(run).eval_json(cfg.rounds - 1))[DEV]
        a, b = paired_scores(scores, init)
        rows.append({"setting": name, "why": SETTINGS[name].why, "overrides": list(SETTINGS[name].overrides),
                     DEV: round(100 * sum(scores.values()) / len(scores), 2),
                     "ci95": paired_bootstrap(a, b).to_json(),
                     "churn": {"gained": sum(x > y for x, y in zip(a, b, strict=True)),
                               "lost": sum(x < y for x, y in zip(a, b, strict=True))},
                     "answers": answer_stats(run, cfg.rounds - 1, cfg).get(DEV), "rounds": round_stats(run, cfg),
                     "chosen_logratio": logratio_trajectory(run, cfg), "health": _health(run, cfg),
                     "truncation": _truncation(run, cfg)})
    return {"rows": rows, "status": status, "workdir": str(workdir), "base_config": dump_config(base)}


def markdown(res: dict, command: str) -> str:
    lines = ["| setting | dev pass@1 | delta [95% CI] | gained / lost | answer tokens (cut) | chosen log-ratio by "
             "thirds (nats) | probe growth | round pass rates | health |", "|---" * 9 + "|"]
    for r in res["rows"]:
        ci = r.get("ci95")
        ans = r.get("answers") or {}
        traj = "; ".join(f"r{t['round']}: " + " / ".join(f"{v:+.2f}" for v in t["chosen_logratio_thirds"])
                         for t in r.get("chosen_logratio", []))
        growth = "; ".join(f"{100 * h['probe_growth']:+.0f}%" for h in r.get("health", [])
                           if h.get("probe_growth") is not None)
        rates = " -> ".join(f"{100 * x['pass_rate']:.1f}%" for x in r.get("rounds", []))
        health = "; ".join("ok" if h.get("ok") else "WARN" for h in r.get("health", []))
        lines.append(f"| {r['setting']} | {r[DEV]:.1f} | "
                     + (f"{ci['delta']:+.1f} [{ci['low']:+.1f}, {ci['high']:+.1f}]" if ci else "") + " | "
                     + (f"+{r['churn']['gained']} / -{r['churn']['lost']}" if r.get("churn") else "") + " | "
                     + (f"{ans['mean_tokens']:.0f} ({ans['cut_at_limit']})" if ans else "") + f" | {traj} | {growth} | "
                     + f"{rates} | {health} |")
    pending = [a for a, s in res["status"].items() if s != "done"]
    return ("# Recipe sweep on the dev split (mbpp-dev, 50 problems, greedy pass@1 %)\n\n"
            + ("\n".join(lines) if res["rows"] else "Nothing has finished yet.") + "\n\n"
            + "".join(f"- `{r['setting']}`: {r['why']}\n" for r in res["rows"] if r.get("why"))
            + (f"\nNot finished yet: {', '.join(pending)}.\n" if pending else "")
            + f"\nReproduce: `{command}`\n")


def save_trunk(workdir: Path) -> Path:
    """Pack the finished trunk (small JSONL files) so a fresh machine continues the sweep from it."""
    trunk = workdir / "trunk"
    if not RunState.load(trunk).is_done(TRUNK_UNTIL):
        raise RuntimeError(f"{trunk}: the trunk is not finished")
    TRUNK_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    tmp = TRUNK_ARCHIVE.with_name(TRUNK_ARCHIVE.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(trunk.rglob("*")):
            if p.is_file() and p != RunDir(trunk).lock:
                tar.add(p, arcname=str(p.relative_to(workdir)))
    tmp.replace(TRUNK_ARCHIVE)
    return TRUNK_ARCHIVE


def restore_trunk(workdir: Path) -> bool:
    if RunDir(workdir / "trunk").state.exists() or not TRUNK_ARCHIVE.exists():
        return False
    with tarfile.open(TRUNK_ARCHIVE) as tar:
        tar.extractall(workdir, filter="data")
    return True


def _sitting(workdir: Path, base: RunConfig, names: tuple[str, ...], deadline: float) -> None:
    trunk = workdir / "trunk"
    Runner(trunk, base).run(until=TRUNK_UNTIL, deadline=deadline)
    for name in names:
        if time.time() > deadline or not RunState.load(trunk).is_done(TRUNK_UNTIL):
            raise SittingOver
        cfg, take = setting_config(base, name)
        run = workdir / name
        if RunState.load(run).finished:
            continue
        fork(trunk, run, cfg, samples_per_problem=take)
        Runner(run, cfg).run(deadline=deadline)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "recipe-sweep.yaml"), help="base run config")
    ap.add_argument("--workdir", default="runs/recipe-sweep")
    ap.add_argument("--settings", default=",".join(ORDER), help=f"settings to run, in order (of {', '.join(SETTINGS)})")
    ap.add_argument("--budget-min", type=float, default=110.0, help="stop starting stages after this many minutes")
    ap.add_argument("--grace-min", type=float, default=10.0, help="then interrupt the running stage this much later")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "recipe_sweep.json"))
    ap.add_argument("--results-only", action="store_true", help="only write the tables from finished settings")
    ap.add_argument("--save-trunk", action="store_true", help=f"pack the finished trunk into {TRUNK_ARCHIVE}")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if restore_trunk(workdir):
        print(f"[recipe-sweep] trunk restored from {TRUNK_ARCHIVE}", file=sys.stderr)
    names = tuple(a.strip() for a in args.settings.split(",") if a.strip())
    base_path = workdir / "base.yaml"  # fixed for every sitting: later code defaults must not change it
    base = load_config(base_path) if base_path.exists() else load_config(args.config)
    atomic_write_text(base_path, dump_config(base))
    for n in names:
        setting_config(base, n)  # fail fast on a bad name
    if args.save_trunk:
        print(save_trunk(workdir))
        return 0
    if not args.results_only:
        sitting(lambda deadline: _sitting(workdir, base, names, deadline), args.budget_min, args.grace_min,
                "recipe-sweep")
    res = collect(workdir, base, tuple(SETTINGS))
    atomic_write_json(Path(args.results), res)
    md = markdown(res, f"python benchmarks/recipe_sweep.py --workdir {args.workdir}")
    atomic_write_text(Path(args.results).with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
