"""``plumcode launch``: starting what scale-out needs beyond the other commands.

- ``plumcode launch train``: print (or ``--run``) the ``accelerate launch`` command that runs
  ``plumcode train`` on several GPUs or nodes (DDP, DeepSpeed ZeRO-2/3), with the resolved
  DeepSpeed and train configs written beside the checkpoint (:mod:`plumcode.distributed.launch`);
- ``plumcode launch server``: a managed ``vllm serve`` (runtime LoRA loading on) or ``plumcode
  serve`` in its own process group until Ctrl-C, then the whole group stopped, as the loop's
  ``managed:`` specs run it.

Sandbox execution on Ray is ``plumcode execute``/``evaluate --ray-address``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help)
    ss = p.add_subparsers(dest="launch_command", metavar="WHAT")

    t = ss.add_parser("train", help="print (or --run) the accelerate launch command for plumcode train",
                      description="Print (or --run) the accelerate launch command for plumcode train; flags "
                                  "after -- go to plumcode train.")
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
    t.set_defaults(func=_train)

    s = ss.add_parser("server", help="a managed vllm serve / plumcode serve until Ctrl-C (its whole process "
                                     "group is stopped)")
    s.add_argument("--engine", choices=["vllm", "plumcode"], default="vllm")
    s.add_argument("--model", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--served-model-name")
    s.add_argument("--tensor-parallel-size", type=int, default=1)
    s.set_defaults(func=_server)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _train(args: argparse.Namespace) -> int:
    from plumcode.distributed.launch import LaunchSpec, format_command, train_launch_command

    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    tc = json.loads(Path(args.train_config).read_text()) if args.train_config else {}
    spec = LaunchSpec(args.accelerate_config, num_processes=args.num_processes, num_machines=args.num_machines,
                      machine_rank=args.machine_rank, main_process_ip=args.main_process_ip,
                      main_process_port=args.main_process_port, deepspeed=args.deepspeed)
    cmd = train_launch_command(args.preferences, args.model, args.out, spec, train_config=tc, train_args=train_args)
    print(format_command(cmd))
    if args.run:
        import subprocess

        return subprocess.call(cmd)
    return 0


def _server(args: argparse.Namespace) -> int:
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
