"""The generation/execution pipeline with the real local sandbox as consumer."""

from __future__ import annotations

import time

import pytest

from plumcode.distributed.pipeline import PipelineStats, overlapped, sequential
from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox import SandboxConfig, execute
from plumcode.sandbox.types import Sample

PROBS = [Problem("p", "add one", entry_point="f", tests=[TestCase("assert", code="assert f(1) == 2")])]
CFG = SandboxConfig(workers=2, timeout_s=30.0)


def _batches(n_batches: int, per: int, gen_s: float, tag: str, work: int = 2_000_000):
    """Stands in for a remote generation server: waits ``gen_s`` per batch (no local CPU).
    Each candidate is unique (no cache hits) and burns ~0.1 s of CPU when executed."""
    for b in range(n_batches):
        time.sleep(gen_s)
        yield [Sample("p", f"{tag}{b}-{i}", f"def f(x):\n    sum(range({work}))  # {tag}{b}-{i}\n"
                                              f"    return x + {1 if i % 2 else 2}\n")
               for i in range(per)]


def _exec(batch):
    return execute(PROBS, batch, CFG)


def _exec_paced(batch):
    """Real execution plus a fixed 0.4 s per batch, so the consumer's share does not depend on
    how fast the CI machine's CPU happens to be (0.1 s of CPU per sample was 0.02 s on one)."""
    time.sleep(0.4)
    return _exec(batch)


def test_overlap_is_faster_than_sequential_and_measures_idle():
    list(_exec([Sample("p", "warm", "def f(x):\n    return x\n")]))  # warm the zygotes
    seq, ovl = PipelineStats(), PipelineStats()
    vs = list(sequential(_batches(5, 6, 0.4, "s"), _exec_paced, stats=seq))
    vo = list(overlapped(_batches(5, 6, 0.4, "o"), _exec_paced, queue_size=2, stats=ovl))
    assert len(vs) == len(vo) == 30 and len({v.sample_id for v in vo}) == 30
    assert sum(v.passed for v in vo) == 15
    assert ovl.batches == 5 and ovl.verdicts == 30 and ovl.max_queue_depth <= 2
    # overlap hides the shorter side behind the longer one
    # sequential >= 5 x (0.4 + 0.4) s; overlapped ~ 5 x 0.4 s + one batch's execution
    assert ovl.wall_s < seq.wall_s - 0.8, (ovl.to_json(), seq.to_json())
    assert 0.0 <= ovl.consumer_idle < seq.consumer_idle
    assert 0.0 <= ovl.producer_idle < seq.producer_idle


def test_bounded_queue_blocks_a_fast_producer():
    st = PipelineStats()

    def slow_exec(batch):
        time.sleep(0.3)
        return _exec(batch)

    out = list(overlapped(_batches(6, 2, 0.0, "b"), slow_exec, queue_size=1, stats=st))
    assert len(out) == 12
    assert st.max_queue_depth <= 1
    assert st.producer_idle > 0.5  # generation waited on execution most of the time
    assert st.consumer_idle < 0.2


def test_producer_error_is_raised_and_nothing_hangs():
    def bad():
        yield [Sample("p", "x0", "def f(x):\n    return x + 1\n")]
        raise RuntimeError("server went away")

    with pytest.raises(RuntimeError, match="server went away"):
        list(overlapped(bad(), _exec))


def test_consumer_stopping_early_stops_the_producer():
    produced = []

    def many():
        for b in range(1000):
            produced.append(b)
            yield [Sample("p", f"m{b}", "def f(x):\n    return x + 1\n")]

    it = overlapped(many(), _exec, queue_size=2)
    next(it)
    it.close()
    n = len(produced)
    time.sleep(0.3)
    assert len(produced) == n and n <= 5
