"""Multi-GPU / multi-node training: build the ``accelerate launch`` command for ``plumcode train``.

The trainer is an ``accelerate.Accelerator`` loop, so DDP, DeepSpeed ZeRO-2/3 and multi-node are
a matter of launching it right. Configs live in ``configs/accelerate/*.yaml`` and
``configs/deepspeed/*.json`` (repo root); a name (``"deepspeed_zero2"``) or any path works.

DeepSpeed with a hand-written training loop needs integer micro-batch and accumulation values
(there is no dataloader for accelerate to read them from), so :func:`train_launch_command`
writes a resolved DeepSpeed JSON next to the checkpoint with the trainer's ``batch_size`` and
``grad_accum``. Only the run/checkpoint directory is shared between nodes; nothing else assumes
a node-local path.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ROOT = Path(__file__).resolve().parents[3] / "configs"


def config_path(name_or_path: str | os.PathLike, kind: str = "accelerate") -> Path:
    """``"multi_gpu"`` -> ``configs/accelerate/multi_gpu.yaml``; an existing path is returned as is."""
    p = Path(name_or_path)
    if p.is_file():
        return p.resolve()
    ext = ".yaml" if kind == "accelerate" else ".json"
    cand = CONFIG_ROOT / kind / (p.name if p.suffix else p.name + ext)
    if cand.is_file():
        return cand
    known = sorted(x.stem for x in (CONFIG_ROOT / kind).glob(f"*{ext}")) if (CONFIG_ROOT / kind).is_dir() else []
    raise FileNotFoundError(f"no {kind} config {str(name_or_path)!r} (known: {', '.join(known) or 'none'})")


def load_accelerate_config(name_or_path: str | os.PathLike) -> dict:
    import yaml

    with open(config_path(name_or_path)) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict) or "distributed_type" not in cfg:
        raise ValueError(f"{name_or_path}: not an accelerate config (no distributed_type)")
    return cfg


def resolve_deepspeed_config(template: str | os.PathLike, *, micro_batch: int, grad_accum: int,
                             max_grad_norm: float | None = 1.0) -> dict:
    """A DeepSpeed config with the trainer's own numbers in place of ``"auto"`` batch fields."""
    with open(config_path(template, "deepspeed")) as f:
        cfg = json.load(f)
    cfg["train_micro_batch_size_per_gpu"] = int(micro_batch)
    cfg["gradient_accumulation_steps"] = int(grad_accum)
    cfg.pop("train_batch_size", None)  # DeepSpeed derives it: micro x accum x world size
    cfg["gradient_clipping"] = float(max_grad_norm) if max_grad_norm else 0.0
    return cfg


@dataclass
class LaunchSpec:
    """Where and how wide to launch. ``None`` keeps the config file's value."""

    config: str = "multi_gpu"            # accelerate config name or path
    num_processes: int | None = None     # total over all machines
    num_machines: int | None = None
    machine_rank: int | None = None
    main_process_ip: str | None = None
    main_process_port: int | None = None
    mixed_precision: str | None = None   # no | bf16 | fp16
    deepspeed: str | None = None         # deepspeed JSON name/path (DEEPSPEED configs; default from yaml)
    extra_args: list[str] = field(default_factory=list)


def accelerate_command(module_args: list[str], spec: LaunchSpec, *, module: str = "plumcode",
                       deepspeed_file: str | os.PathLike | None = None,
                       grad_accum: int | None = None) -> list[str]:
    """``python -m accelerate.commands.launch --config_file ... -m <module> <module_args>``.

    The launcher runs through this interpreter so the processes see the same environment.
    """
    cfg = load_accelerate_config(spec.config)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path(spec.config))]
    for flag, val in (("--num_processes", spec.num_processes), ("--num_machines", spec.num_machines),
                      ("--machine_rank", spec.machine_rank), ("--main_process_ip", spec.main_process_ip),
                      ("--main_process_port", spec.main_process_port),
                      ("--mixed_precision", spec.mixed_precision)):
        if val is not None:
            cmd += [flag, str(val)]
    if cfg["distributed_type"] == "DEEPSPEED":
        ds = deepspeed_file or config_path(
            spec.deepspeed or cfg.get("deepspeed_config", {}).get("deepspeed_config_file", "zero2"), "deepspeed")
        cmd += ["--deepspeed_config_file", str(Path(ds).resolve())]
        if grad_accum is not None:
            cmd += ["--gradient_accumulation_steps", str(grad_accum)]
    cmd += list(spec.extra_args)
    cmd += ["-m", module, *module_args]
    return cmd


def train_launch_command(preferences: str | os.PathLike, model: str, out: str | os.PathLike,
                         spec: LaunchSpec, *, train_config: dict | None = None,
                         train_args: list[str] = ()) -> list[str]:
    """The command that trains with ``plumcode train`` under ``spec`` (what the loop runs).

    ``train_config`` (TrainConfig fields) is written to ``<out>.train_config.json`` and passed
    with ``--config``; for DeepSpeed a resolved JSON ``<out>.deepspeed.json`` is written beside it.
    Both live beside the checkpoint so every node reads the same files from shared storage.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["train", "--preferences", str(preferences), "--model", model, "--out", str(out)]
    tc = dict(train_config or {})
    if tc:
        from plumcode.io import atomic_write_json

        cfg_file = out.parent / f"{out.name}.train_config.json"
        atomic_write_json(cfg_file, tc)
        args += ["--config", str(cfg_file)]
    args += list(train_args)
    ds_file = None
    acc = load_accelerate_config(spec.config)
    if acc["distributed_type"] == "DEEPSPEED":
        from plumcode.io import atomic_write_json

        template = spec.deepspeed or acc.get("deepspeed_config", {}).get("deepspeed_config_file", "zero2")
        ds = resolve_deepspeed_config(template, micro_batch=int(tc.get("batch_size", 4)),
                                      grad_accum=int(tc.get("grad_accum", 1)),
                                      max_grad_norm=tc.get("max_grad_norm", 1.0))
        ds_file = out.parent / f"{out.name}.deepspeed.json"
        atomic_write_json(ds_file, ds)
    return accelerate_command(args, spec, deepspeed_file=ds_file,
                              grad_accum=int(tc.get("grad_accum", 1)) if ds_file else None)


def format_command(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)
