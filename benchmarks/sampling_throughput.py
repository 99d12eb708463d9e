"""On-policy sampling throughput (generated tokens/s) of plumcode's CPU path vs llama.cpp batch 1.

The policy is the embedded default (Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF). plumcode samples
it with the transformers backend (the GGUF dequantised; batched, KV cache, LoRA merged); the
baseline is llama-cpp-python sampling the *same GGUF* one sequence at a time. Engines run
interleaved, round by round, on the same HumanEval chat prompts, so load from other processes on
a shared machine hits all of them alike; the reported figure is the ratio of tokens/s.

"after LoRA update" = a rank-16 LoRA on all linear layers with non-zero weights (what a round
of KTO training produces) loaded with ``load_adapter`` and merged into the weights.

llama.cpp batch-1 tokens/s does not depend on how many sequences are drawn, so it samples
``--llama-n`` per prompt (fewer) to keep the run short; plumcode samples ``--n`` (the real
on-policy workload of N candidates per instruction).

    python benchmarks/sampling_throughput.py --problems 2 --n 8 --max-tokens 128 --rounds 2 --threads 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def make_lora(model, out: Path, r: int = 16, seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * 0.01)
    peft.save_pretrained(out)
    peft.unload()  # back to the plain base, adapter saved
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=2, help="HumanEval prompts per round")
    ap.add_argument("--n", type=int, default=8, help="samples per prompt for plumcode")
    ap.add_argument("--llama-n", type=int, default=2, help="samples per prompt for llama.cpp batch 1")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="threads for both engines (default: all cores)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtypes", default="bfloat16,float32", help="transformers dtypes to measure (with LoRA)")
    ap.add_argument("--no-base", action="store_true", help="skip the no-LoRA transformers measurement")
    ap.add_argument("--out", default="benchmarks/results/sampling_throughput.json")
    args = ap.parse_args()

    import torch

    from plumcode.generation import SamplingParams, build_prompt
    from plumcode.generation.hf import TransformersBackend, default_threads
    from plumcode.generation.llamacpp import LlamaCppBackend
    from plumcode.models import ensure_model, load_hf_model
    from plumcode.problems.loaders import load_benchmark

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    gguf = ensure_model("default")
    probs = load_benchmark("humaneval")
    need = args.problems * args.rounds
    prompts = [build_prompt(p, "chat") for p in probs[:need]]

    engines: dict[str, object] = {}
    t = time.perf_counter()
    engines["llama.cpp batch-1 (Q4_K_M GGUF)"] = LlamaCppBackend(str(gguf), n_ctx=2048, threads=threads)
    load_s = {"llama.cpp": round(time.perf_counter() - t, 1)}
    tmp = Path(tempfile.mkdtemp(prefix="plumcode-bench-"))
    adapter = None
    for dt in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
        t = time.perf_counter()
        model, tok = load_hf_model("default", dtype=dt, source="gguf")
        load_s[f"hf {dt}"] = round(time.perf_counter() - t, 1)
        if adapter is None:
            adapter = make_lora(model, tmp / "adapter")
        if not args.no_base and not any(k.startswith("plumcode") and "no LoRA" in k for k in engines):
            engines[f"plumcode hf {dt} batched, no LoRA"] = TransformersBackend(
                (model, tok), batch_size=args.batch_size, threads=threads)
            model, tok = load_hf_model("default", dtype=dt, source="gguf")
        engines[f"plumcode hf {dt} batched + LoRA merged"] = TransformersBackend(
            (model, tok), adapter=str(adapter), batch_size=args.batch_size, threads=threads)
        gc.collect()

    stats = {k: {"tokens": 0, "seconds": 0.0, "sequences": 0} for k in engines}
    for rnd in range(args.rounds):
        chunk = prompts[rnd * args.problems:(rnd + 1) * args.problems]
        for name, eng in engines.items():
            n = args.llama_n if name.startswith("llama") else args.n
            params = SamplingParams(n=n, temperature=args.temperature, top_p=0.95, max_tokens=args.max_tokens,
                                    seed=rnd)
            t = time.perf_counter()
            rows = eng.generate(chunk, params)  # type: ignore[attr-defined]
            dt = time.perf_counter() - t
            toks = sum(c.n_tokens for r in rows for c in r)
            s = stats[name]
            s["tokens"] += toks
            s["seconds"] += dt
            s["sequences"] += sum(len(r) for r in rows)
            print(f"round {rnd} {name}: {toks} tokens in {dt:.1f}s = {toks / dt:.2f} tok/s", flush=True)

    base = "llama.cpp batch-1 (Q4_K_M GGUF)"
    base_tps = stats[base]["tokens"] / stats[base]["seconds"]
    results = {}
    for name, s in stats.items():
        tps = s["tokens"] / s["seconds"]
        results[name] = {**s, "seconds": round(s["seconds"], 2), "tokens_per_s": round(tps, 3),
                         "ratio_vs_llama_cpp": round(tps / base_tps, 2)}
    report = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {"cpu_count": os.cpu_count(), "threads": threads, "platform": platform.platform(),
                    "loadavg_end": os.getloadavg(), "torch": torch.__version__},
        "workload": {"prompts": "HumanEval chat", "problems_per_round": args.problems, "rounds": args.rounds,
                     "n": args.n, "llama_n": args.llama_n, "max_tokens": args.max_tokens,
                     "temperature": args.temperature, "top_p": 0.95, "batch_size": args.batch_size},
        "load_seconds": load_s,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
