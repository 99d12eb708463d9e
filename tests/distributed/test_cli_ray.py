"""``--ray-address`` on the user-facing commands (``plumcode execute``, ``plumcode evaluate``) and
``sandbox.ray_address`` in the loop: a real private local Ray instance, same verdicts as the pool.

Each test lets the entry point start (and stop) its own Ray instance, as a user's command does;
~7 s each on two cores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from plumcode.cli import main
from plumcode.io import load_jsonl
from plumcode.problems.schema import Problem, TestCase, write_problems

pytest.importorskip("ray")

CODES = ["def f(x):\n    return x + {i}\n",          # pass
         "def f(x):\n    return x - 1\n",            # fail
         "def f(x):\n    raise ValueError('no')\n"]  # error
LIMITS = ["--timeout", "30", "--workers", "1", "--no-progress"]  # generous: the machine is shared


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    probs = [Problem(f"p{i}", f"return x + {i}", entry_point="f",
                     tests=[TestCase("assert", code=f"assert f(1) == {1 + i}"),
                            TestCase("call", args=(2,), expected=2 + i)]) for i in range(3)]
    write_problems(tmp_path / "problems.jsonl", probs)
    samples = [{"problem_id": f"p{i}", "sample_id": f"p{i}/{k}", "code": c.format(i=i)}
               for i in range(3) for k, c in enumerate(CODES)]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"


def _verdicts(path: Path) -> dict[str, tuple]:
    recs = load_jsonl(path)
    assert len(recs) == len({r["sample_id"] for r in recs}), "more than one verdict for a sample"
    return {r["sample_id"]: (r["passed"], r["status"], [t["status"] for t in r["tests"]]) for r in recs}


def _ray_is_up() -> bool:
    import ray

    return ray.is_initialized()


def test_execute_ray_local_matches_pool_and_resumes(files, tmp_path: Path, capsys) -> None:
    problems, samples = files
    common = ["execute", "--problems", str(problems), "--samples", str(samples), *LIMITS]
    assert main([*common, "--out", str(tmp_path / "pool.jsonl")]) == 0
    pool = _verdicts(tmp_path / "pool.jsonl")
    assert len(pool) == 9 and sum(v[0] for v in pool.values()) == 3
    capsys.readouterr()

    # resume: two verdicts are already there; Ray runs only the other seven
    out = tmp_path / "ray.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in load_jsonl(tmp_path / "pool.jsonl")[:2]))
    assert main([*common, "--out", str(out), "--ray-address", "local"]) == 0
    printed = capsys.readouterr().out
    assert "executed: 7  already done: 2" in printed and "ray: nodes 1" in printed, printed
    assert _verdicts(out) == pool
    assert not _ray_is_up()  # the private instance the command started is gone


def test_evaluate_ray_local_matches_pool(files, tmp_path: Path) -> None:
    problems, samples = files
    common = ["evaluate", "--benchmark", "toy", "--problems", str(problems), "--samples", str(samples),
              "--k", "1,3", *LIMITS]
    assert main([*common, "--out", str(tmp_path / "pool.json")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray.json"), "--ray-address", "local"]) == 0
    pool, ray = (json.loads((tmp_path / f).read_text()) for f in ("pool.json", "ray.json"))
    assert ray["n_samples"] == 9 and ray["pass_at_k"] == pool["pass_at_k"]
    assert pool["pass_at_k"]["toy"]["pass@1"] == pytest.approx(1 / 3)
    per_sample = [{s["sample_id"]: (s["passed"], s["status"]) for p in r["problems"] for s in p["samples"]}
                  for r in (pool, ray)]
    assert per_sample[0] == per_sample[1] and len(per_sample[1]) == 9
    assert not _ray_is_up()


def test_loop_execute_stage_on_ray(files, tmp_path: Path) -> None:
    from plumcode.loop import stages
    from plumcode.loop.config import SandboxLimits

    problems, samples = files
    sb = SandboxLimits(timeout_s=30, workers=1)
    plain = stages.execute(problems, samples, tmp_path / "pool.jsonl", sb)
    assert "ray" not in plain
    sb.ray_address = "local"
    res = stages.execute(problems, samples, tmp_path / "ray.jsonl", sb)
    assert res["ray"]["nodes"] == 1 and res["executed"] == 9 and res["verdicts"] == 9
    assert res["passed"] == plain["passed"] == 3 and res["statuses"] == plain["statuses"]
    assert _verdicts(tmp_path / "ray.jsonl") == _verdicts(tmp_path / "pool.jsonl")
    again = stages.execute(problems, samples, tmp_path / "ray.jsonl", sb)  # resumed: nothing left to run
    assert again["executed"] == 0 and again["skipped_existing"] == 9 and again["verdicts"] == 9
    assert not _ray_is_up()


def test_ray_options_reach_the_executor(monkeypatch, files, tmp_path: Path) -> None:
    """The CLI's Ray flags reach the Ray executor through ``execute_file`` (``--workers`` as the
    per-node count; without it, None: each node's CPUs), without Ray."""
    from plumcode.sandbox import on_ray

    seen: list[dict] = []

    class FakeRay:
        def __init__(self, problems, config, address, *, options):
            seen.append({"address": address, "options": options, "workers": config.workers})
            self.stats = on_ray.RayExecStats()

        def execute(self, samples, done=()):
            return iter(())

        def summary(self) -> dict:
            return {"ray": dataclasses.asdict(self.stats)}

        def close(self) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    monkeypatch.setattr(on_ray, "RayExecutor", FakeRay)
    problems, samples = files
    common = ["execute", "--problems", str(problems), "--samples", str(samples), "--out", str(tmp_path / "v.jsonl")]
    assert main([*common, "--workers", "3", "--ray-address", "10.0.0.1:6379", "--ray-chunk-size", "5",
                 "--ray-inflight", "4", "--ray-chunk-timeout", "60"]) == 0
    assert main([*common, "--ray-address", "auto"]) == 0
    opts = seen[0]["options"]
    assert seen[0]["address"] == "10.0.0.1:6379" and (opts.chunk_size, opts.inflight_per_actor) == (5, 4)
    assert opts.chunk_timeout_s == 60.0 and seen[0]["workers"] == 3
    assert seen[1]["address"] == "auto" and seen[1]["workers"] is None


def test_loop_config_documents_ray_address() -> None:
    from plumcode.loop.config import explain, load_config

    assert load_config(None, ["sandbox.ray_address=auto"]).sandbox.ray_address == "auto"
    assert load_config(None).sandbox.ray_address is None
    line = next(x for x in explain() if x.startswith("sandbox.ray_address"))
    assert "local" in line and "process pool" in line
