"""The training loop: KTO / DPO / SFT with precomputed reference log-probs, LoRA or full weights.

Why not TRL's trainers directly: per step they run the reference model again (or keep a second
copy resident) and score prompt positions through the LM head. Here the reference log-probs are
computed once per round, before the first update (a fresh LoRA adapter is the identity, so the
policy *is* the reference then; no second model, no adapter toggling), cached beside the
preference file, and each step runs one policy forward/backward on completion positions only,
over length-sorted batches. The losses are TRL's formulas (``losses.py``), checked against TRL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plumcode.io import JsonlAppender, atomic_write_json, read_jsonl, sha256_file, sha256_text
from plumcode.training import health, objectives
from plumcode.training.config import TrainConfig, TrainResult
from plumcode.training.data import (
    Example,
    build_examples,
    load_records,
    make_batches,
    read_summary_weights,
)
from plumcode.training.model import CKPT_META, base_fingerprint, check_model_tokenizer, load_policy

log = logging.getLogger(__name__)


def _resolve_dtype(name: str, device: Any) -> Any:
    import torch

    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def latest_checkpoint(out: Path) -> Path | None:
    cks = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.pt").is_file() and (p / CKPT_META).is_file()]
    return max(cks, key=lambda p: int(p.name.split("-")[-1])) if cks else None


def _class_weights(cfg: TrainConfig, examples: list[Example], pref_path: Path) -> tuple[float, float]:
    if cfg.desirable_weight is not None and cfg.undesirable_weight is not None:
        return cfg.desirable_weight, cfg.undesirable_weight
    dw, uw = read_summary_weights(pref_path)
    if dw is None or uw is None:
        n_d = sum(bool(e.label) for e in examples)
        n_u = len(examples) - n_d
        dw, uw = (n_u / n_d, 1.0) if 0 < n_d < n_u else ((1.0, n_d / n_u) if 0 < n_u < n_d else (1.0, 1.0))
    return (cfg.desirable_weight if cfg.desirable_weight is not None else dw,
            cfg.undesirable_weight if cfg.undesirable_weight is not None else uw)


class _Logger:
    def __init__(self, out: Path, cfg: TrainConfig, echo: Callable[[str], None] | None):
        self.appender = JsonlAppender(out / "train_log.jsonl", fsync_every=16)
        self.echo = echo
        self.tb = self.wandb = None
        if "tensorboard" in cfg.report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                log.warning("tensorboard requested but not installed; logging to JSONL only")
        if "wandb" in cfg.report_to:
            try:
                import wandb

                self.wandb = wandb.init(project="plumcode", config=cfg.to_json(), dir=str(out))
            except ImportError:
                log.warning("wandb requested but not installed; logging to JSONL only")

    def __call__(self, rec: dict) -> None:
        self.appender.write(rec)
        if self.echo:
            keys = ("loss", "rewards/margins", "rewards/accuracies", "kl", "lr", "grad_norm", "sec")
            parts = [f"{k.split('/')[-1]} {rec[k]:.4g}" for k in keys if k in rec]
            self.echo(f"step {rec['step']}/{rec['total_steps']}: " + ", ".join(parts))
        if self.tb:
            for k, v in rec.items():
                if isinstance(v, int | float) and k not in ("step", "total_steps"):
                    self.tb.add_scalar(k, v, rec["step"])
        if self.wandb:
            self.wandb.log(rec, step=rec["step"])

    def close(self) -> None:
        self.appender.close()
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _reference_logps(policy: Any, examples: list[Example], batches: list[list[Example]], cfg: TrainConfig,
                     pad_id: int, device: Any, progress: bool = False) -> dict[str, list]:
    """Reference log-probs of every scored sequence (and KTO KL sequence), no grad, big batches.
    On a CPU this pass costs about as much as the training steps, hence the progress bar."""
    import torch
    from tqdm import tqdm

    from plumcode.training.logprobs import collate

    jobs: list[tuple[str, int, int, Any]] = []  # (kind, example uid, seq idx, Seq)
    for e in examples:
        for j, s in enumerate(e.seqs):
            jobs.append(("seq", e.index, j, s))
    if objectives.get(cfg.objective).kl_pairs and cfg.kto_kl:
        for b in batches:
            for e, s in zip(b, objectives.kl_seqs(b, cfg.max_length), strict=True):
                jobs.append(("kl", e.index, 0, s))
    jobs.sort(key=lambda j: len(j[3].ids))
    out: dict[str, list] = {"seq": [[0.0] * len(e.seqs) for e in examples], "kl": [0.0] * len(examples)}
    was_training = policy.training
    policy.eval()
    i = 0
    bar = tqdm(total=len(jobs), desc="reference log-probs", unit="seq", disable=not progress)
    with torch.no_grad(), bar:
        while i < len(jobs):
            j = i + 1
            while j < len(jobs) and (j + 1 - i) * len(jobs[j][3].ids) <= cfg.ref_batch_tokens:
                j += 1
            chunk = jobs[i:j]
            batch = {k: v.to(device) for k, v in collate([c[3] for c in chunk], pad_id).items()}
            lp = policy(**batch).float().cpu().tolist()
            for (kind, uid, sj, _), v in zip(chunk, lp, strict=True):
                if kind == "seq":
                    out["seq"][uid][sj] = v
                else:
                    out["kl"][uid] = v
            bar.update(j - i)
            i = j
    policy.train(was_training)
    return out


def _trainable(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def _save_weights(model: Any, tok: Any, dest: Path, cfg: TrainConfig, base_path: str | None) -> dict[str, str]:
    dest.mkdir(parents=True, exist_ok=True)
    if cfg.lora:
        if base_path:
            for pc in model.peft_config.values():
                pc.base_model_name_or_path = base_path
        model.save_pretrained(str(dest / "adapter"))
        tok.save_pretrained(str(dest / "adapter"))
        return {"adapter": "adapter"}
    model.save_pretrained(str(dest / "model"))
    tok.save_pretrained(str(dest / "model"))
    return {"model": "model"}


def release_memory() -> None:
    """Give the memory of a finished training back before the caller loads a sampling model.

    The loop trains and then samples in one process; whatever the training left (reference cycles
    among model, optimizer and accelerate's bookkeeping; freed heap that glibc keeps in its arenas)
    otherwise adds to the next model's footprint. (A DPO arm's evaluation was OOM-killed at 24 GB
    right after its training; the main cause was the LM-head slice fixed in generation/hf.py.)"""
    import ctypes
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a training dependency
        pass
    try:  # glibc only: return free heap pages of every arena to the OS
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def train(preferences_path: str | Path, model_spec: Any, config: TrainConfig | None = None,
          out_dir: str | Path = "checkpoint", *, adapter: str | Path | None = None,
          echo: Callable[[str], None] | None = print) -> TrainResult:
    """Train the policy on a preference file; returns where the checkpoint is and the loss history.

    Everything that can be wrong with the inputs (empty or one-sided data, DPO on unpaired data,
    a tokenizer from another model, a resume state or adapter trained on another base) is raised
    before reference log-probs or any update is computed. The training's memory is released when it
    returns or fails (:func:`release_memory`).
    """
    try:
        return _train(preferences_path, model_spec, config, out_dir, adapter=adapter, echo=echo)
    finally:
        release_memory()


def _train(preferences_path: str | Path, model_spec: Any, config: TrainConfig | None, out_dir: str | Path, *,
           adapter: str | Path | None, echo: Callable[[str], None] | None) -> TrainResult:
    import torch
    from accelerate import Accelerator

    cfg = config or TrainConfig()
    obj = objectives.get(cfg.objective)
    if cfg.sft_weight < 0:
        raise ValueError(f"sft_weight must be >= 0, not {cfg.sft_weight}")
    if cfg.reference not in ("start", "base"):
        raise ValueError(f"reference must be 'start' or 'base', not {cfg.reference!r}")
    if cfg.reference == "base" and adapter is not None and not cfg.lora:
        raise ValueError("reference='base' with a continued adapter needs LoRA training")
    t0 = time.time()
    pref = Path(preferences_path)
    out = Path(out_dir)
    records = load_records(pref)
    obj.check(records, pref)
    data_sha = sha256_file(pref)

    # accelerate owns gradient accumulation: under DeepSpeed the engine scales the loss and steps
    # only at accumulation boundaries it knows of (a manual loop made it step every micro-batch)
    # cpu=True also when "auto" finds no accelerator: accelerate forms the gloo group of `accelerate
    # launch` CPU ranks only then; without it each rank trained alone (world size 1, two full runs)
    from plumcode.training.model import accelerator_available

    accel = Accelerator(cpu=cfg.device == "cpu" or (cfg.device == "auto" and not accelerator_available()),
                        gradient_accumulation_steps=cfg.grad_accum)
    device = accel.device if cfg.device in ("auto", "cpu") else torch.device(cfg.device)
    dtype = _resolve_dtype(cfg.dtype, device)
    model, tok, info = load_policy(model_spec, dtype)
    check_model_tokenizer(model, tok)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    fp = base_fingerprint(model, tok)

    done = out / CKPT_META
    if cfg.resume and done.is_file() and (out / "train_result.json").is_file():
        meta = json.loads(done.read_text())
        if meta.get("base_fingerprint") != fp:
            raise ValueError(f"{out} holds a checkpoint trained from a different base model (fingerprint "
                             f"{meta.get('base_fingerprint')} != {fp}); use another --out")
        if (meta.get("data_sha256") == data_sha and meta.get("objective") == cfg.objective
                and meta.get("step") == meta.get("total_steps")):
            if echo:
                echo(f"{out} already holds the finished checkpoint for this data; nothing to do")
            d = json.loads((out / "train_result.json").read_text())
            return TrainResult(**{k: v for k, v in d.items() if k in TrainResult.__dataclass_fields__})
    resume_from = latest_checkpoint(out) if cfg.resume and out.is_dir() else None
    if resume_from is not None:
        meta = json.loads((resume_from / CKPT_META).read_text())
        if meta.get("base_fingerprint") != fp:
            raise ValueError(f"{resume_from} was trained from a different base model (fingerprint "
                             f"{meta.get('base_fingerprint')} != {fp} for {info['spec']!r}); use another --out "
                             "or the matching --model")
        if meta.get("data_sha256") != data_sha or meta.get("objective") != cfg.objective:
            raise ValueError(f"{resume_from} belongs to a run on other data or another objective; use another "
                             "--out, or --no-resume to start over in it")
    adapter_dir = Path(adapter) if adapter else None
    if adapter_dir is not None:
        meta_p = adapter_dir.parent / CKPT_META
        if meta_p.is_file():
            afp = json.loads(meta_p.read_text()).get("base_fingerprint")
            if afp and afp != fp:
                raise ValueError(f"adapter {adapter_dir} was trained on a different base model "
                                 f"(fingerprint {afp} != {fp})")
        if not cfg.lora:
            raise ValueError("--adapter continues a LoRA adapter; it needs LoRA training")

    examples, dropped = build_examples(records, tok, cfg.objective, cfg.max_length, pref)
    for k, e in enumerate(examples):
        e.index = k
    weights = _class_weights(cfg, examples, pref) if obj.data == "unpaired" else (1.0, 1.0)
    if echo:
        n_lab = sum(bool(e.label) for e in examples)
        echo(f"{cfg.objective}: {len(examples)} examples ({dropped} dropped: prompt >= max_length)"
             + (f", desirable {n_lab} / undesirable {len(examples) - n_lab}, weights {weights[0]:.3g}/{weights[1]:.3g}"
                if obj.data == "unpaired" else ""))

    # -- model setup
    torch.manual_seed(cfg.seed)
    for m in model.modules():  # TRL's disable_dropout default: deterministic log-ratios
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    if cfg.lora:
        from peft import LoraConfig, PeftModel, get_peft_model

        if adapter_dir is not None:
            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        else:
            present = {n.split(".")[-1] for n, _ in model.named_modules()}
            targets = [t for t in cfg.lora_targets if t in present] or "all-linear"
            model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                     lora_dropout=cfg.lora_dropout, target_modules=targets,
                                                     task_type="CAUSAL_LM"))
    model.to(device)
    if cfg.memory_saving:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora:
            model.enable_input_require_grads()
    model.train()
    from plumcode.training.logprobs import CompletionLogps

    chunk = cfg.logits_chunk or (512 if cfg.memory_saving else 0)
    policy = CompletionLogps(model, chunk=chunk, checkpoint_chunks=cfg.memory_saving)
    pad_id = tok.pad_token_id

    batches = make_batches(examples, cfg.batch_size, cfg.seed, cfg.length_sorted)
    world = accel.num_processes
    per_step = cfg.grad_accum * world
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(batches) / per_step))

    # -- reference log-probs: once per round, cached next to the data
    anchored = cfg.reference == "base" and adapter_dir is not None
    ref_key = sha256_text(data_sha, fp, cfg.objective, str(cfg.max_length), str(cfg.kto_kl),
                          str(cfg.batch_size), str(cfg.seed), str(adapter_dir or ""),
                          *(["base"] if anchored else []))[:16]
    ref_path = pref.with_name(pref.name.removesuffix(".jsonl") + f".ref-{ref_key}.json")
    ref = None
    if obj.reference:
        for cand in (ref_path, out / ref_path.name):
            if cand.is_file():
                with contextlib.suppress(ValueError, KeyError):
                    d = json.loads(cand.read_text())
                    if d["key"] == ref_key and len(d["seq"]) == len(examples):
                        ref = d
                        break
        if ref is None:
            tr = time.time()
            # anchored: the continued adapter switched off, i.e. the base model the rounds started from
            with model.disable_adapter() if anchored else contextlib.nullcontext():
                ref = _reference_logps(policy, examples, batches, cfg, pad_id, device,
                                       progress=echo is not None and accel.is_main_process) | {"key": ref_key}
            if accel.is_main_process:
                try:
                    atomic_write_json(ref_path, ref, indent=None)
                except OSError:
                    ref_path = out / ref_path.name
                    atomic_write_json(ref_path, ref, indent=None)
            if echo:
                echo(f"reference log-probs: {len(examples)} examples in {time.time() - tr:.1f}s -> {ref_path}")
    else:
        ref = {"seq": [], "kl": []}

    # -- optimizer, schedule, resume
    params = _trainable(model)
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = int(cfg.warmup_ratio * total_steps)

    def lr_lambda(s: int) -> float:
        if s < warm:
            return (s + 1) / (warm + 1)
        if cfg.scheduler == "constant":
            return 1.0
        frac = (s - warm) / max(1, total_steps - warm)
        return max(0.0, 1 - frac) if cfg.scheduler == "linear" else 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    step = 0
    if resume_from is not None:
        state = torch.load(resume_from / "trainer_state.pt", map_location="cpu", weights_only=False)
        if cfg.lora:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(str(resume_from / "adapter" / "adapter_model.safetensors")))
        else:
            from transformers import AutoModelForCausalLM

            loaded = AutoModelForCausalLM.from_pretrained(str(resume_from / "model"), dtype=dtype)
            model.load_state_dict(loaded.state_dict())
            del loaded
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        random.setstate(state["py_rng"])
        torch.set_rng_state(state["torch_rng"])
        if echo:
            echo(f"resumed from {resume_from} at step {step}/{total_steps}")
    resumed_from_step = step
    # health probe: greedy answer lengths before the first update (kept on disk: a resumed run's model
    # is no longer the one it started from)
    probe_path = out / "health_probe.json"
    probes = health.probe_prompts(records, cfg.probe_prompts) if cfg.probe_prompts else []
    probe_before = None
    if probes and accel.is_main_process:
        if probe_path.is_file() and json.loads(probe_path.read_text()).get("key") == data_sha:
            probe_before = json.loads(probe_path.read_text())["before"]
        elif step == 0:
            probe_before = health.probe_tokens(model, tok, probes, cfg.probe_max_tokens, device)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(probe_path, {"key": data_sha, "before": probe_before})
    policy, opt = accel.prepare(policy, opt)
    step_ctx = objectives.StepContext(policy, ref, cfg, weights, pad_id, device)

    out.mkdir(parents=True, exist_ok=True)
    logger = _Logger(out, cfg, echo if accel.is_main_process else None)
    history: list[dict] = []
    if step and (out / "train_log.jsonl").is_file():  # resumed: the steps before count for the health check
        prior = {r["step"]: r for _, r in read_jsonl(out / "train_log.jsonl") if r.get("step", step + 1) <= step}
        history = [prior[k] for k in sorted(prior)]
    meta_base = {"base_spec": info.get("base") or info["spec"], "spec": info["spec"], "base_fingerprint": fp,
                 "objective": cfg.objective, "data_sha256": data_sha, "preferences": str(pref.resolve()),
                 "config": cfg.to_json(), "ref_logps": str(ref_path) if obj.reference else None}
    base_path = meta_base["spec"] if Path(str(meta_base["spec"])).is_dir() else None

    def save(dest: Path, final: bool) -> dict[str, str]:
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped = accel.unwrap_model(policy).model
        paths = _save_weights(unwrapped, tok, tmp, cfg, base_path)
        if not final:
            torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                        "py_rng": random.getstate(), "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
        atomic_write_json(tmp / CKPT_META, meta_base | {"step": step, "total_steps": total_steps} | paths)
        if final:
            for name in paths.values():
                shutil.rmtree(dest / name, ignore_errors=True)
                (tmp / name).rename(dest / name)
            atomic_write_json(dest / CKPT_META, meta_base | {"step": step, "total_steps": total_steps} | paths)
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
            cks = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if
                         p.name.split("-")[-1].isdigit() else -1)
            for old in cks[:-max(1, cfg.keep_checkpoints)]:
                shutil.rmtree(old, ignore_errors=True)
        return paths

    # -- loop
    n_micro = len(batches)
    last_loss = float("nan")
    try:
        while step < total_steps:
            ts, tc = time.time(), time.process_time()
            metrics: dict[str, float] = {}
            counts: dict[str, int] = {}
            for j in range(cfg.grad_accum):
                g = (step * per_step + j * world + accel.process_index)
                epoch, k = divmod(g, n_micro)
                order = list(range(n_micro))
                random.Random(cfg.seed * 1_000_003 + epoch).shuffle(order)
                batch = batches[order[k]]
                with accel.accumulate(policy):  # no_sync on all but the last micro-batch
                    loss, m = obj.step(step_ctx, batch)
                    accel.backward(loss)  # divided by grad_accum by accelerate (DeepSpeed: by its engine)
                for key, v in m.items():
                    if not math.isnan(v):
                        metrics[key] = metrics.get(key, 0.0) + v
                        counts[key] = counts.get(key, 0) + 1
            if not accel.sync_gradients:  # accelerate's micro-batch counter and ours must agree
                raise RuntimeError("gradient accumulation out of step with accelerate's counter")
            gn = accel.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm else None
            lr_used = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            rec = {k: metrics[k] / counts[k] for k in metrics}
            last_loss = rec.get("loss", float("nan"))
            rec |= {"step": step, "total_steps": total_steps, "epoch": round(step * per_step / n_micro, 4),
                    "lr": lr_used, "sec": time.time() - ts, "cpu_sec": time.process_time() - tc}
            if gn is not None:
                rec["grad_norm"] = float(gn)
            history.append(rec)
            if accel.is_main_process and (step % cfg.log_every == 0 or step == total_steps):
                logger(rec)
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps and accel.is_main_process:
                save(out / f"checkpoint-{step}", final=False)
        paths: dict[str, str] = {}
        report: dict = {}
        if accel.is_main_process:
            probe_after = (health.probe_tokens(accel.unwrap_model(policy).model, tok, probes, cfg.probe_max_tokens,
                                               device) if probe_before is not None else None)
            # the log-ratio to a reference exists only for objectives that have one
            h = health.check(history if obj.reference else [], cfg.beta, logp_drop=cfg.health_logp_drop,
                             probe_before=probe_before, probe_after=probe_after, growth=cfg.probe_growth)
            report = h.to_json()
            for w in h.warnings:
                log.warning("training health: %s", w)
                if echo:
                    echo(f"WARNING training health: {w}")
            paths = save(out, final=True)
            for old in out.glob("checkpoint-*"):  # finished: the final checkpoint supersedes resume points
                shutil.rmtree(old, ignore_errors=True)
            if cfg.lora and cfg.save_merged:
                merged = accel.unwrap_model(policy).model.merge_and_unload()
                merged.save_pretrained(str(out / "model"))
                tok.save_pretrained(str(out / "model"))
                paths["model"] = "model"
                atomic_write_json(out / CKPT_META, meta_base | {"step": step, "total_steps": total_steps} | paths)
    finally:
        logger.close()
        accel.free_memory()  # drops accelerate's references to the prepared model and optimizer
    result = TrainResult(
        out_dir=str(out), objective=cfg.objective, steps=step, examples=len(examples), final_loss=last_loss,
        adapter_dir=str(out / "adapter") if "adapter" in paths else None,
        model_dir=str(out / "model") if "model" in paths else None, log_path=str(out / "train_log.jsonl"),
        history=history, seconds=time.time() - t0, resumed_from_step=resumed_from_step, health=report)
    if accel.is_main_process:
        atomic_write_json(out / "train_result.json", result.to_json())
    return result
