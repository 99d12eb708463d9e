"""Training takes every model spec; two CPU ranks are one run; tensorboard logs; the trained
adapter is exported as a plain model folder with a model card (tiny model, seconds)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from plumcode.cli import main
from plumcode.io import atomic_write_jsonl
from plumcode.training.model import training_source

# fast and decisive: no health probe generation, big enough steps that the adapter changes the model
FAST = {"probe_prompts": 0, "grad_accum": 1, "learning_rate": 0.01, "lora_r": 4, "lora_alpha": 8, "batch_size": 4}


@pytest.fixture
def prefs(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"prompt": f"Write f{i}.", "completion": f"def f{i}():\n    return {i}\n", "label": i % 2 == 0}
            for i in range(16)]
    atomic_write_jsonl(tmp_path / "prefs.jsonl", rows)
    (tmp_path / "fast.json").write_text(json.dumps(FAST))
    return tmp_path / "prefs.jsonl", tmp_path / "fast.json"


def test_every_generation_spec_names_training_weights(tmp_path: Path) -> None:
    assert training_source("hf:/models/q") == ("/models/q", None)
    assert training_source("hf:/models/q?adapter=/a&dtype=bfloat16&batch_size=8") == ("/models/q", "/a")
    assert training_source("vllm:Qwen/Qwen2.5-Coder-0.5B-Instruct") == ("Qwen/Qwen2.5-Coder-0.5B-Instruct", None)
    assert training_source("llama-cpp:/m/x.gguf?n_ctx=4096") == ("/m/x.gguf", None)
    assert training_source("managed:vllm:/models/q?tensor_parallel_size=2") == ("/models/q", None)
    assert training_source("multi:hf:/models/q?device=cuda:0|hf:/models/q?device=cuda:1") == ("/models/q", None)
    assert training_source("default") == ("default", None)
    with pytest.raises(ValueError, match="OpenAI-compatible server"):
        training_source("openai:http://127.0.0.1:8000/v1#qwen")


def _train(model: str, prefs: Path, cfg: Path, out: Path, *extra: str) -> dict:
    assert main(["train", "--preferences", str(prefs), "--model", model, "--out", str(out), "--config", str(cfg),
                 "--max-steps", "2", *extra]) == 0
    return json.loads((out / "train_result.json").read_text())


def test_train_hf_spec_continue_adapter_and_export(tiny_model_dir: Path, prefs: tuple[Path, Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p, cfg = prefs
    # the loop's layout, so export finds the run's measurements beside the checkpoint
    run = tmp_path / "run"
    ck = run / "round-000" / "checkpoint"
    res = _train(f"hf:{tiny_model_dir}?dtype=float32", p, cfg, ck)
    assert res["steps"] == 2 and res["adapter_dir"]
    assert json.loads((ck / "plumcode_checkpoint.json").read_text())["base_spec"] == str(tiny_model_dir.resolve())
    # ?adapter= continues that adapter (as --adapter does)
    res2 = _train(f"hf:{tiny_model_dir}?adapter={ck / 'adapter'}", p, cfg, tmp_path / "round-001")
    assert res2["steps"] == 2
    assert main(["train", "--preferences", str(p), "--model", "openai:http://127.0.0.1:9/v1#m",
                 "--out", str(tmp_path / "x")]) == 2
    assert "OpenAI-compatible server" in capsys.readouterr().err

    for name, value in (("round-000/eval.json", 0.375), ("baseline/eval.json", 0.25)):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(json.dumps({"policy": "x", "benchmarks": {"humaneval+": {
            "benchmark": "humaneval+", "n_problems": 8, "n_samples": 16,
            "pass_at_k": {"humaneval": {"pass@1": value + 0.125}, "humaneval+": {"pass@1": value}}}}}))
    out = tmp_path / "exported"
    assert main(["export", str(ck), "--out", str(out)]) == 0
    files = {f.name for f in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "generation_config.json"} <= files
    assert "adapter_config.json" not in files and "adapter_model.safetensors" not in files

    # a plain transformers folder: same greedy tokens as the adapter on the base
    tok = AutoTokenizer.from_pretrained(str(out))
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    on_base = PeftModel.from_pretrained(base, str(ck / "adapter")).eval()
    ids = tok("def add(a, b):\n", return_tensors="pt").input_ids
    kw = {"max_new_tokens": 24, "do_sample": False, "pad_token_id": tok.pad_token_id}
    with torch.no_grad():
        g_merged = merged.generate(ids, **kw)
        g_adapter = on_base.generate(input_ids=ids, **kw)
        assert torch.equal(g_merged, g_adapter)
        l_merged, l_adapter = merged(ids).logits, on_base(input_ids=ids).logits
        assert torch.allclose(l_merged, l_adapter, atol=1e-4)
        with on_base.disable_adapter():  # the adapter did change the model: the check above means something
            assert (on_base(input_ids=ids).logits - l_adapter).abs().max() > 1e-3

    card = (out / "README.md").read_text()
    from huggingface_hub import ModelCard

    data = ModelCard.load(str(out / "README.md")).data
    assert data.library_name == "transformers" and "plumcode" in data.tags and "kto" in data.tags
    assert {(r.dataset_name, r.metric_type, r.metric_value) for r in data.eval_results} == {
        ("humaneval", "pass@1", 50.0), ("humaneval+", "pass@1", 37.5)}
    assert "| humaneval+ | 8 | 16 | 37.5 | 25.0 |" in card  # this round vs the initial policy
    assert str(tiny_model_dir) in card and "learning_rate" in card and "0.1.0" in card
    assert json.loads((out / "plumcode_export.json").read_text())["kind"] == "lora"

    # offline: a clear error and a non-zero exit, the folder kept
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["export", str(ck), "--out", str(out), "--push-to-hub", "someone/tiny-plum"]) == 2
    err = capsys.readouterr().err
    assert "could not upload to the Hugging Face hub" in err and "export in" in err and "Traceback" not in err
    assert (out / "model.safetensors").is_file()


def test_report_to_tensorboard_writes_events(tiny_model_dir: Path, prefs: tuple[Path, Path], tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p, cfg = prefs
    out = tmp_path / "ck"
    _train(str(tiny_model_dir), p, cfg, out, "--report-to", "tensorboard")
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events, list(out.iterdir())
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert "loss" in acc.Tags()["scalars"]
    assert [e.step for e in acc.Scalars("loss")] == [1, 2]


def test_two_cpu_ranks_are_one_run(tiny_model_dir: Path, prefs: tuple[Path, Path], tmp_path: Path) -> None:
    """cpu_ddp without --device cpu: one run across 2 ranks (world size 2), rank 0 alone writes."""
    from plumcode.distributed.launch import LaunchSpec, train_launch_command

    p, _ = prefs
    out = tmp_path / "ck"
    cmd = train_launch_command(p, str(tiny_model_dir), out, LaunchSpec("cpu_ddp", main_process_port=29547),
                               train_config=FAST | {"max_steps": 2, "batch_size": 2})  # no "device"
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES",)}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count('"out_dir"') == 1  # one report: rank 0's
    report = json.loads(r.stdout[r.stdout.index("{"):])
    assert report["world_size"] == 2 and report["steps"] == 2
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2]  # not 1, 2, 1, 2 from two independent runs
    # 16 examples, micro-batch 2 -> 8 micro-batches an epoch; a step consumes world x 1 of them
    assert log[0]["epoch"] == pytest.approx(2 / 8)


def test_deepspeed_accepts_the_shipped_configs() -> None:
    pytest.importorskip("deepspeed", reason="deepspeed not installed (pip install 'plumcode[deepspeed]')")
    from deepspeed.runtime.config import DeepSpeedConfig

    from plumcode.distributed.launch import resolve_deepspeed_config

    for name, stage in (("zero2", 2), ("zero3", 3), ("zero3_offload", 3)):
        c = DeepSpeedConfig(resolve_deepspeed_config(name, micro_batch=2, grad_accum=4))
        assert c.zero_optimization_stage == stage
        assert (c.train_micro_batch_size_per_gpu, c.gradient_accumulation_steps, c.train_batch_size) == (2, 4, 8)
