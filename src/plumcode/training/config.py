"""Training configuration and result records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Everything that shapes one training round; saved with every checkpoint.

    Loss hyper-parameters have TRL's names and defaults (``beta``, ``desirable_weight``, ...), so
    a TRL recipe carries over. ``None`` weights mean: take them from the preference summary the
    preference stage wrote beside the data, else 1.0.
    """

    objective: str = "kto"  # a name in plumcode.training.objectives.OBJECTIVES: kto, dpo, simpo, sft
    beta: float = 0.1
    simpo_gamma: float = 0.5  # SimPO's target reward margin (TRL CPOConfig.simpo_gamma)
    desirable_weight: float | None = None
    undesirable_weight: float | None = None
    kto_kl: bool = True  # TRL's batch KL estimate from mismatched (prompt, completion) pairs
    # NLL (mean per token) of the desirable/chosen completions added with this weight: TRL DPO's
    # loss_type=["sigmoid", "sft"], loss_weights=[1, w] (RPO, Pang et al. 2024). It keeps the chosen
    # likelihood from falling with the rejected one, the drift preference losses show on code.
    sft_weight: float = 0.0
    # whose log-probs the KL constraint is measured against when training continues an adapter (online
    # rounds): "start", the policy this training starts from (re-centred every round, so the beta
    # constraint restarts and drift can accumulate), or "base", the model without the adapter (the
    # initial policy: anchored across rounds). Equal when training starts from a fresh adapter.
    reference: Literal["start", "base"] = "start"
    # training health: warn when the desirable/chosen completions' log-prob falls more than this many
    # nats below the reference (last tenth of the steps), or when greedy answers to ``probe_prompts``
    # training prompts grow by more than ``probe_growth`` (a fraction) from before training to after
    health_logp_drop: float = 2.0
    probe_prompts: int = 8
    probe_growth: float = 0.25
    probe_max_tokens: int = 384
    # parameters
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 16  # alpha = r, as TRL's KTO LoRA example
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    # optimisation
    # TRL's KTO/DPO guidance (LoRA and full fine-tuning alike: 5e-7..5e-6; KTOConfig defaults to 1e-6);
    # 5e-5 with alpha 2r, the old default, lost 9.8 points in the headline experiment
    learning_rate: float = 5e-6
    epochs: float = 1.0
    max_steps: int = 0  # > 0 overrides epochs
    batch_size: int = 4  # pairs (dpo) or examples (kto, sft) per optimizer step, before accumulation
    grad_accum: int = 4  # effective batch 16 with batch_size 4 (TRL: per-device >= 4, effective 16-128)
    warmup_ratio: float = 0.1
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 1024  # keep_start truncation, like TRL
    seed: int = 0
    # execution
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    dtype: str = "auto"  # auto (bf16 on capable GPUs, fp32 elsewhere) | float32 | bfloat16 | float16
    memory_saving: bool = False  # gradient checkpointing + recomputed lm-head chunks
    logits_chunk: int = 0  # completion tokens per lm-head chunk; 0 = all at once (memory_saving: 512)
    ref_batch_tokens: int = 16384  # token budget per no-grad reference batch
    length_sorted: bool = True  # batches of similar lengths (less padding); False: random batches like TRL
    # outputs
    log_every: int = 1
    save_every: int = 0  # optimizer steps between resumable checkpoints; 0 = only at the end
    keep_checkpoints: int = 2
    save_merged: bool = False  # LoRA: also write merged full weights (out/model) for vLLM/transformers
    report_to: tuple[str, ...] = ()  # "tensorboard", "wandb" (when installed)
    resume: bool = True  # continue from the newest checkpoint-* in out_dir when one exists

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        d["report_to"] = list(self.report_to)
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("lora_targets", "report_to"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


@dataclass
class TrainResult:
    out_dir: str
    objective: str
    steps: int
    examples: int
    final_loss: float
    adapter_dir: str | None
    model_dir: str | None
    log_path: str
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from_step: int = 0
    health: dict = field(default_factory=dict)  # training.health.Health.to_json()

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("history")
        return d
