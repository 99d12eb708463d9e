"""Time per optimizer step and peak memory: plumcode's DPO trainer vs TRL's own DPOTrainer.

Same random Qwen2 model (built here; Qwen2.5 tokenizer when cached, so the LM head has the real
151k vocabulary), same DPO pairs (MBPP instructions, reference solutions as chosen, mutated ones
as rejected), same batch size, full fine-tuning and AdamW in both. Each trainer runs in its own
subprocess so peak RSS (and CUDA peak allocation on a GPU) is its own.

    .venv/bin/python benchmarks/train_step.py                  # ~50M-param model, 4 pairs/step
    .venv/bin/python benchmarks/train_step.py --hidden 512 --layers 8   # ~100M
    .venv/bin/python benchmarks/train_step.py --model ~/.cache/.../qwen2.5-coder-0.5b-instruct-q4_k_m-hf

Reported: median seconds per optimizer step after ``--warmup`` steps; for plumcode also the
one-off reference log-prob pass (once per round), amortised over one epoch of the data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QWEN_TOK = Path.home() / ".cache/plumcode/models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m-hf"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_model(out: Path, hidden: int, layers: int, tokenizer: Path | None, intermediate: int | None = None,
                heads: int | None = None, kv_heads: int | None = None) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    if (out / "config.json").is_file():
        return out
    if tokenizer is None:
        from plumcode.testing.tiny import build_tiny_model

        build_tiny_model(out / "_tok")
        tokenizer = out / "_tok"
    tok = AutoTokenizer.from_pretrained(tokenizer)
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=intermediate or hidden * 4,
                      num_hidden_layers=layers, num_attention_heads=heads or max(2, hidden // 64),
                      num_key_value_heads=kv_heads or max(1, hidden // 256), max_position_embeddings=4096,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id or tok.eos_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    return out


def _mutate(code: str, rng: random.Random) -> str:
    for a, b in (("+", "-"), ("<", "<="), ("==", "!="), ("return", "return not"), ("1", "2")):
        if a in code:
            return code.replace(a, b, 1)
    lines = code.splitlines()
    return "\n".join(lines[: max(1, len(lines) // 2)])


def build_data(out: Path, n_pairs: int, seed: int = 0) -> Path:
    data = Path(os.environ.get("PLUMCODE_DATA_DIR", ROOT.parent / "shared" / "data")) / "mbpp.jsonl"
    rng = random.Random(seed)
    recs = []
    with open(data) as f:
        for line in f:
            r = json.loads(line)
            code = r["code"].replace("\r\n", "\n").replace("\t", "    ")
            prompt = [{"role": "user", "content": f"{r['text']}\nYour code should pass this test:\n"
                                                  f"{r['test_list'][0]}"}]
            recs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": f"```python\n{code}\n```"}],
                         "rejected": [{"role": "assistant",
                                       "content": f"```python\n{_mutate(code, rng)}\n```"}]})
            if len(recs) >= n_pairs:
                break
    with open(out, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return out


# -- workers (one subprocess each) ------------------------------------------------------------------

def worker_trl(a: argparse.Namespace) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    rss_loaded = _rss_mb()
    ds = load_dataset("json", data_files=a.data, split="train")
    times: list[float] = []
    cpu_times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *args, **kw):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_step_end(self, *args, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            cpu_times.append(time.process_time() - self.c)

    # default: TRL's own settings; the others turn off its activation checkpointing
    kw = {"default": {}, "bf16": {"bf16": True, "gradient_checkpointing": False},
          "fp32": {"bf16": False, "gradient_checkpointing": False},
          "precompute": {"bf16": False, "gradient_checkpointing": False, "precompute_ref_log_probs": True}}[a.trl_variant]
    args = DPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=a.batch_size, max_steps=a.steps,
                     learning_rate=a.lr, report_to=[], save_strategy="no", logging_steps=1000,
                     max_length=a.max_length, seed=0, use_cpu=not torch.cuda.is_available(), **kw)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Timer()])
    setup = time.perf_counter() - t0
    trainer.train()
    return {"step_times": times, "cpu_step_times": cpu_times, "setup_s": setup, "peak_rss_mb": _peak_rss_mb(), "rss_after_load_mb": rss_loaded,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "config": {"bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                       "precompute_ref_log_probs": args.precompute_ref_log_probs}}


def worker_ours(a: argparse.Namespace) -> dict:
    import torch

    from plumcode.training import TrainConfig
    from plumcode.training.trainer import train

    torch.set_num_threads(a.threads)
    mem = a.which == "ours-mem"
    cfg = TrainConfig(objective="dpo", lora=False, batch_size=a.batch_size, max_steps=a.steps, learning_rate=a.lr,
                      warmup_ratio=0.0, max_length=a.max_length, memory_saving=mem, seed=0,
                      length_sorted=not a.unsorted, dtype=a.ours_dtype)
    msgs: list[str] = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    out = tempfile.mkdtemp()
    data = Path(out) / "prefs.jsonl"  # private copy: the reference cache lands beside it, never reused
    data.write_text(Path(a.data).read_text())
    res = train(data, a.model, cfg, Path(out) / "ck", echo=msgs.append)
    ref = [float(m.split(" in ")[1].split("s ")[0]) for m in msgs if m.startswith("reference log-probs")]
    return {"step_times": [h["sec"] for h in res.history], "cpu_step_times": [h["cpu_sec"] for h in res.history],
            "ref_s": ref[0] if ref else 0.0,
            "examples": res.examples, "peak_rss_mb": _peak_rss_mb(),
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "config": {"memory_saving": mem, "length_sorted": not a.unsorted, "dtype": a.ours_dtype}}


def run_worker(which: str, a: argparse.Namespace, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", which, "--model", str(a.model), "--data", str(a.data),
           "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--lr", str(a.lr),
           "--max-length", str(a.max_length), "--threads", str(a.threads), "--ours-dtype", a.ours_dtype] + extra
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{r.stderr[-3000:]}")
    m = re.search(r"^RESULT (.*)$", r.stdout, re.M)
    d = json.loads(m.group(1))
    d["wall_s"] = time.perf_counter() - t
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--model", help="existing HF model dir (default: build a random Qwen2)")
    ap.add_argument("--data")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--intermediate", type=int, help="MLP width (default 4 x hidden)")
    ap.add_argument("--heads", type=int, help="attention heads (default hidden // 64)")
    ap.add_argument("--kv-heads", type=int, help="key/value heads (default hidden // 256)")
    ap.add_argument("--shape", choices=["qwen2.5-0.5b"], help="Qwen2.5-0.5B's exact shape (random weights)")
    ap.add_argument("--tokenizer", help="tokenizer dir for the random model (default: the cached Qwen2.5 one)")
    ap.add_argument("--pairs", type=int, default=48, help="DPO pairs in the data set")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of the median")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--trl-variant", default="default", choices=["default", "fp32", "bf16", "precompute"])
    ap.add_argument("--ours-dtype", default="auto", help="plumcode's training dtype (auto: bf16 on GPUs, fp32 on CPU)")
    ap.add_argument("--unsorted", action="store_true")
    ap.add_argument("--variants", default="trl,ours,ours-mem",
                    help="comma list of: trl, trl-fp32, trl-bf16, trl-precompute, ours, ours-fp32, ours-unsorted, "
                         "ours-mem")
    ap.add_argument("--out", help="write the JSON report here too")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if a.worker:
        fn = worker_trl if a.worker == "trl" else worker_ours
        a.which = a.worker
        print("RESULT " + json.dumps(fn(a)))
        return

    work = Path(tempfile.mkdtemp(prefix="plumcode-bench-"))
    if a.shape == "qwen2.5-0.5b":  # hidden 896, 24 layers, MLP 4864, 14 heads / 2 KV heads
        a.hidden, a.layers, a.intermediate, a.heads, a.kv_heads = 896, 24, 4864, 14, 2
    if not a.model:
        tok = Path(a.tokenizer) if a.tokenizer else (QWEN_TOK if (QWEN_TOK / "tokenizer.json").is_file() else None)
        a.model = str(build_model(work / "model", a.hidden, a.layers, tok, a.intermediate, a.heads, a.kv_heads))
    a.data = a.data or str(build_data(work / "pairs.jsonl", a.pairs))
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(a.model)
    n_params = None
    try:
        from safetensors import safe_open

        with safe_open(str(Path(a.model) / "model.safetensors"), "pt") as f:
            n_params = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
    except Exception:  # sharded or missing: report without
        pass
    report: dict = {"model": a.model, "params": n_params, "vocab": cfg.vocab_size, "hidden": cfg.hidden_size,
                    "layers": cfg.num_hidden_layers, "batch_pairs": a.batch_size, "steps": a.steps,
                    "warmup": a.warmup, "threads": a.threads, "variants": {}}
    for v in a.variants.split(","):
        extra = {"trl": ["--trl-variant", "default"], "trl-fp32": ["--trl-variant", "fp32"],
                 "trl-bf16": ["--trl-variant", "bf16"], "trl-precompute": ["--trl-variant", "precompute"],
                 "ours": [], "ours-fp32": ["--ours-dtype", "float32"], "ours-unsorted": ["--unsorted"],
                 "ours-mem": []}[v]
        which = "trl" if v.startswith("trl") else ("ours-mem" if v == "ours-mem" else "ours")
        d = run_worker(which, a, extra)
        st = d["step_times"][a.warmup:] or d["step_times"]
        d["median_step_s"] = statistics.median(st)
        # CPU seconds of the process per step: on a shared machine, far less sensitive to other load than wall
        cst = d["cpu_step_times"][a.warmup:] or d["cpu_step_times"]
        d["median_step_cpu_s"] = statistics.median(cst)
        if "ref_s" in d:  # the once-per-round reference pass, spread over one epoch of optimizer steps
            steps_per_epoch = max(1, -(-d["examples"] // a.batch_size))
            d["amortised_step_s"] = d["median_step_s"] + d["ref_s"] / steps_per_epoch
        report["variants"][v] = d
        print(f"{v:15s} median step {d['median_step_s']:.3f}s wall, {d['median_step_cpu_s']:.3f}s CPU;  peak RSS {d['peak_rss_mb']:.0f} MB"
              + (f"  ref pass {d['ref_s']:.2f}s (amortised step {d['amortised_step_s']:.3f}s)" if "ref_s" in d else "")
              + (f"  CUDA peak {d['cuda_peak_mb']:.0f} MB" if d.get("cuda_peak_mb") else ""), flush=True)
    base = report["variants"].get("trl")
    if base:
        for v, d in report["variants"].items():
            d["step_ratio_vs_trl"] = d["median_step_s"] / base["median_step_s"]
            if "amortised_step_s" in d:
                d["amortised_ratio_vs_trl"] = d["amortised_step_s"] / base["median_step_s"]
            d["peak_rss_ratio_vs_trl"] = d["peak_rss_mb"] / base["peak_rss_mb"]
            d["cpu_step_ratio_vs_trl"] = d["median_step_cpu_s"] / base["median_step_cpu_s"]
            print(f"{v:15s} step ratio vs TRL {d['step_ratio_vs_trl']:.3f} wall, {d['cpu_step_ratio_vs_trl']:.3f} CPU"
                  + (f" (amortised {d['amortised_ratio_vs_trl']:.3f})" if "amortised_ratio_vs_trl" in d else "")
                  + f", peak RSS ratio {d['peak_rss_ratio_vs_trl']:.3f}")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "variants"}))


def _prod(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main()
