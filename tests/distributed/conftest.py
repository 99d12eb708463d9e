"""A real Ray cluster on loopback: a head with no CPUs plus two 1-CPU worker nodes (separate
raylets, object stores and worker processes), like ``ray start --head --num-cpus 0`` and two
``ray start --address``. Start-up costs ~10-20 s on two cores, so a module shares one."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to 127.0.0.1 only


class LocalCluster:
    def __init__(self, n_workers: int = 2) -> None:
        import ray
        from ray.cluster_utils import Cluster

        self.ray = ray
        self.cluster = Cluster(initialize_head=True,
                               head_node_args={"num_cpus": 0, "include_dashboard": False})
        self.workers = [self.cluster.add_node(num_cpus=1) for _ in range(n_workers)]
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, log_to_driver=False)
        self.n_workers = n_workers

    def crash_worker_node(self, index: int = 0) -> None:
        """Kill a worker node's processes abruptly, as when a machine dies: its raylet and object
        store (``remove_node``) and its worker processes, which would otherwise keep serving
        direct actor calls until they notice their raylet is gone."""
        node = self.workers.pop(index)
        raylets = [p.process.pid for p in node.all_processes.get("raylet", [])]
        assert raylets, "no raylet process recorded for this node"
        out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True, check=True).stdout
        workers = [int(a) for a, b in (line.split() for line in out.splitlines()[1:]) if int(b) in raylets]
        self.cluster.remove_node(node, allow_graceful=False)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def restore(self) -> None:
        while len(self.workers) < self.n_workers:
            self.workers.append(self.cluster.add_node(num_cpus=1))
        self.cluster.wait_for_nodes()

    def close(self) -> None:
        self.ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray")
    c = LocalCluster()
    yield c
    c.close()


@pytest.fixture
def kill_actor_process():
    """Return a function that SIGKILLs one live Ray worker process running actor class ``title``
    (what the OOM killer does); returns the pid killed or None."""

    def kill(title: str) -> int | None:
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        pids = [int(line.split(None, 1)[0]) for line in out.splitlines()[1:] if f"ray::{title}" in line]
        if not pids:
            return None
        try:
            os.kill(pids[0], signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pids[0]

    return kill
