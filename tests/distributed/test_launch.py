"""accelerate / DeepSpeed configs and the launch command builder; a real 2-process CPU launch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from plumcode.distributed.launch import (
    CONFIG_ROOT,
    LaunchSpec,
    accelerate_command,
    config_path,
    load_accelerate_config,
    resolve_deepspeed_config,
    train_launch_command,
)

ACCEL = sorted((CONFIG_ROOT / "accelerate").glob("*.yaml"))
DS = sorted((CONFIG_ROOT / "deepspeed").glob("*.json"))


def test_configs_present_and_well_formed():
    names = {p.stem for p in ACCEL}
    assert {"single_gpu", "multi_gpu", "multi_node", "deepspeed_zero2", "deepspeed_zero3", "cpu_ddp"} <= names
    for p in ACCEL:
        cfg = yaml.safe_load(p.read_text())
        assert cfg["distributed_type"] in {"NO", "MULTI_GPU", "MULTI_CPU", "DEEPSPEED"}, p
        if cfg["distributed_type"] == "DEEPSPEED":
            ds = config_path(cfg["deepspeed_config"]["deepspeed_config_file"], "deepspeed")
            stage = json.loads(ds.read_text())["zero_optimization"]["stage"]
            assert f"zero{stage}" in p.stem
    for p in DS:
        cfg = json.loads(p.read_text())
        assert cfg["zero_optimization"]["stage"] in (2, 3)


def test_accelerate_parses_every_config():
    """accelerate's own loader accepts each file (catches keys or values it does not know)."""
    from accelerate.commands.config.config_args import load_config_from_file

    for p in ACCEL:
        cfg = load_config_from_file(str(p))
        assert cfg.num_processes >= 1


def test_deepspeed_resolution_fills_batch_numbers():
    cfg = resolve_deepspeed_config("zero3", micro_batch=2, grad_accum=8, max_grad_norm=0.5)
    assert cfg["train_micro_batch_size_per_gpu"] == 2 and cfg["gradient_accumulation_steps"] == 8
    assert cfg["gradient_clipping"] == 0.5 and "train_batch_size" not in cfg
    assert cfg["zero_optimization"]["stage"] == 3


def test_train_command_for_deepspeed_multi_node(tmp_path):
    spec = LaunchSpec("deepspeed_zero2", num_processes=16, num_machines=2, machine_rank=1,
                      main_process_ip="10.1.2.3", main_process_port=29600)
    out = tmp_path / "round-000" / "checkpoint"
    cmd = train_launch_command(tmp_path / "prefs.jsonl", "hf:/models/qwen7b", out, spec,
                               train_config={"batch_size": 2, "grad_accum": 4, "lora": False})
    s = " ".join(cmd)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--num_processes 16" in s and "--num_machines 2" in s and "--machine_rank 1" in s
    assert "--main_process_ip 10.1.2.3" in s and "--gradient_accumulation_steps 4" in s
    ds_file = cmd[cmd.index("--deepspeed_config_file") + 1]
    ds = json.loads(open(ds_file).read())
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["gradient_accumulation_steps"] == 4
    i = cmd.index("-m", 3)
    assert cmd[i + 1:i + 3] == ["plumcode", "train"]
    cfg_file = cmd[cmd.index("--config") + 1]
    assert json.loads(open(cfg_file).read())["lora"] is False
    # everything the processes read is beside the checkpoint (shared storage), nothing elsewhere
    assert ds_file.startswith(str(tmp_path)) and cfg_file.startswith(str(tmp_path))


def test_unknown_config_names_the_known_ones():
    with pytest.raises(FileNotFoundError, match="multi_gpu"):
        load_accelerate_config("nonexistent")


def test_real_two_process_cpu_launch(tmp_path):
    """The builder's command actually starts 2 ranks that form a gloo process group."""
    pkg = tmp_path / "ddp_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from accelerate import Accelerator\n"
        "a = Accelerator(cpu=True)\n"
        "t = torch.tensor([a.process_index + 1.0])\n"
        "dist.all_reduce(t)\n"
        "open(sys.argv[1] + f'/rank{a.process_index}', 'w').write(f'{a.num_processes} {t.item()}')\n"
        "dist.destroy_process_group()  # else gloo aborts the rank at exit (torch 2.13)\n")
    cmd = accelerate_command([str(tmp_path)], LaunchSpec("cpu_ddp", main_process_port=29517), module="ddp_probe")
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                       env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "rank0").read_text() == "2 3.0"
    assert (tmp_path / "rank1").read_text() == "2 3.0"


@pytest.mark.slow
def test_plumcode_train_on_two_cpu_ranks(tmp_path):
    """The real trainer under the builder's command: 2 DDP ranks (gloo), tiny model, 2 KTO steps."""
    from plumcode.io import atomic_write_jsonl
    from plumcode.testing.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    prefs = [{"prompt": f"Write f{i}.", "completion": f"def f{i}():\n    return {i}\n", "label": i % 2 == 0}
             for i in range(16)]
    atomic_write_jsonl(tmp_path / "prefs.jsonl", prefs)
    out = tmp_path / "round-000" / "checkpoint"
    cmd = train_launch_command(tmp_path / "prefs.jsonl", str(model), out,
                               LaunchSpec("cpu_ddp", main_process_port=29533),
                               train_config={"objective": "kto", "max_steps": 2, "batch_size": 2, "grad_accum": 1, "device": "cpu",
                                             "probe_prompts": 0})
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads((out / "train_result.json").read_text())
    assert res["steps"] == 2


def test_plumcode_launch_train_prints_the_command(tmp_path, capsys):
    """``plumcode launch train`` (was ``python -m plumcode.distributed train-command``): the builder's
    command, with the train config file and the plumcode train flags after ``--``."""
    from plumcode.cli import main

    (tmp_path / "tc.json").write_text(json.dumps({"objective": "dpo", "batch_size": 2}))
    out = tmp_path / "round-000" / "checkpoint"
    assert main(["launch", "train", "--preferences", str(tmp_path / "prefs.jsonl"), "--model", "hf:/m",
                 "--out", str(out), "--accelerate-config", "cpu_ddp", "--num-processes", "2",
                 "--train-config", str(tmp_path / "tc.json"), "--", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out.strip()
    assert "-m accelerate.commands.launch" in printed and "--num_processes 2" in printed
    assert printed.endswith("--epochs 2") and "-m plumcode train --preferences" in printed
    assert json.loads((out.parent / "checkpoint.train_config.json").read_text())["objective"] == "dpo"


def test_plumcode_launch_server_runs_a_managed_server(monkeypatch, capsys):
    """``plumcode launch server`` (was ``python -m plumcode.distributed serve``): the same spec the
    managed: backend uses, held until the server stops; ``python -m plumcode.distributed`` is gone."""
    from plumcode.cli import main
    from plumcode.distributed import servers

    started = []

    class FakeServer:
        def __init__(self, spec):
            self.spec, self.log_path, self.running = spec, "/tmp/x.log", False

        def __enter__(self):
            started.append(self.spec)
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(servers, "ManagedServer", FakeServer)
    assert main(["launch", "server", "--engine", "vllm", "--model", "/ckpt/m", "--port", "8123",
                 "--tensor-parallel-size", "2"]) == 0
    argv = started[0].argv
    assert argv[:3] == ["vllm", "serve", "/ckpt/m"] and "--tensor-parallel-size" in argv and "8123" in argv
    assert "serving /ckpt/m at http://127.0.0.1:8123/v1" in capsys.readouterr().out
    r = subprocess.run([sys.executable, "-m", "plumcode.distributed"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot be directly executed" in r.stderr
