"""Overlap generation and execution: a producer thread samples batch after batch while the
consumer executes the batches already sampled, through a bounded queue (back-pressure: a
producer that runs ahead blocks instead of piling samples up in memory).

Both sides' idle time is measured, so a run can say which side is the bottleneck:
``producer_idle`` is the fraction of wall time the generator sat blocked on a full queue
(execution is the bottleneck), ``consumer_idle`` the fraction the executor waited for samples
(generation is the bottleneck).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from plumcode.sandbox.types import Sample, Verdict

_END = object()


@dataclass
class PipelineStats:
    wall_s: float = 0.0
    producer_busy_s: float = 0.0     # time inside the batch iterator (generating)
    producer_blocked_s: float = 0.0  # time waiting for room in the queue
    consumer_busy_s: float = 0.0     # time executing
    consumer_starved_s: float = 0.0  # time waiting for a batch
    batches: int = 0
    samples: int = 0
    verdicts: int = 0
    max_queue_depth: int = 0

    @property
    def producer_idle(self) -> float:
        return self.producer_blocked_s / self.wall_s if self.wall_s else 0.0

    @property
    def consumer_idle(self) -> float:
        return self.consumer_starved_s / self.wall_s if self.wall_s else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["producer_idle"], d["consumer_idle"] = round(self.producer_idle, 4), round(self.consumer_idle, 4)
        return d


def overlapped(batches: Iterable[list[Sample]], execute: Callable[[list[Sample]], Iterable[Verdict]], *,
               queue_size: int = 2, stats: PipelineStats | None = None) -> Iterator[Verdict]:
    """Yield the verdicts of every sample of every batch, executing batch k while batch k+1..k+q
    is generated.

    ``batches`` is lazy (e.g. a generator that calls ``backend.generate`` per group of prompts
    and writes ``samples.jsonl``); it runs in a producer thread. ``execute`` runs a batch to
    completion (``lambda b: sandbox.execute(problems, b, cfg)`` or ``RayExecutor.execute``).
    An exception on either side stops both and is re-raised here.
    """
    st = stats if stats is not None else PipelineStats()
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                st.max_queue_depth = max(st.max_queue_depth, q.qsize())
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(batches)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                finally:
                    st.producer_busy_s += time.perf_counter() - t
                st.batches += 1
                st.samples += len(batch)
                t = time.perf_counter()
                ok = put(batch)
                st.producer_blocked_s += time.perf_counter() - t
                if not ok:
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            failure.append(e)
        finally:
            put(_END)

    t0 = time.perf_counter()
    th = threading.Thread(target=produce, name="plumcode-generate", daemon=True)
    th.start()
    try:
        while True:
            t = time.perf_counter()
            item = q.get()
            st.consumer_starved_s += time.perf_counter() - t
            if item is _END:
                break
            t = time.perf_counter()
            for v in execute(item):
                st.verdicts += 1
                st.consumer_busy_s += time.perf_counter() - t
                yield v  # time the caller spends on a verdict counts as neither side's
                t = time.perf_counter()
            st.consumer_busy_s += time.perf_counter() - t
        if failure:
            raise failure[0]
    finally:
        stop.set()
        while True:  # unblock a producer stuck on put
            try:
                q.get_nowait()
            except queue.Empty:
                break
        th.join(timeout=5.0)
        st.wall_s = time.perf_counter() - t0


def sequential(batches: Iterable[list[Sample]], execute: Callable[[list[Sample]], Iterable[Verdict]], *,
               stats: PipelineStats | None = None) -> Iterator[Verdict]:
    """The same work without overlap (generate a batch, execute it, repeat): the baseline."""
    st = stats if stats is not None else PipelineStats()
    t0 = time.perf_counter()
    it = iter(batches)
    while True:
        t = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        finally:
            dt = time.perf_counter() - t
            st.producer_busy_s += dt
            st.consumer_starved_s += dt
        st.batches += 1
        st.samples += len(batch)
        t = time.perf_counter()
        for v in execute(batch):
            st.verdicts += 1
            yield v
        dt = time.perf_counter() - t
        st.consumer_busy_s += dt
        st.producer_blocked_s += dt
    st.wall_s = time.perf_counter() - t0
