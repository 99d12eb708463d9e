"""``plumcode train``: preferences.jsonl + a model -> checkpoint dir (LoRA adapter and/or full weights)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from plumcode.training.config import TrainConfig
from plumcode.training.model import training_source
from plumcode.training.objectives import OBJECTIVES

S = argparse.SUPPRESS  # tuning flags left out keep the --config file's (or TrainConfig's) value


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    d = TrainConfig()
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--preferences", required=True, help="preferences.jsonl from `plumcode preferences`")
    p.add_argument("--model", default="default",
                   help="any model spec the other commands take (default, hf:<dir|hub id|file.gguf>[?adapter=<dir>], "
                        "vllm:, llama-cpp:, managed:, multi:), or a bare dir, hub id, .gguf or checkpoint dir")
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--adapter", help="continue training this LoRA adapter dir (must match --model's base)")
    p.add_argument("--config", help="JSON file of TrainConfig fields; flags given explicitly override it")
    p.add_argument("--objective", choices=list(OBJECTIVES), default=S,
                   help="; ".join(f"{o.name}: {o.summary}" for o in OBJECTIVES.values()) + f" (default {d.objective})")
    p.add_argument("--full", dest="lora", action="store_false", default=S, help="full fine-tuning instead of LoRA")
    for flag, field, typ in [("--lora-r", "lora_r", int), ("--lora-alpha", "lora_alpha", int),
                             ("--beta", "beta", float), ("--desirable-weight", "desirable_weight", float),
                             ("--undesirable-weight", "undesirable_weight", float),
                             ("--sft-weight", "sft_weight", float), ("--simpo-gamma", "simpo_gamma", float),
                             ("--probe-prompts", "probe_prompts", int),
                             ("--lr", "learning_rate", float), ("--epochs", "epochs", float),
                             ("--max-steps", "max_steps", int), ("--batch-size", "batch_size", int),
                             ("--grad-accum", "grad_accum", int), ("--max-length", "max_length", int),
                             ("--warmup-ratio", "warmup_ratio", float), ("--seed", "seed", int),
                             ("--device", "device", str), ("--dtype", "dtype", str),
                             ("--save-every", "save_every", int), ("--logits-chunk", "logits_chunk", int)]:
        p.add_argument(flag, dest=field, type=typ, default=S, help=f"(default {getattr(d, field)})")
    p.add_argument("--scheduler", choices=["cosine", "linear", "constant"], default=S)
    p.add_argument("--no-kl", dest="kto_kl", action="store_false", default=S,
                   help="KTO without the batch KL reference point (z0 = 0)")
    p.add_argument("--memory-saving", action="store_true", default=S,
                   help="gradient checkpointing + recomputed lm-head chunks: less memory, slower steps")
    p.add_argument("--save-merged", action="store_true", default=S,
                   help="LoRA: also write merged full weights to OUT/model (for vLLM / plain transformers)")
    p.add_argument("--report-to", action="append", default=S, choices=["tensorboard", "wandb"])
    p.add_argument("--no-resume", dest="resume", action="store_false", default=S,
                   help="ignore checkpoints already in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.training.trainer import train

    base = TrainConfig().to_json()
    if args.config:
        with open(args.config) as f:
            base |= json.load(f)
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig.from_json(base | given)
    model, adapter = args.model, args.adapter
    if _is_spec(model):
        weights, spec_adapter = training_source(model)
        # LoRA: the spec's ?adapter= is the adapter training continues (as --adapter); full fine-tuning
        # keeps the spec whole and load_policy merges the adapter into the weights it starts from
        if cfg.lora or not spec_adapter:
            if spec_adapter and adapter and Path(adapter).resolve() != Path(spec_adapter).expanduser().resolve():
                raise ValueError(f"--model {model!r} names adapter {spec_adapter} and --adapter {adapter}: give one")
            model, adapter = weights, spec_adapter or adapter
    try:
        res = train(args.preferences, model, cfg, args.out, adapter=adapter)
        world = _world_size()
    finally:
        _end_distributed()
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch: one report, from the rank that wrote
        print(json.dumps(res.to_json() | {"world_size": world}, indent=2))
    return 0


def _is_spec(model: str) -> bool:
    """A model spec with a scheme or options (hf:..., ...?adapter=), not a path that exists."""
    return (":" in model.split("/", 1)[0] or "?" in model) and not Path(model).exists()


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _end_distributed() -> None:
    """Under ``accelerate launch``: a process group still alive at interpreter exit makes gloo abort
    the rank (SIGABRT, "terminate called without an active exception" with torch 2.13)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
