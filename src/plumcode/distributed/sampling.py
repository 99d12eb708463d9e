"""Data-parallel sampling over several generation endpoints or in-process engines.

:class:`MultiBackend` is itself a :class:`~plumcode.generation.base.Backend`, so the sampling
stage (``plumcode.generation.sample_problems``: resumable ``samples.jsonl``) and the loop use it
unchanged. Each ``generate`` call is cut into small requests that go to the healthy replica with
the fewest outstanding requests; a replica that raises is marked unhealthy for a cool-down
(doubling on repeated failures, probed before reuse) and its request is retried on another.
All replicas must serve the same policy (same model/adapter hashes), or samples would silently
be off-policy.

Replicas are any backends: ``openai:http://node-a:8000/v1#m`` URLs (vLLM, SGLang, plumcode
serve), or :class:`RayEngine` actors that hold an in-process engine (transformers or vLLM) on
one GPU each of a Ray cluster (:func:`ray_engines`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from plumcode.generation.base import Backend, Completion, Prompt, SamplingParams
from plumcode.generation.loader import load_backend, multi_replicas

log = logging.getLogger(__name__)


class AllReplicasDown(RuntimeError):
    pass


@dataclass
class ReplicaState:
    backend: Any
    label: str
    outstanding: int = 0
    healthy: bool = True
    down_until: float = 0.0
    consecutive_failures: int = 0
    requests: int = 0
    prompts: int = 0
    failures: int = 0
    busy_s: float = 0.0
    last_error: str = ""


def _policy_key(ident: dict) -> tuple:
    return (ident.get("model"), ident.get("model_sha256"), ident.get("adapter_sha256"))


@dataclass
class MultiBackend:
    """Several replicas of one policy behind the Backend interface.

    ``prompts_per_request``: prompts sent in one call to a replica (small keeps the balance fine
    and a failure cheap); ``max_outstanding``: calls in flight per replica; ``probe``: optional
    ``probe(backend) -> bool`` run before an unhealthy replica is used again (e.g. GET /health).
    """

    backends: Sequence[Any]
    prompts_per_request: int = 4
    max_outstanding: int = 2
    cooldown_s: float = 5.0
    max_cooldown_s: float = 120.0
    max_attempts: int = 4
    all_down_timeout_s: float = 300.0
    probe: Callable[[Any], bool] | None = None
    check_same_policy: bool = True
    replicas: list[ReplicaState] = field(init=False)

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("MultiBackend needs at least one backend")
        self.replicas = [ReplicaState(b, f"{getattr(b, 'name', 'backend')}[{i}]")
                         for i, b in enumerate(self.backends)]
        self._lock = threading.Lock()
        self._idents = [b.identity() for b in self.backends]
        if self.check_same_policy:
            keys = {_policy_key(i) for i in self._idents}
            if len(keys) > 1:
                raise ValueError(f"replicas serve different policies {sorted(map(str, keys))}: sampling "
                                 "from them together would mix policies (off-policy data)")
        first = self.backends[0]
        self.name = getattr(first, "name", "multi")
        self.batch_size = sum(int(getattr(b, "batch_size", None) or getattr(b, "concurrency", None) or 1)
                              for b in self.backends)

    def __getattr__(self, item: str) -> Any:  # tokenizer / chat_template etc. of the (same) policy
        if item.startswith("_") or item in ("backends", "replicas"):
            raise AttributeError(item)
        return getattr(self.backends[0], item)

    def identity(self) -> dict:
        return dict(self._idents[0]) | {"replicas": len(self.backends)}

    def close(self) -> None:
        for b in self.backends:
            try:
                b.close()
            except Exception as e:  # noqa: BLE001 - closing is best effort
                log.debug("closing %s: %s", b, e)

    # -- scheduling
    def _available(self, now: float) -> list[ReplicaState]:
        out = []
        for r in self.replicas:
            if not r.healthy and now >= r.down_until:
                ok = True
                if self.probe is not None:
                    try:
                        ok = bool(self.probe(r.backend))
                    except Exception:  # noqa: BLE001 - a failing probe means still down
                        ok = False
                if ok:
                    r.healthy = True
                    log.info("replica %s is back", r.label)
                else:
                    r.down_until = now + min(self.max_cooldown_s, self.cooldown_s * 2 ** r.consecutive_failures)
            if r.healthy and r.outstanding < self.max_outstanding:
                out.append(r)
        return out

    def _mark_failed(self, r: ReplicaState, err: BaseException) -> None:
        r.failures += 1
        r.consecutive_failures += 1
        r.healthy = False
        r.down_until = time.monotonic() + min(self.max_cooldown_s,
                                              self.cooldown_s * 2 ** (r.consecutive_failures - 1))
        r.last_error = f"{type(err).__name__}: {err}"[:500]
        log.warning("replica %s failed (%s); unhealthy for %.0fs, its prompts go elsewhere",
                    r.label, r.last_error, r.down_until - time.monotonic())

    def _call(self, r: ReplicaState, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        t = time.perf_counter()
        try:
            out = r.backend.generate(prompts, params)
        finally:
            r.busy_s += time.perf_counter() - t
        if len(out) != len(prompts):
            raise RuntimeError(f"replica returned {len(out)} results for {len(prompts)} prompts")
        return out

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        results: list[list[Completion] | None] = [None] * len(prompts)
        step = max(1, self.prompts_per_request)
        pending = [(list(range(i, min(i + step, len(prompts)))), 0) for i in range(0, len(prompts), step)]
        pending.reverse()  # pop() from the end keeps the original order
        inflight: dict[Future, tuple[ReplicaState, list[int], int]] = {}
        all_down_since: float | None = None
        with ThreadPoolExecutor(max_workers=max(1, len(self.replicas) * self.max_outstanding),
                                thread_name_prefix="plumcode-multi") as pool:
            while pending or inflight:
                now = time.monotonic()
                avail = self._available(now) if pending else []
                while pending and avail:
                    r = min(avail, key=lambda x: (x.outstanding, x.requests))  # least outstanding
                    idx, attempts = pending.pop()
                    r.outstanding += 1
                    r.requests += 1
                    r.prompts += len(idx)
                    fut = pool.submit(self._call, r, [prompts[i] for i in idx], params)
                    inflight[fut] = (r, idx, attempts)
                    avail = [x for x in avail if x.outstanding < self.max_outstanding]
                if not inflight:  # work left but no replica usable now
                    all_down_since = all_down_since or now
                    if now - all_down_since > self.all_down_timeout_s:
                        errs = "; ".join(f"{r.label}: {r.last_error}" for r in self.replicas)
                        raise AllReplicasDown(f"no healthy replica for {self.all_down_timeout_s:.0f}s ({errs})")
                    nxt = min((r.down_until for r in self.replicas if not r.healthy), default=now + 0.5)
                    time.sleep(min(max(0.05, nxt - now), 1.0))
                    continue
                all_down_since = None
                done, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    r, idx, attempts = inflight.pop(fut)
                    r.outstanding -= 1
                    try:
                        out = fut.result()
                    except Exception as e:  # noqa: BLE001 - any replica failure: retry elsewhere
                        self._mark_failed(r, e)
                        if attempts + 1 >= self.max_attempts:
                            raise AllReplicasDown(f"{len(idx)} prompts failed on {attempts + 1} replicas; "
                                                  f"last: {r.last_error}") from e
                        pending.append((idx, attempts + 1))
                        continue
                    r.consecutive_failures = 0
                    for i, comps in zip(idx, out, strict=True):
                        results[i] = comps
        return [r if r is not None else [] for r in results]

    def stats(self) -> list[dict]:
        return [{"replica": r.label, "requests": r.requests, "prompts": r.prompts, "failures": r.failures,
                 "busy_s": round(r.busy_s, 3), "healthy": r.healthy, "last_error": r.last_error}
                for r in self.replicas]


def http_health_probe(backend: Any, timeout_s: float = 5.0) -> bool:
    """``GET <server>/health`` (vLLM, plumcode serve) for an OpenAI-compatible backend."""
    import httpx

    base = getattr(backend, "base_url", "").rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    try:
        return httpx.get(base + "/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def load_multi_backend(specs: Sequence[str], **opts: Any) -> MultiBackend:
    """One backend per spec (``load_backend``), balanced: e.g. one ``openai:`` URL per vLLM server."""
    backends = [load_backend(s, **opts) for s in specs]
    probe = http_health_probe if all(getattr(b, "name", "") == "openai" for b in backends) else None
    return MultiBackend(backends, probe=probe)


def load_multi_spec(spec: str, **opts: Any) -> MultiBackend:
    """``load_backend("multi:<spec>|<spec>|...", **opts)`` (registered with the generation loader)."""
    return load_multi_backend(multi_replicas(spec), **opts)


# ------------------------------------------------------------------ in-process engines on Ray
class _EngineActor:
    """Holds one in-process engine (``load_backend(spec)``) on the GPU Ray gave this actor."""

    def __init__(self, spec: str, opts: dict):
        self.backend = load_backend(spec, **opts)

    def meta(self) -> dict:
        b = self.backend
        tok = getattr(b, "tokenizer", None)
        return {"name": getattr(b, "name", "engine"), "identity": b.identity(),
                "chat_template": getattr(tok, "chat_template", None) if tok is not None
                else getattr(b, "chat_template", None),
                "batch_size": getattr(b, "batch_size", None)}

    def generate(self, prompts: list, params: SamplingParams) -> list[list[Completion]]:
        return self.backend.generate(prompts, params)

    def close(self) -> None:
        self.backend.close()


class _TemplateHolder:
    def __init__(self, chat_template: str | None):
        self.chat_template = chat_template


class RayEngine:
    """A Backend proxy for one engine actor. Ray restarts a crashed actor (model reloaded);
    the call that was running raises, and :class:`MultiBackend` retries it on another replica."""

    def __init__(self, spec: str, *, num_gpus: float = 1.0, num_cpus: float = 1.0,
                 max_restarts: int = 3, load_opts: dict | None = None, address: str | None = None):
        from plumcode.raycluster import connect, import_ray

        connect(address)
        self.ray = import_ray()
        cls = self.ray.remote(_EngineActor)
        self.actor = cls.options(num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=max_restarts,
                                 max_task_retries=0).remote(spec, dict(load_opts or {}))
        self.spec = spec
        self._meta_ref = self.actor.meta.remote()  # resolved lazily: n engines load in parallel
        self._meta: dict | None = None

    def _m(self) -> dict:
        if self._meta is None:
            self._meta = self.ray.get(self._meta_ref)
        return self._meta

    @property
    def name(self) -> str:
        return self._m()["name"]

    @property
    def batch_size(self) -> int | None:
        return self._m()["batch_size"]

    @property
    def tokenizer(self) -> _TemplateHolder:  # what prompt-style detection reads
        return _TemplateHolder(self._m()["chat_template"])

    def identity(self) -> dict:
        return dict(self._m()["identity"])

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self.ray.get(self.actor.generate.remote(list(prompts), params))

    def close(self) -> None:
        try:
            self.ray.get(self.actor.close.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - the actor may already be gone
            pass
        self.ray.kill(self.actor)


def ray_engines(spec: str, n: int | None = None, *, num_gpus: float = 1.0, num_cpus: float = 1.0,
                address: str | None = None, load_opts: dict | None = None) -> MultiBackend:
    """``n`` engine actors (default: one per GPU in the cluster) behind one :class:`MultiBackend`."""
    from plumcode.raycluster import connect, import_ray

    connect(address)
    if n is None:
        gpus = import_ray().cluster_resources().get("GPU", 0)
        n = int(gpus // num_gpus) if num_gpus > 0 else 1
        if n < 1:
            raise RuntimeError("no GPU in the Ray cluster; pass n and num_gpus=0 to run engines on CPUs")
    engines = [RayEngine(spec, num_gpus=num_gpus, num_cpus=num_cpus, load_opts=load_opts) for _ in range(n)]
    return MultiBackend(engines, prompts_per_request=max(1, int(engines[0].batch_size or 4)))


__all__ = ["AllReplicasDown", "Backend", "MultiBackend", "RayEngine", "http_health_probe", "load_multi_backend",
           "load_multi_spec", "ray_engines"]
