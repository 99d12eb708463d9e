"""Scale-out: sandbox execution on Ray, sampling over several endpoints/engines, managed
generation servers, a generation/execution pipeline, and multi-GPU training launch commands.

Everything here drives existing engines (Ray, vLLM / ``plumcode serve``, accelerate/DeepSpeed)
and imports them lazily, so ``import plumcode.distributed`` needs none of them.
"""

from plumcode.distributed.execution import RayExecOptions, RayExecStats, execute_file_ray, execute_ray

__all__ = ["RayExecOptions", "RayExecStats", "execute_file_ray", "execute_ray"]
