"""Connecting to Ray (an existing cluster or a local instance) and listing usable nodes.

Used by the sandbox's Ray executor (``plumcode.sandbox.on_ray``) and by engine actors
(``plumcode.distributed.sampling``), so it lives beside both rather than in either. Ray is imported
lazily so that importing either costs nothing for users without it. A local instance we start
ourselves binds to loopback only (Ray would otherwise advertise the machine's network address): a
laptop run must not open ports to the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(*, loopback: bool = False) -> Any:
    """Import ray; with ``loopback`` (before the first import) a local instance stays on 127.0.0.1."""
    if loopback:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    try:
        import ray
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("Ray is not installed: pip install 'plumcode[ray]'") from e
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Make sure this process is a Ray driver; return True if this call started/connected it.

    ``address``: ``None`` reuses an initialised Ray, joins ``$RAY_ADDRESS`` if set, else starts a
    private local instance (loopback only); ``"auto"`` joins
    the cluster this machine belongs to (``ray start`` ran here); ``"host:port"`` joins that GCS;
    ``"ray://host:10001"`` uses Ray Client.
    """
    ray = import_ray(loopback=address is None)
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": True}
    if address is None and os.environ.get("RAY_ADDRESS"):
        pass  # inside a Ray job / pointed at a cluster by the environment: join it
    elif address is None:
        # "local": always a fresh instance, never a cluster that happens to run on this machine
        kwargs.update(address="local", include_dashboard=False, num_cpus=num_cpus)
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    cpus: float
    gpus: float


def alive_nodes(min_cpus: float = 0.0, min_gpus: float = 0.0) -> list[NodeInfo]:
    """Alive nodes with at least the given resources (a head started with ``--num-cpus 0`` is skipped)."""
    ray = import_ray()
    out = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources", {})
        info = NodeInfo(n["NodeID"], n.get("NodeManagerAddress", ""), float(res.get("CPU", 0.0)),
                        float(res.get("GPU", 0.0)))
        if info.cpus >= min_cpus and info.gpus >= min_gpus and (info.cpus > 0 or info.gpus > 0):
            out.append(info)
    return out


def node_affinity(node_id: str) -> Any:
    """A hard scheduling constraint pinning an actor to one node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def resolve(dotted: str) -> Any:
    """``"package.module:attr"`` -> the object (lets users plug their own executor/backend)."""
    import importlib

    mod, _, attr = dotted.partition(":")
    obj = importlib.import_module(mod)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
