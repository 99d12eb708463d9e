"""Command-line pieces for scale-out. ``python -m plumcode.distributed`` offers:

- ``train-command``: print the ``accelerate launch`` command for ``plumcode train``;
- ``serve``: run a managed ``vllm serve`` / ``plumcode serve`` until interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import time


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
