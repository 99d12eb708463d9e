"""Scale-out: sandbox execution on Ray, sampling over several endpoints/engines, managed
generation servers, a generation/execution pipeline, and multi-GPU training launch commands.

Everything here drives existing engines (Ray, vLLM / ``plumcode serve``, accelerate/DeepSpeed)
and imports them lazily, so ``import plumcode.distributed`` needs none of them. See
``docs/scale-out.md``.
"""

from plumcode.distributed.execution import (
    RayExecOptions,
    RayExecStats,
    RayExecutor,
    execute_file_ray,
    execute_ray,
)
from plumcode.distributed.launch import LaunchSpec, accelerate_command, train_launch_command
from plumcode.distributed.pipeline import PipelineStats, overlapped, sequential
from plumcode.distributed.sampling import MultiBackend, RayEngine, load_multi_backend, ray_engines
from plumcode.distributed.servers import ManagedServer, ServerSpec, plumcode_spec, vllm_spec

__all__ = [
    "LaunchSpec", "ManagedServer", "MultiBackend", "PipelineStats", "RayEngine", "RayExecOptions",
    "RayExecStats", "RayExecutor", "ServerSpec", "accelerate_command", "execute_file_ray", "execute_ray",
    "load_multi_backend", "overlapped", "plumcode_spec", "ray_engines", "sequential", "train_launch_command",
    "vllm_spec",
]
