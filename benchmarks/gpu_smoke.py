"""GPU smoke test: sample, execute, train a few KTO steps and sample again from the trained
adapter, on one CUDA GPU, through the same code paths the loop uses. Under 5 minutes.

    .venv/bin/python benchmarks/gpu_smoke.py                       # tiny random Qwen2 (no download)
    .venv/bin/python benchmarks/gpu_smoke.py --model /models/Qwen2.5-Coder-0.5B-Instruct
    .venv/bin/python benchmarks/gpu_smoke.py --ray                 # sampling through a Ray GPU actor

Exits 0 with a SKIP line when no CUDA GPU is visible. Writes a JSON summary (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PROBLEMS = [
    ("add", "Write a Python function add(a, b) that returns a + b.", "def add(a, b):\n    return a + b\n",
     "assert add(1, 2) == 3\nassert add(-1, 1) == 0"),
    ("rev", "Write a Python function rev(s) that returns the string s reversed.",
     "def rev(s):\n    return s[::-1]\n", "assert rev('abc') == 'cba'\nassert rev('') == ''"),
    ("sq", "Write a Python function sq(xs) that returns the list of squares of xs.",
     "def sq(xs):\n    return [x * x for x in xs]\n", "assert sq([1, 2]) == [1, 4]"),
    ("even", "Write a Python function even(n) that returns True when n is even.",
     "def even(n):\n    return n % 2 == 0\n", "assert even(4) is True\nassert even(3) is False"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="HF model dir (default: build the tiny test model)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--n", type=int, default=4, help="samples per problem")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--ray", action="store_true", help="sample through a RayEngine actor holding the GPU")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the same script without a GPU")
    a = ap.parse_args()

    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("SKIP: no CUDA GPU visible (torch.cuda.is_available() is False); nothing was run")
        return 0

    from plumcode.generation import SamplingParams, load_backend, sample_problems
    from plumcode.io import atomic_write_jsonl, load_jsonl
    from plumcode.problems.schema import Problem, TestCase
    from plumcode.sandbox import SandboxConfig, execute
    from plumcode.sandbox.types import Sample
    from plumcode.training.config import TrainConfig
    from plumcode.training.trainer import train

    t_all = time.perf_counter()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="plumcode-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    cuda = a.device.startswith("cuda")
    res: dict = {"device": torch.cuda.get_device_name(0) if cuda else a.device, "torch": torch.__version__,
                 "workdir": str(work)}
    if a.model:
        model = Path(a.model)
    else:
        from plumcode.testing.tiny import build_tiny_model

        model = build_tiny_model(work / "tiny")
    res["model"] = str(model)
    problems = [Problem(pid, instr, entry_point=pid, reference_solution=ref, tests=[TestCase("assert", code=t)])
                for pid, instr, ref, t in PROBLEMS]
    params = SamplingParams(n=a.n, temperature=0.8, max_tokens=a.max_tokens, seed=0)

    def sample(spec: str, out: Path) -> dict:
        t = time.perf_counter()
        if a.ray:
            from plumcode.distributed.sampling import ray_engines

            backend = ray_engines(spec, n=1, num_gpus=1 if cuda else 0, load_opts={"device": a.device})
        else:
            backend = load_backend(spec, device=a.device)
        try:
            summary = sample_problems(problems, backend, params, out, progress=False)
        finally:
            backend.close()
        summary["wall_s"] = round(time.perf_counter() - t, 2)
        return summary

    # 1. sample from the base policy on the GPU
    res["sample_base"] = sample(f"hf:{model}", work / "samples-0.jsonl")
    recs = load_jsonl(work / "samples-0.jsonl")
    # 2. execute in the sandbox
    t = time.perf_counter()
    verdicts = list(execute(problems, [Sample(r["problem_id"], r["sample_id"], r["code"]) for r in recs],
                            SandboxConfig(workers=4)))
    res["execute"] = {"samples": len(verdicts), "passed": sum(v.passed for v in verdicts),
                      "isolation": verdicts[0].isolation if verdicts else "", "wall_s": round(time.perf_counter() - t, 2)}
    # 3. KTO records: the policy's own failing samples are undesirable; the references stand in for
    #    desirable ones (a random tiny model never passes), so both labels are present
    passed = {v.sample_id for v in verdicts if v.passed}
    def completion(prompt: object, text: str) -> object:  # conversational prompts take message completions
        return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text

    prefs = [{"prompt": r["prompt"], "completion": completion(r["prompt"], r["completion"]),
              "label": r["sample_id"] in passed} for r in recs]
    for p in problems:
        prompt = next(r["prompt"] for r in recs if r["problem_id"] == p.id)
        prefs.append({"prompt": prompt, "completion": completion(prompt, f"```python\n{p.reference_solution}```"),
                      "label": True})
    atomic_write_jsonl(work / "preferences.jsonl", prefs)
    # 4. train a few steps on the GPU (LoRA, bf16 where supported)
    t = time.perf_counter()
    tr = train(work / "preferences.jsonl", str(model),
               TrainConfig(objective="kto", max_steps=a.steps, batch_size=4, device=a.device, lora=True),
               work / "checkpoint", echo=None)
    res["train"] = {"steps": tr.steps, "final_loss": tr.final_loss, "examples": tr.examples,
                    "adapter_dir": tr.adapter_dir, "wall_s": round(time.perf_counter() - t, 2),
                    "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None}
    # 5. sample from the trained adapter (the on-policy reload path)
    if tr.adapter_dir:
        res["sample_trained"] = sample(f"hf:{model}?adapter={tr.adapter_dir}", work / "samples-1.jsonl")
    res["total_s"] = round(time.perf_counter() - t_all, 2)
    ok = res["train"]["steps"] == a.steps and res["sample_base"]["written"] == len(problems) * a.n
    res["ok"] = bool(ok)
    text = json.dumps(res, indent=2, default=str)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
