"""``plumcode export CKPT --out DIR``: a trained policy as a plain model folder others can use.

A LoRA checkpoint is only usable with plumcode (or PEFT plus the exact base); the people a model
is handed to load folders with ``AutoModelForCausalLM.from_pretrained`` or ``vllm serve``. So the
adapter is merged into the base weights (in float32, then cast), saved as safetensors with the
tokenizer and generation config, and described by a Hugging Face model card: base model, training
data, recipe, the run's measured pass@k, the plumcode version. Upload to the hub is optional and
fails with a clear message when the hub cannot be reached; the folder is complete either way.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumcode.io import DataError, atomic_write_json, sha256_file
from plumcode.training.model import CKPT_META, load_policy

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ExportResult:
    out_dir: str
    base_model: str | None
    dtype: str
    files: list[str]
    evals: list[dict] = field(default_factory=list)
    pushed_to: str | None = None

    def to_json(self) -> dict:
        return self.__dict__.copy()


def _plumcode_version() -> str:
    try:
        from importlib.metadata import version

        return version("plumcode")
    except Exception:  # noqa: BLE001 - running from a source tree without an install
        from plumcode import __version__

        return __version__


def _describe_checkpoint(ckpt: Path) -> dict:
    """What the checkpoint says about itself: its metadata, its train result, its base."""
    meta_p = ckpt / CKPT_META
    if meta_p.is_file():
        meta = json.loads(meta_p.read_text())
        kind = "full" if (ckpt / "model" / "config.json").is_file() else "lora"
        if kind == "lora" and not (ckpt / "adapter" / "adapter_config.json").is_file():
            raise DataError(f"{ckpt} has {CKPT_META} but neither model/ nor adapter/ (an unfinished run?)")
        res_p = ckpt / "train_result.json"
        return {"meta": meta, "kind": kind, "result": json.loads(res_p.read_text()) if res_p.is_file() else {},
                "base": meta.get("base_spec")}
    if (ckpt / "adapter_config.json").is_file():
        cfg = json.loads((ckpt / "adapter_config.json").read_text())
        return {"meta": {}, "kind": "lora", "result": {}, "base": cfg.get("base_model_name_or_path")}
    if (ckpt / "config.json").is_file():
        return {"meta": {}, "kind": "full", "result": {}, "base": None}
    raise DataError(f"{ckpt}: not a plumcode checkpoint ({CKPT_META}), a PEFT adapter folder or a model folder")


def _hub_base(base: str | None) -> str | None:
    """The base as a hub id for the card's metadata (a local path is not one)."""
    if not base:
        return None
    try:
        from plumcode.models.registry import get_entry, is_registered

        if is_registered(base):
            return get_entry(base).hf_repo
    except ImportError:
        pass
    b = base.removeprefix("hf:").split("?", 1)[0]
    return b if _HUB_ID.match(b) and not Path(b).expanduser().exists() else None


def _eval_rows(path: Path) -> list[dict]:
    """pass@k figures of a results file: a loop round's eval.json or ``plumcode evaluate --out``."""
    d = json.loads(path.read_text())
    results = list(d["benchmarks"].values()) if isinstance(d.get("benchmarks"), dict) else [d]
    rows = []
    for r in results:
        for fig, vals in (r.get("pass_at_k") or {}).items():
            if vals:
                rows.append({"benchmark": fig, "n_problems": r.get("n_problems"), "n_samples": r.get("n_samples"),
                             "pass_at_k": {k: float(v) for k, v in vals.items()}, "source": str(path)})
    return rows


def find_evals(ckpt: Path) -> tuple[list[dict], list[dict]]:
    """The run's measurements next to a loop checkpoint: this round's eval.json and the baseline's."""
    round_dir = ckpt.parent
    mine = round_dir / "eval.json"
    base = round_dir.parent / "baseline" / "eval.json"
    return (_eval_rows(mine) if mine.is_file() else []), (_eval_rows(base) if base.is_file() else [])


def _results_table(rows: list[dict], baseline: list[dict]) -> str:
    ks = sorted({k for r in rows for k in r["pass_at_k"]}, key=lambda s: int(s.split("@")[1]))
    base = {r["benchmark"]: r["pass_at_k"] for r in baseline}
    head = ["benchmark", "problems", "samples"] + ks + ([f"{k} (initial policy)" for k in ks] if base else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["benchmark"], str(r.get("n_problems") or "?"), str(r.get("n_samples") or "?")]
        cells += [f"{100 * r['pass_at_k'][k]:.1f}" if k in r["pass_at_k"] else "-" for k in ks]
        if base:
            b = base.get(r["benchmark"], {})
            cells += [f"{100 * b[k]:.1f}" if k in b else "-" for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(info: dict, *, name: str, dtype: str, rows: list[dict], baseline: list[dict]) -> Any:
    """A Hugging Face model card (YAML metadata + markdown) built with huggingface_hub."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    meta, cfg, res = info["meta"], info["meta"].get("config") or {}, info["result"]
    objective = meta.get("objective") or cfg.get("objective")
    hub_base = _hub_base(info["base"])
    evals = [EvalResult(task_type="text-generation", dataset_type=r["benchmark"], dataset_name=r["benchmark"],
                        metric_type=k, metric_value=round(100 * v, 2), metric_name=f"{k} (%)")
             for r in rows for k, v in r["pass_at_k"].items()]
    tags = ["plumcode", "code", "preference-learning"] + ([objective] if objective else [])
    tags += ["lora-merged"] if info["kind"] == "lora" else []
    data = ModelCardData(base_model=hub_base, library_name="transformers", pipeline_tag="text-generation",
                         tags=tags, model_name=name, eval_results=evals or None)
    version = _plumcode_version()
    method = (f"LoRA (r={cfg.get('lora_r')}, alpha={cfg.get('lora_alpha')}) merged into full weights"
              if info["kind"] == "lora" else "full fine-tuning")
    recipe_keys = ("objective", "beta", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum",
                   "max_length", "scheduler", "warmup_ratio", "lora_r", "lora_alpha", "lora_dropout", "lora_targets",
                   "sft_weight", "desirable_weight", "undesirable_weight", "reference", "seed")
    recipe = "\n".join(f"| `{k}` | `{json.dumps(cfg[k]) if not isinstance(cfg[k], str) else cfg[k]}` |"
                       for k in recipe_keys if k in cfg)
    data_lines = []
    if meta.get("preferences"):
        data_lines.append(f"- preference records: `{Path(meta['preferences']).name}` "
                          f"(sha256 `{str(meta.get('data_sha256', ''))[:16]}...`)")
    if res.get("examples") is not None:
        data_lines.append(f"- {res['examples']} training examples, {res.get('steps')} optimizer steps, final loss "
                          f"{res.get('final_loss', float('nan')):.4g}")
    data_lines.append("- labels: candidate programs sampled from the policy, executed in plumcode's sandbox "
                      "against synthetic unit tests (PLUM, arXiv 2406.06887); passing = desirable/chosen")
    results = (_results_table(rows, baseline) + "\n\nMeasured by `plumcode evaluate` (unbiased pass@k estimator; "
               "HumanEval+/MBPP+ base and plus figures as EvalPlus reports them).") if rows else \
        "No evaluation results were found next to this checkpoint (pass `--eval results.json`)."
    body = f"""
# {name}

{info['base'] or 'A code model'} trained with [plumcode](https://arxiv.org/abs/2406.06887) {version}:
on-policy preference learning ({objective or '?'}) driven by synthetic test cases; {method}.
Exported as a plain transformers folder (safetensors, {dtype}): no PEFT or plumcode is needed to use it.

## Base model

`{info['base'] or 'unknown'}`{f' (hub: `{hub_base}`)' if hub_base else ''}

## Training data

{chr(10).join(data_lines)}

## Recipe

| field | value |
|---|---|
{recipe}

## Results

{results}

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("{name}")
model = AutoModelForCausalLM.from_pretrained("{name}")
```

or `vllm serve {name}`, or `plumcode sample --model hf:{name} ...`.

Exported with plumcode {version} (`plumcode export`).
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _target_dtype(name: str, base: str | None) -> Any:
    import torch

    if name != "auto":
        dt = getattr(torch, name, None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {name!r} (float32, bfloat16, float16 or auto)")
        return dt
    cfg_p = Path(str(base or "")).expanduser() / "config.json"
    if cfg_p.is_file():  # the base's own precision
        raw = json.loads(cfg_p.read_text())
        d = raw.get("dtype") or raw.get("torch_dtype")
        if d in ("float32", "bfloat16", "float16"):
            return getattr(torch, d)
    return torch.float32


def export_model(checkpoint: str | Path, out_dir: str | Path, *, dtype: str = "auto", name: str | None = None,
                 evals: list[str | Path] = (), push_to_hub: str | None = None, private: bool = False,
                 token: str | None = None) -> ExportResult:
    """Merge ``checkpoint`` into full weights in ``out_dir`` (+ model card); optionally upload it."""
    import torch

    ckpt = Path(checkpoint).expanduser()
    out = Path(out_dir).expanduser()
    if not ckpt.is_dir():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    if out.resolve() == ckpt.resolve() or (out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file()):
        raise ValueError(f"--out {out} must be a new or empty folder (or a previous export to overwrite)")
    info = _describe_checkpoint(ckpt)
    target = _target_dtype(dtype, info["base"])
    # merge in float32 (a bf16 merge rounds the LoRA update away), then cast once
    model, tok, _ = load_policy(str(ckpt), torch.float32)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    left = [n for n, _ in model.named_parameters() if "lora_" in n]
    if left:
        raise RuntimeError(f"merge left LoRA parameters in the model (e.g. {left[0]})")
    model = model.to(target)
    model.config.dtype = target  # what AutoModel / vLLM read as the checkpoint's precision
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    gen = getattr(model, "generation_config", None)
    if gen is not None and tok.eos_token_id is not None and gen.eos_token_id is None:
        gen.eos_token_id = tok.eos_token_id
        gen.save_pretrained(str(out))
    rows: list[dict] = []
    baseline: list[dict] = []
    if evals:
        for e in evals:
            rows += _eval_rows(Path(e))
    else:
        rows, baseline = find_evals(ckpt)
    card_name = name or out.name
    model_card(info, name=card_name, dtype=str(target).removeprefix("torch."), rows=rows,
               baseline=baseline).save(str(out / "README.md"))
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    weights = [f for f in files if f.endswith(".safetensors")]
    if not weights:
        raise RuntimeError(f"no safetensors weights were written to {out}")
    atomic_write_json(out / "plumcode_export.json", {
        "checkpoint": str(ckpt.resolve()), "base": info["base"], "kind": info["kind"],
        "dtype": str(target).removeprefix("torch."), "plumcode_version": _plumcode_version(),
        "weights_sha256": {f: sha256_file(out / f) for f in weights}, "evals": rows, "baseline_evals": baseline})
    for p in out.iterdir():  # a folder to hand on: readable by others (temp-file writes are 0600)
        if p.is_file():
            p.chmod(0o644)
    res = ExportResult(out_dir=str(out), base_model=info["base"], dtype=str(target).removeprefix("torch."),
                       files=sorted(p.name for p in out.iterdir() if p.is_file()), evals=rows)
    if push_to_hub:
        res.pushed_to = push(out, push_to_hub, private=private, token=token)
    return res


def push(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload ``folder`` to a hub model repo; a clear RuntimeError when the hub cannot be reached."""
    try:
        from huggingface_hub import HfApi
    except ImportError as e:
        raise RuntimeError("uploading needs huggingface_hub (pip install 'plumcode[train]')") from e
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                 commit_message="plumcode export")
    except Exception as e:  # noqa: BLE001 - offline, DNS, auth, HF_HUB_OFFLINE: all mean "not uploaded"
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise RuntimeError(f"could not upload to the Hugging Face hub repo {repo_id!r} ({type(e).__name__}: "
                           f"{first[:300]}). The export in {folder} is complete; upload it later with "
                           f"`huggingface-cli upload {repo_id} {folder}` or rerun with --push-to-hub when "
                           "online (and logged in: `huggingface-cli login` or HF_TOKEN)") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}")


# ---------------------------------------------------------------------------------------------- CLI
def register(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help + ". The folder loads with "
                       "AutoModelForCausalLM.from_pretrained and `vllm serve`; README.md is its model card.")
    p.add_argument("checkpoint", help="plumcode train output (LoRA adapter or full weights), or a PEFT adapter dir")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights precision (auto: the base model's)")
    p.add_argument("--name", help="model name in the card (default: the --out folder name)")
    p.add_argument("--eval", dest="evals", action="append", default=[],
                   help="results JSON for the card's pass@k table (plumcode evaluate --out, or a round's "
                        "eval.json); default: the run's eval.json and baseline/eval.json beside the checkpoint")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the folder to this hub model repo")
    p.add_argument("--private", action="store_true", help="create the hub repo private")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    res = export_model(args.checkpoint, args.out, dtype=args.dtype, name=args.name, evals=args.evals)
    print(json.dumps(res.to_json(), indent=2))
    if args.push_to_hub:
        url = push(Path(res.out_dir), args.push_to_hub, private=args.private)
        print(f"uploaded to {url}", file=sys.stderr)
    return 0


__all__ = ["ExportResult", "export_model", "find_evals", "model_card", "push"]
