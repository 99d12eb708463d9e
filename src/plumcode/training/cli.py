"""``plumcode train``: preferences.jsonl + a model -> checkpoint dir (LoRA adapter and/or full weights)."""

from __future__ import annotations

import argparse
import json

from plumcode.training.config import TrainConfig

S = argparse.SUPPRESS  # tuning flags left out keep the --config file's (or TrainConfig's) value


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    d = TrainConfig()
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--preferences", required=True, help="preferences.jsonl from `plumcode preferences`")
    p.add_argument("--model", default="default",
                   help="HF model dir, hub id, .gguf, registered name ('default'), or a previous checkpoint dir")
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--adapter", help="continue training this LoRA adapter dir (must match --model's base)")
    p.add_argument("--config", help="JSON file of TrainConfig fields; flags given explicitly override it")
    p.add_argument("--objective", choices=["kto", "dpo", "sft"], default=S, help=f"(default {d.objective})")
    p.add_argument("--full", dest="lora", action="store_false", default=S, help="full fine-tuning instead of LoRA")
    for flag, field, typ in [("--lora-r", "lora_r", int), ("--lora-alpha", "lora_alpha", int),
                             ("--beta", "beta", float), ("--desirable-weight", "desirable_weight", float),
                             ("--undesirable-weight", "undesirable_weight", float),
                             ("--sft-weight", "sft_weight", float),
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
    try:
        res = train(args.preferences, args.model, cfg, args.out, adapter=args.adapter)
    finally:
        _end_distributed()
    print(json.dumps(res.to_json(), indent=2))
    return 0


def _end_distributed() -> None:
    """Under ``accelerate launch``: a process group still alive at interpreter exit makes gloo abort
    the rank (SIGABRT, "terminate called without an active exception" with torch 2.13)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
