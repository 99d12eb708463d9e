"""`plumcode train` end to end as users run it: plain CLI, and under `accelerate launch` (1 CPU process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _env() -> dict[str, str]:
    return os.environ | {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def test_cli_train_dpo_and_clear_error(tiny_model_dir, pref_files, tmp_path):
    out = tmp_path / "ck"
    cmd = [sys.executable, "-m", "plumcode", "train", "--preferences", str(pref_files["paired"]), "--model",
           str(tiny_model_dir), "--objective", "dpo", "--out", str(out), "--max-steps", "2", "--grad-accum", "1", "--probe-prompts", "0", "--batch-size", "4",
           "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step 2/2" in r.stdout and (out / "adapter" / "adapter_config.json").is_file()
    assert json.loads((out / "train_result.json").read_text())["steps"] == 2
    # DPO on unpaired data: one clear line, exit 2, no traceback
    bad = [sys.executable, "-m", "plumcode", "train", "--preferences", str(pref_files["unpaired"]), "--model",
           str(tmp_path / "never-loaded"), "--objective", "dpo", "--out", str(tmp_path / "x")]
    r = subprocess.run(bad, capture_output=True, text=True, env=_env())
    assert r.returncode == 2 and "DPO needs paired records" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate CLI not installed")
def test_accelerate_launch_one_cpu_process(tiny_model_dir, pref_files, tmp_path):
    acc = str(Path(sys.executable).parent / "accelerate")
    out = tmp_path / "ck"
    cmd = [acc, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "plumcode", "train", "--preferences", str(pref_files["unpaired"]),
           "--model", str(tiny_model_dir), "--objective", "kto", "--out", str(out), "--max-steps", "2",
           "--grad-accum", "1", "--probe-prompts", "0", "--batch-size", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2]
