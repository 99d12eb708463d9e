"""The run configuration: one YAML file says everything needed to (re)run PLUM.

Every field has a description (``plumcode run --explain`` prints them), unknown keys are errors
(a typo must not silently fall back to a default), and ``--set a.b=c`` overrides any field from
the command line. The resolved configuration is written to ``run/config.yaml`` so a run directory
alone is enough to rerun or resume it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plumcode.sandbox.defaults import DEFAULT_MEMORY_MB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProblemsConfig(_Strict):
    source: str = Field("mbpp-train", description=(
        "training instructions: a name known to plumcode.problems (mbpp-train = MBPP's train split, task ids "
        "601-974, with references; humaneval, mbpp, ...) or a path to a Problem JSONL / instruction file "
        "(CodeAlpaca/Evol-Instruct/OSS-Instruct JSON/JSONL)"))
    path: str | None = Field(None, description="local file for a named source (default: the data dir or the HF hub)")
    id_range: tuple[int, int] | None = Field(None, description=(
        "keep only problems whose trailing numeric id is in [lo, hi] (e.g. MBPP's train split 601-974)"))
    offset: int = Field(0, ge=0, description=(
        "skip this many problems (after id_range, reference and decontamination filters) before taking `limit`"))
    limit: int | None = Field(None, ge=1, description="use at most this many problems (None: all)")
    require_reference: bool = Field(False, description="drop problems without a reference solution")
    decontaminate: bool = Field(True, description=(
        "drop training problems whose instruction shares an n-gram with an evaluation benchmark problem"))
    decontamination_ngram: int = Field(13, ge=1, description="n-gram size (words) for decontamination")
    decontaminate_against: list[str] = Field(default_factory=list, description=(
        "benchmarks to decontaminate against besides the evaluated ones (a recipe sweep that evaluates "
        "on a dev split still keeps the final benchmarks out of its training prompts)"))


class TestGenConfig(_Strict):
    model: str = Field("policy", description=(
        "backend spec of the test writer (hf:<path>, openai:<url>#<model>, llama-cpp:<gguf>, default); "
        "'policy' reuses the current policy"))
    prompt_style: Literal["chat", "completion"] = Field("chat", description=(
        "chat (instruct models, chat template) or completion (base models)"))
    template_dir: str | None = Field(None, description="directory of prompt templates (None: testgen's own)")
    n_samples: int = Field(1, ge=1, description="completions asked from the test writer per problem")
    n_tests: int = Field(10, ge=1, description="tests the prompt asks for")
    temperature: float = Field(0.0, ge=0.0, description="test-writer sampling temperature")
    max_tokens: int = Field(768, ge=16, description="max new tokens per test-writer completion")
    max_tests: int = Field(8, ge=1, description="keep at most this many tests per problem (cap)")
    min_tests: int = Field(1, ge=1, description="problems with fewer kept tests are not used for training")
    validation: list[Literal["reference", "inputs", "agreement"]] = Field(default_factory=lambda: ["reference"],
                                                                          description=(
        "validation modes, applied in order: reference (keep tests the reference solution passes), "
        "inputs (the LM proposes inputs, the reference computes expected outputs), agreement (CodeT "
        "dual agreement with the policy's samples; no reference needed: tests are then made after the "
        "round's sampling). [] keeps every parsed test"))
    refresh_per_round: bool = Field(False, description="synthesize tests again at every round (else once)")
    timeout_s: float = Field(3.0, gt=0, description="per-test time limit while validating tests")
    options: dict[str, Any] = Field(default_factory=dict, description="extra testgen config fields, passed through")

    @property
    def after_sampling(self) -> bool:
        return "agreement" in self.validation


class LoraConfig(_Strict):
    enabled: bool = Field(True, description="train a LoRA adapter (False: full fine-tuning)")
    r: int = Field(16, ge=1, description="LoRA rank")
    alpha: int = Field(16, ge=1, description="LoRA alpha (alpha = r, as TRL's KTO LoRA example)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout")
    target_modules: list[str] | str = Field("all-linear", description=(
        "modules to adapt; all-linear: every attention and MLP projection"))


class PolicyConfig(_Strict):
    model: str = Field("default", description=(
        "backend spec of the initial policy: default (embedded Qwen2.5-Coder-0.5B-Instruct), hf:<path>, "
        "managed:<vllm|plumcode>:<model> (a server the loop starts, hot-loads or restarts each round), "
        "openai:<url>#<model> (your server; on-policy needs LoRA hot-loading), multi:<spec>|<spec> "
        "(replicas), llama-cpp:<gguf>"))
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA settings")
    reload: Literal["auto", "none"] = Field("auto", description=(
        "auto: round r samples from round r-1's checkpoint (the spec gets ?adapter=<checkpoint>, which "
        "hf:/default reload in-process, vllm: adds as a LoRARequest, openai: hot-loads into the server); "
        "none: every round samples the initial policy (off-policy ablation)"))
    train_model: str | None = Field(None, description=(
        "model spec the trainer loads when the sampling backend is a server (hf:<path> of the same weights)"))


class SamplingConfig(_Strict):
    n: int = Field(8, ge=1, description="candidate solutions per problem per round")
    temperature: float = Field(0.8, ge=0.0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling")
    max_tokens: int = Field(512, ge=16, description="max new tokens per candidate")
    batch_size: int | None = Field(None, ge=1, description="prompts per generation call (None: backend default)")


class PreferenceConfig(_Strict):
    strategy: str = Field("auto", description=(
        "how verdicts become records: 'auto' (unpaired for KTO, paired for DPO, chosen-only for SFT), "
        "'paired', 'unpaired'"))
    max_per_problem: int | None = Field(None, ge=1, description="cap of records (pairs) per problem")
    options: dict[str, Any] = Field(default_factory=dict, description="extra preference config fields, passed through")


class TrainingConfig(_Strict):
    objective: str = Field("kto", description=(
        "a registered objective (plumcode.training.objectives): kto (PLUM's main objective), dpo, simpo "
        "(reference-free, length-normalised), or sft (rejection-sampling fine-tuning baseline)"))
    epochs: float = Field(1.0, gt=0, description="epochs over the round's preference data")
    learning_rate: float = Field(5e-6, gt=0, description=(
        "learning rate; TRL's KTO/DPO guidance is 5e-7..5e-6 for LoRA and full fine-tuning (5e-5, the old "
        "default, lost 9.8 points in the headline experiment)"))
    beta: float = Field(0.1, gt=0, description="KTO/DPO beta")
    batch_size: int = Field(4, ge=1, description="per-device batch size")
    grad_accum: int = Field(4, ge=1, description=(
        "gradient accumulation steps (4 x batch_size 4 = an effective batch of 16, TRL's lower bound)"))
    max_length: int = Field(1024, ge=32, description="max prompt+completion tokens")
    @field_validator("objective")
    @classmethod
    def _registered(cls, v: str) -> str:
        from plumcode.training.objectives import get

        get(v)  # ValueError naming the registered objectives
        return v

    continue_from_previous: bool = Field(True, description=(
        "round r continues training round r-1's adapter (else: a fresh adapter on the base model)"))
    options: dict[str, Any] = Field(default_factory=dict, description="extra training config fields, passed through")


class BenchmarkSpec(_Strict):
    name: str = Field(description="benchmark name: humaneval, humaneval+, mbpp, mbpp+, livecodebench, ...")
    path: str | None = Field(None, description="local file (default: the data dir or the HF hub)")
    limit: int | None = Field(None, ge=1, description="evaluate on the first `limit` problems only (a slice)")


class EvaluationConfig(_Strict):
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, description="benchmarks to evaluate on")
    n: int = Field(1, ge=1, description="samples per benchmark problem (1 with temperature 0: greedy pass@1)")
    temperature: float = Field(0.0, ge=0.0, description="evaluation sampling temperature")
    max_tokens: int = Field(512, ge=16, description="max new tokens per evaluation sample")
    k: list[int] = Field(default_factory=lambda: [1], description="k values for pass@k")
    baseline: bool = Field(True, description="also evaluate the initial policy (baseline/eval.json)")
    rounds: Literal["all", "last"] = Field("all", description=(
        "evaluate the policy after every round (all) or only after the last (last: online runs on full "
        "benchmarks, where each evaluation costs as much as a round)"))


class SandboxLimits(_Strict):
    timeout_s: float = Field(5.0, gt=0, description="wall time per test")
    memory_mb: int = Field(DEFAULT_MEMORY_MB, ge=64, description="address-space limit per execution")
    workers: int | None = Field(None, ge=1, description=(
        "parallel executions (None: CPU count; with ray_address: per node, None: each node's CPUs)"))
    ray_address: str | None = Field(None, description=(
        "execute the round's samples on Ray: 'local' (a private local instance), 'auto' (the cluster this "
        "machine joined with `ray start`), host:port or ray://host:10001; None: the local process pool"))
    options: dict[str, Any] = Field(default_factory=dict, description="extra sandbox config fields, passed through")


class RunConfig(_Strict):
    name: str = Field("plum", description="run name (shown in reports)")
    seed: int = Field(0, description="seed for sampling, shuffling and training")
    rounds: int = Field(1, ge=1, description="PLUM rounds; 1 is offline PLUM, >1 online (on-policy)")
    problems: ProblemsConfig = Field(default_factory=ProblemsConfig, description="training instructions")
    testgen: TestGenConfig = Field(default_factory=TestGenConfig, description="test synthesis")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="the model being trained")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="policy sampling per round")
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig, description="preference data")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="training per round")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="evaluation per round")
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits, description="sandbox limits")

    @field_validator("rounds")
    @classmethod
    def _rounds_cap(cls, v: int) -> int:
        if v > 999:
            raise ValueError("at most 999 rounds (round-NNN directories)")
        return v


def _parse_scalar(text: str) -> Any:
    """``--set`` values are YAML scalars/flow collections: 4, 0.5, true, null, [a, b], {x: 1}."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides to a nested dict (creating sections as needed)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, _, raw = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ValueError(f"--set: empty key in {item!r}")
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"--set {key}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = _parse_scalar(raw)
    return data


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from defaults), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config must be a YAML mapping")
        data = loaded
    apply_overrides(data, overrides or [])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        where = f"{path}: " if path else ""
        lines = [f"{where}invalid config:"]
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ValueError("\n".join(lines)) from None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def explain(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """One line per field: dotted name, default, description (``plumcode run --explain``)."""
    out: list[str] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        key = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append(f"{key}: {f.description or ''}")
            out.extend(explain(ann, key + "."))
            continue
        default = f.get_default(call_default_factory=True)
        out.append(f"{key} = {default!r}  # {f.description or ''}")
    return out
