"""Scale-out: sampling over several endpoints/engines, managed generation servers, and multi-GPU
training launch commands. Sandbox execution on Ray is the sandbox's own
(``plumcode.sandbox.execute(..., ray_address=...)``).

Everything here drives existing engines (Ray, vLLM / ``plumcode serve``, accelerate/DeepSpeed)
and imports them lazily, so ``import plumcode.distributed`` needs none of them. See
``docs/scale-out.md``.

Importing it registers the ``multi:`` and ``managed:`` model specs with the generation loader
(``plumcode.generation.loader.register_spec``): this package builds on generation, not the reverse.
"""

from plumcode.distributed.launch import LaunchSpec, accelerate_command, train_launch_command
from plumcode.distributed.sampling import (
    MultiBackend,
    RayEngine,
    load_multi_backend,
    load_multi_spec,
    ray_engines,
)
from plumcode.distributed.servers import (
    ManagedServer,
    ServerSpec,
    load_managed_spec,
    plumcode_spec,
    vllm_spec,
)
from plumcode.generation.loader import register_spec

register_spec("multi", load_multi_spec)
register_spec("managed", load_managed_spec)

__all__ = [
    "LaunchSpec", "ManagedServer", "MultiBackend", "RayEngine", "ServerSpec", "accelerate_command",
    "load_multi_backend", "plumcode_spec", "ray_engines", "train_launch_command", "vllm_spec",
]
