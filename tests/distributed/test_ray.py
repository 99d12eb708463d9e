"""``plumcode.sandbox.execute(..., ray_address=...)`` on a real 2-worker Ray cluster, against the local
sandbox, with failures injected. The cluster fixture's Ray is already running, so ``"auto"`` joins it
and the executors leave it up."""

from __future__ import annotations

import json

import pytest

from plumcode.problems.schema import Problem, TestCase, write_problems
from plumcode.sandbox import SandboxConfig, execute, execute_file, open_executor
from plumcode.sandbox.on_ray import RayExecOptions, RayExecutor
from plumcode.sandbox.types import Sample

pytest.importorskip("ray")

N_PROBLEMS = 6


def _problems() -> list[Problem]:
    return [Problem(f"p{i}", f"return x + {i}", entry_point="f",
                    tests=[TestCase("assert", code=f"assert f(1) == {1 + i}"),
                           TestCase("call", args=(2,), expected=2 + i)])
            for i in range(N_PROBLEMS)]


def _samples(n: int, prefix: str = "s") -> list[Sample]:
    """A mix of passing, failing, erroring and crashing candidates."""
    out = []
    for k in range(n):
        i = k % N_PROBLEMS
        code = [f"def f(x):\n    return x + {i}\n",                 # pass
                f"def f(x):\n    return x + {i + 1}\n",             # fail
                "def f(x):\n    raise ValueError('no')\n",          # error
                "import os\ndef f(x):\n    os._exit(0)\n",          # crash / forged exit
                ][k % 4]
        out.append(Sample(f"p{i}", f"{prefix}{k}", code))
    return out


CFG = SandboxConfig(timeout_s=30.0, workers=1)  # generous: CI machines can be heavily loaded
RAY = "auto"  # the fixture's cluster


def _ray(**options) -> RayExecutor:
    ex = open_executor(_problems(), CFG, ray_address=RAY, ray_options=RayExecOptions(**options))
    assert isinstance(ex, RayExecutor)
    return ex


def test_matches_local_sandbox_and_uses_both_nodes(ray_cluster):
    samples = _samples(48)
    with _ray(chunk_size=6) as ex:
        got = {v.sample_id: v for v in ex.execute(samples)}
    stats = ex.stats
    local = {v.sample_id: v for v in execute(_problems(), samples, CFG)}
    assert set(got) == {s.sample_id for s in samples}
    assert {k: (v.passed, v.status, [t.status for t in v.tests]) for k, v in got.items()} == \
           {k: (v.passed, v.status, [t.status for t in v.tests]) for k, v in local.items()}
    assert sum(v.passed for v in got.values()) == 12  # only the correct quarter passes
    used = [n for n in stats.nodes.values() if n["verdicts"] > 0]
    assert len(used) == 2, stats.nodes
    # every node runs the same isolation as the local sandbox
    assert stats.isolation_levels == {next(iter(local.values())).isolation}


def test_backpressure_reads_input_lazily(ray_cluster):
    pulled = 0

    def gen():
        nonlocal pulled
        for s in _samples(40, "bp"):
            pulled += 1
            yield s

    opts = RayExecOptions(chunk_size=3, inflight_per_actor=2)
    it = execute(_problems(), gen(), CFG, ray_address=RAY, ray_options=opts)
    first = next(it)
    # at most (actors x inflight x chunk) read ahead, plus one chunk refilled after a completion
    assert pulled <= 2 * 2 * 3 + 3, pulled
    rest = list(it)
    assert len({v.sample_id for v in [first, *rest]}) == 40


def test_worker_process_killed_mid_batch(ray_cluster, kill_actor_process):
    samples = _samples(60, "kp")
    seen: list[str] = []
    killed = None
    with _ray(chunk_size=4, restart_cooldown_s=1) as ex:
        for v in ex.execute(samples):
            seen.append(v.sample_id)
            if killed is None and len(seen) >= 8:
                killed = kill_actor_process("_SandboxNode")
    stats = ex.stats
    assert killed is not None
    assert sorted(seen) == sorted(s.sample_id for s in samples)  # exactly one verdict each
    assert stats.actors_lost >= 1 and stats.chunks_retried >= 1


def test_worker_node_crash_mid_batch(ray_cluster):
    samples = _samples(60, "nc")
    seen: list[str] = []
    verdicts = []
    crashed = False
    ex = _ray(chunk_size=4)
    stats = ex.stats
    try:
        for v in ex.execute(samples):
            seen.append(v.sample_id)
            verdicts.append(v)
            if not crashed and len(seen) >= 8:
                ray_cluster.crash_worker_node(0)
                crashed = True
    finally:
        ex.close()
        ray_cluster.restore()
    assert sorted(seen) == sorted(s.sample_id for s in samples), stats
    assert stats.actors_lost >= 1, stats
    assert len(verdicts) == 60 and sum(v.passed for v in verdicts) == 15, [
        (v.sample_id, v.status, v.tests) for v in verdicts if v.passed != (int(v.sample_id[2:]) % 4 == 0)]


def test_file_api_resumes_without_duplicates(ray_cluster, tmp_path):
    probs, samples = _problems(), _samples(30, "f")
    write_problems(tmp_path / "problems.jsonl", probs)
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s.__dict__) + "\n" for s in samples))
    out = tmp_path / "verdicts.jsonl"
    # a previous run finished the first 10 and crashed mid-line
    prev = list(execute(probs, samples[:10], CFG))
    out.write_text("".join(json.dumps(v.to_json()) + "\n" for v in prev) + '{"problem_id": "p0", "samp')
    summary = execute_file(tmp_path / "problems.jsonl", tmp_path / "samples.jsonl", out, CFG, progress=False,
                           ray_address=RAY)
    assert summary["executed"] == 20 and summary["skipped_existing"] == 10 and summary["samples"] == 30
    assert summary["ray"]["verdicts"] == 20 and summary["isolation"]
    assert sum(summary["isolation_counts"].values()) == 20
    ids = [json.loads(line)["sample_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(s.sample_id for s in samples)


# ------------------------------------------------------------- sampling with engines on Ray
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_ray_engines_sample_and_survive_a_killed_engine(ray_cluster, tiny_model, tmp_path, kill_actor_process):
    """One transformers engine actor per worker node (CPU here, one per GPU on a real cluster);
    one engine process is SIGKILLed while calls are in flight: the failed call is retried on the
    other engine (Ray restarts the dead one), and every problem still gets exactly n samples."""
    import threading
    import time

    from plumcode.distributed.sampling import ray_engines
    from plumcode.generation import SamplingParams, sample_problems

    mb = ray_engines(f"hf:{tiny_model}", n=2, num_gpus=0, num_cpus=1,
                     load_opts={"device": "cpu", "threads": 1, "batch_size": 4})
    mb.cooldown_s, mb.prompts_per_request = 0.5, 1
    problems = [Problem(f"q{i}", f"Write f returning {i}.", entry_point="f") for i in range(12)]
    params = SamplingParams(n=2, temperature=0.8, max_tokens=24, seed=3)
    out = tmp_path / "samples.jsonl"
    killed: list[int | None] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sum(r.requests for r in mb.replicas) >= 3 and all(r.outstanding for r in mb.replicas):
                killed.append(kill_actor_process("_EngineActor"))
                return
            time.sleep(0.005)

    th = threading.Thread(target=killer)
    th.start()
    try:
        sample_problems(problems, mb, params, out, batch_size=12, progress=False)
    finally:
        th.join()
        mb.close()
    assert killed and killed[0] is not None
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        pid = json.loads(line)["problem_id"]
        counts[pid] = counts.get(pid, 0) + 1
    assert counts == {p.id: 2 for p in problems}
    st = mb.stats()
    assert sum(r["failures"] for r in st) >= 1, st
    # one prompt per request: successful requests == prompts, so nothing was sampled twice
    assert sum(r["requests"] - r["failures"] for r in st) == len(problems), st
