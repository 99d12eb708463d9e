"""The sandbox's executor on a Ray cluster: what ``plumcode.sandbox.execute(..., ray_address=...)``
and ``execute_file`` run when given an address.

One actor per node runs the *local* sandbox (the process pool: zygotes, rlimits, namespaces) with
``workers`` = ``SandboxConfig.workers`` or else that node's cores, so every node gives exactly the
isolation the single-machine sandbox gives; Ray only moves chunks of samples and their verdicts.
The driver:

- submits chunks of ``chunk_size`` samples, at most ``inflight_per_actor`` per actor (bounded
  memory and back-pressure: the input iterator is read only when a slot frees up, so a generator
  that is still sampling can feed it);
- sends each chunk to the actor with the fewest chunks in flight;
- on a lost actor or node (process killed, node gone, chunk past ``chunk_timeout_s``) resubmits
  the chunk's samples that have no verdict yet to a live actor and, when the node is still alive,
  starts a replacement actor there;
- drops any verdict for a ``sample_id`` it has already yielded, so a retried chunk never counts
  twice; the file API also skips samples whose verdict is already in the output file (resume).

A Ray instance or connection that :class:`RayExecutor` makes is closed with it, so a loop round's
training never shares the machine with an idle Ray.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plumcode.problems.schema import Problem
from plumcode.raycluster import alive_nodes, connect, import_ray, node_affinity, resolve
from plumcode.sandbox.types import Sample, Verdict

log = logging.getLogger(__name__)

DEFAULT_EXECUTOR = "plumcode.sandbox:execute"


@dataclass
class RayExecOptions:
    chunk_size: int | None = None         # None: 8 x the chosen node's workers (keeps its pool busy)
    inflight_per_actor: int = 2
    actor_cpus: float = 1.0               # CPUs the actor reserves in Ray's accounting
    min_node_cpus: float = 1.0            # nodes with fewer CPUs (e.g. a --num-cpus 0 head) get no actor
    max_chunk_attempts: int = 4           # a chunk lost this many times aborts the run
    chunk_timeout_s: float | None = None  # kill the actor of a chunk running longer (hung node)
    node_wait_s: float = 60.0             # how long to wait for a node when none is usable
    restart_cooldown_s: float = 15.0      # no new actor on a node that just lost one (node may be dying)
    rescan_s: float = 10.0                # look for new nodes (autoscaler, restarted node) this often
    executor: str = DEFAULT_EXECUTOR      # "module:function" with the sandbox.execute signature


@dataclass
class RayExecStats:
    verdicts: int = 0
    chunks_submitted: int = 0
    chunks_retried: int = 0
    actors_lost: int = 0
    actors_started: int = 0
    duplicates_dropped: int = 0
    skipped_done: int = 0
    nodes: dict[str, dict] = field(default_factory=dict)  # node_id -> workers, verdicts, isolation

    @property
    def isolation_levels(self) -> set[str]:
        return {lvl for n in self.nodes.values() for lvl in n.get("isolation", {})}


class _SandboxNode:
    """Lives on one node; runs chunks through the local sandbox pool sized to the node."""

    def __init__(self, problems: list[Problem], config: Any, workers: int, executor: str):
        self.problems = {p.id: p for p in problems}
        self.execute = resolve(executor)
        self.workers = workers
        self.config = _with_workers(config, workers, executor)

    def info(self) -> dict:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "workers": self.workers}

    def run(self, samples: list[dict]) -> list[dict]:
        batch = [Sample.from_json(s) for s in samples]
        pids = list(dict.fromkeys(s.problem_id for s in batch))
        missing = [p for p in pids if p not in self.problems]
        if missing:
            raise KeyError(f"samples refer to unknown problem ids: {missing[:5]}")
        probs = [self.problems[p] for p in pids]
        return [v.to_json() for v in self.execute(probs, batch, self.config)]


def _with_workers(config: Any, workers: int, executor: str) -> Any:
    """The node's copy of the sandbox config with ``workers`` set to the node's count."""
    if config is None and executor == DEFAULT_EXECUTOR:
        from plumcode.sandbox._master import SandboxConfig

        return SandboxConfig(workers=workers)
    if config is not None and dataclasses.is_dataclass(config) and any(
            f.name == "workers" for f in dataclasses.fields(config)):
        return dataclasses.replace(config, workers=workers)
    return config


@dataclass
class _Actor:
    handle: Any
    node_id: str
    workers: int
    inflight: int = 0
    alive: bool = True


@dataclass
class _Chunk:
    samples: list[Sample]
    attempts: int = 0


class _Driver:
    def __init__(self, problems: list[Problem], config: Any, opts: RayExecOptions, stats: RayExecStats):
        self.ray = import_ray()
        self.opts, self.stats, self.config = opts, stats, config
        self.workers: int | None = getattr(config, "workers", None)  # None: each node's CPUs
        # pickled once into the object store, fetched once per node (typed-JSON encoding of
        # HumanEval+'s large test inputs costs minutes; pickle is what Ray does natively)
        self.problems_ref = self.ray.put(list(problems))
        self.remote_cls = self.ray.remote(_SandboxNode)
        self.actors: list[_Actor] = []
        self.lost_at: dict[str, float] = {}  # node_id -> when its last actor was lost

    def start_missing_actors(self) -> None:
        have = {a.node_id for a in self.actors if a.alive}
        for node in alive_nodes(min_cpus=self.opts.min_node_cpus):
            if node.node_id in have:
                continue
            if time.monotonic() - self.lost_at.get(node.node_id, -1e9) < self.opts.restart_cooldown_s:
                continue
            workers = self.workers or max(1, int(node.cpus))
            handle = self.remote_cls.options(
                num_cpus=self.opts.actor_cpus, max_restarts=0, max_concurrency=1,
                scheduling_strategy=node_affinity(node.node_id),
            ).remote(self.problems_ref, self.config, workers, self.opts.executor)
            self.actors.append(_Actor(handle, node.node_id, workers))
            self.stats.actors_started += 1
            self.stats.nodes.setdefault(node.node_id, {"workers": workers, "verdicts": 0, "isolation": {}})
            log.info("sandbox actor on node %s (%s) with %d workers", node.node_id[:8], node.address, workers)

    def live(self) -> list[_Actor]:
        return [a for a in self.actors if a.alive]

    def ensure_actors(self) -> None:
        deadline = time.monotonic() + self.opts.node_wait_s
        while True:
            self.start_missing_actors()
            if self.live():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Ray node with >= {self.opts.min_node_cpus} CPUs is alive "
                                   f"(waited {self.opts.node_wait_s:.0f}s)")
            time.sleep(1.0)


class RayExecutor:
    """Sandbox actors that stay up across calls (one per node), for a loop that executes many
    batches: ``ex.execute(samples)`` can be called repeatedly; ``close()`` stops the actors, and
    the Ray instance or connection if this executor made it.

    ``address``: ``None`` or ``"local"`` uses the Ray this process already runs, else joins
    ``$RAY_ADDRESS``, else starts a private local instance (loopback only); ``"auto"``,
    ``"host:port"`` and ``"ray://host:10001"`` join that cluster (:func:`plumcode.raycluster.connect`).
    """

    def __init__(self, problems: Iterable[Problem], config: Any = None, address: str | None = None, *,
                 options: RayExecOptions | None = None, stats: RayExecStats | None = None):
        self.opts = options or RayExecOptions()
        self.stats = stats if stats is not None else RayExecStats()
        self._started = connect(None if address == "local" else address)
        self.ray = import_ray()
        self._drv: _Driver | None = None
        try:
            self._drv = _Driver(list(problems), config, self.opts, self.stats)
            self._drv.ensure_actors()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for a in self._drv.actors if self._drv else []:
            try:
                self.ray.kill(a.handle)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self._drv:
            self._drv.actors = []
        if self._started:
            self._started = False
            self.ray.shutdown()

    def summary(self) -> dict:
        """What ``execute_file`` adds to its summary: the run's :class:`RayExecStats`."""
        return {"ray": dataclasses.asdict(self.stats)}

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, samples: Iterable[Sample], done: Iterable[str] = ()) -> Iterator[Verdict]:
        """Yield exactly one :class:`Verdict` per new sample_id, in completion order.

        ``samples`` may be a lazy iterator: it is read only as fast as the cluster executes
        (back-pressure). Sample ids in ``done`` and repeated ids in the input are skipped."""
        ray, opts, stats, drv = self.ray, self.opts, self.stats, self._drv
        assert drv is not None, "execute() after close()"
        drv.ensure_actors()
        seen: set[str] = set(done)
        queued: set[str] = set()  # sample ids read from the input but without a verdict yet
        retry: collections.deque[_Chunk] = collections.deque()
        inflight: dict[Any, tuple[_Actor, _Chunk, float]] = {}
        source = iter(samples)
        exhausted = False

        def next_chunk(size: int) -> _Chunk | None:
            nonlocal exhausted
            while retry:
                ch = retry.popleft()
                ch.samples = [s for s in ch.samples if s.sample_id not in seen]
                if ch.samples:
                    return ch
            batch: list[Sample] = []
            while not exhausted and len(batch) < size:
                try:
                    s = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if s.sample_id in seen or s.sample_id in queued:
                    stats.skipped_done += 1
                    continue
                queued.add(s.sample_id)
                batch.append(s)
            return _Chunk(batch) if batch else None

        def fill() -> None:
            while True:
                live = [a for a in drv.live() if a.inflight < opts.inflight_per_actor]
                if not live:
                    return
                actor = min(live, key=lambda a: a.inflight)
                ch = next_chunk(opts.chunk_size or 8 * actor.workers)
                if ch is None:
                    return
                ref = actor.handle.run.remote([dataclasses.asdict(s) for s in ch.samples])
                actor.inflight += 1
                ch.attempts += 1
                stats.chunks_submitted += 1
                inflight[ref] = (actor, ch, time.monotonic())

        def lose(actor: _Actor, why: str) -> None:
            if actor.alive:
                actor.alive = False
                drv.lost_at[actor.node_id] = time.monotonic()
                stats.actors_lost += 1
                log.warning("sandbox actor on node %s lost (%s); resubmitting its chunks", actor.node_id[:8], why)
                try:
                    ray.kill(actor.handle)
                except Exception:  # noqa: BLE001 - already dead is fine
                    pass

        fill()
        last_scan = time.monotonic()
        try:
            while inflight:
                if time.monotonic() - last_scan > opts.rescan_s:  # new or recovered nodes
                    drv.start_missing_actors()
                    last_scan = time.monotonic()
                    fill()
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
                if opts.chunk_timeout_s is not None:  # a hung node: kill its actor, its chunks get retried
                    now = time.monotonic()
                    for _ref, (actor, _ch, t0) in list(inflight.items()):
                        if now - t0 > opts.chunk_timeout_s:
                            lose(actor, f"chunk exceeded {opts.chunk_timeout_s}s since submission")
                for ref in ready:
                    actor, ch, _t0 = inflight.pop(ref)
                    actor.inflight -= 1
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayTaskError:
                        raise  # the executor itself raised: a bug or bad data, not a lost machine
                    except ray.exceptions.RayError as e:
                        lose(actor, type(e).__name__)
                        if ch.attempts >= opts.max_chunk_attempts:
                            raise RuntimeError(f"a chunk of {len(ch.samples)} samples was lost "
                                               f"{ch.attempts} times; giving up") from e
                        stats.chunks_retried += 1
                        retry.append(ch)
                        continue
                    node = stats.nodes[actor.node_id]
                    for d in results:
                        v = Verdict.from_json(d)
                        if v.sample_id in seen:
                            stats.duplicates_dropped += 1
                            continue
                        seen.add(v.sample_id)
                        queued.discard(v.sample_id)
                        stats.verdicts += 1
                        node["verdicts"] += 1
                        node["isolation"][v.isolation] = node["isolation"].get(v.isolation, 0) + 1
                        yield v
                if any(not a.alive for a in drv.actors):
                    drv.actors = drv.live()
                    if retry or not exhausted:
                        drv.ensure_actors()
                fill()

        finally:  # abandoned early: free the slots (the actors finish those chunks, unread)
            for actor, _ch, _t0 in inflight.values():
                actor.inflight -= 1
            inflight.clear()
