"""Command-line pieces for scale-out.

Other stages' CLIs add the Ray options with :func:`add_ray_arguments` and branch on
``args.ray_address`` (see :func:`execute_from_args`). ``python -m plumcode.distributed`` offers:

- ``execute``: ``plumcode execute`` on a Ray cluster (same files, same resumable output);
- ``train-command``: print the ``accelerate launch`` command for ``plumcode train``;
- ``serve``: run a managed ``vllm serve`` / ``plumcode serve`` until interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray (scale-out)")
    g.add_argument("--ray-address", default=None,
                   help="execute on Ray: 'local' (a private local instance), 'auto' (the cluster this "
                        "machine joined with `ray start`), host:port, or ray://host:10001")
    g.add_argument("--ray-chunk-size", type=int, default=None,
                   help="samples per Ray task (default 8 x the node's workers)")
    g.add_argument("--ray-inflight", type=int, default=2, help="chunks in flight per node (back-pressure)")
    g.add_argument("--ray-chunk-timeout", type=float, default=None,
                   help="seconds after which a chunk's node is presumed hung and its chunk retried")


def ray_options(args: argparse.Namespace) -> tuple[str | None, object]:
    from plumcode.distributed.execution import RayExecOptions

    addr = getattr(args, "ray_address", None)
    opts = RayExecOptions(chunk_size=getattr(args, "ray_chunk_size", None),
                          inflight_per_actor=getattr(args, "ray_inflight", 2),
                          chunk_timeout_s=getattr(args, "ray_chunk_timeout", None))
    return (None if addr == "local" else addr), opts


def execute_from_args(args: argparse.Namespace, sandbox_config: object) -> dict:
    """Run ``--problems/--samples/--out`` on Ray with the options of :func:`add_ray_arguments`."""
    from plumcode.distributed.execution import execute_file_ray

    address, opts = ray_options(args)
    return execute_file_ray(args.problems, args.samples, args.out, sandbox_config, address,
                            options=opts)  # type: ignore[arg-type]


def _execute(args: argparse.Namespace) -> int:
    from plumcode.sandbox import SandboxConfig

    cfg = SandboxConfig(timeout_s=args.timeout, memory_mb=args.memory_mb, fail_fast=args.fail_fast,
                        isolation=args.isolation, job_timeout_s=args.job_timeout)
    if args.ray_address is None:
        args.ray_address = "local"
    s = execute_from_args(args, cfg)
    ray = s.pop("ray")
    print(json.dumps(s, indent=2))
    print(f"nodes: {len(ray['nodes'])}  chunks: {ray['chunks_submitted']}  retried: {ray['chunks_retried']}  "
          f"actors lost: {ray['actors_lost']}  duplicates dropped: {ray['duplicates_dropped']}", file=sys.stderr)
    return 0


def _train_command(args: argparse.Namespace) -> int:
    from plumcode.distributed.launch import LaunchSpec, format_command, train_launch_command

    tc = json.loads(open(args.train_config).read()) if args.train_config else {}
    spec = LaunchSpec(args.accelerate_config, num_processes=args.num_processes, num_machines=args.num_machines,
                      machine_rank=args.machine_rank, main_process_ip=args.main_process_ip,
                      main_process_port=args.main_process_port, deepspeed=args.deepspeed)
    cmd = train_launch_command(args.preferences, args.model, args.out, spec, train_config=tc,
                               train_args=args.train_args)
    print(format_command(cmd))
    if args.run:
        import subprocess

        return subprocess.call(cmd)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from plumcode.distributed.servers import ManagedServer, plumcode_spec, vllm_spec

    if args.engine == "vllm":
        spec = vllm_spec(args.model, port=args.port, host=args.host, served_model_name=args.served_model_name,
                         tensor_parallel_size=args.tensor_parallel_size)
    else:
        extra = ["--served-model-name", args.served_model_name] if args.served_model_name else []
        spec = plumcode_spec(args.model, port=args.port, host=args.host, extra_args=extra)
    with ManagedServer(spec) as srv:
        print(f"serving {args.model} at {spec.openai_url} (log {srv.log_path}); Ctrl-C stops it", flush=True)
        try:
            while srv.running:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m plumcode.distributed", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("execute", help="plumcode execute on a Ray cluster (resumable verdict file)")
    e.add_argument("--problems", required=True)
    e.add_argument("--samples", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--timeout", type=float, default=5.0)
    e.add_argument("--job-timeout", type=float, default=120.0)
    e.add_argument("--memory-mb", type=int, default=4096)
    e.add_argument("--fail-fast", action="store_true")
    e.add_argument("--isolation", choices=["auto", "namespaces", "process"], default="auto")
    add_ray_arguments(e)
    e.set_defaults(func=_execute)

    t = sub.add_parser("train-command", help="print (or --run) the accelerate launch command for plumcode train")
    t.add_argument("--preferences", required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--accelerate-config", default="multi_gpu",
                   help="name in configs/accelerate (single_gpu, multi_gpu, multi_node, deepspeed_zero2, "
                        "deepspeed_zero3, cpu_ddp) or a path")
    t.add_argument("--deepspeed", default=None, help="deepspeed JSON name/path (zero2, zero3, zero3_offload)")
    t.add_argument("--train-config", default=None, help="JSON of TrainConfig fields")
    t.add_argument("--num-processes", type=int)
    t.add_argument("--num-machines", type=int)
    t.add_argument("--machine-rank", type=int)
    t.add_argument("--main-process-ip")
    t.add_argument("--main-process-port", type=int)
    t.add_argument("--run", action="store_true", help="run it instead of only printing it")
    t.add_argument("train_args", nargs=argparse.REMAINDER, help="extra plumcode train flags after --")
    t.set_defaults(func=_train_command)

    s = sub.add_parser("serve", help="a managed generation server (stopped with its whole process group)")
    s.add_argument("--engine", choices=["vllm", "plumcode"], default="vllm")
    s.add_argument("--model", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--served-model-name")
    s.add_argument("--tensor-parallel-size", type=int, default=1)
    s.set_defaults(func=_serve)
    return ap


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=os.environ.get("PLUMCODE_LOG", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "train_args", None) and args.train_args[:1] == ["--"]:
        args.train_args = args.train_args[1:]
    return int(args.func(args) or 0)
