"""``managed:<engine>:<model>`` specs with real processes: ``load_backend`` starts ``plumcode serve``
on the tiny model, samples, and ``close()`` leaves no process of the server's group; a LoRA
checkpoint is hot-loaded through the loop's ``?adapter=``; full fine-tuning restarts the server on
the checkpoint's weights (``with_checkpoint`` keeps the spec managed). The vLLM engine is exercised
with a fake ``vllm`` executable (argv, environment, lifecycle) and without one (a clear error);
real vLLM is not installed here."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import plumcode.distributed  # noqa: F401 - registers the managed: spec with load_backend
from plumcode.generation import GenerationError, SamplingParams, load_backend, parse_spec
from plumcode.loop.stages import training_spec, with_checkpoint

pytest.importorskip("transformers")
pytest.importorskip("fastapi")

PROMPT = "def add(a, b):"
GREEDY = SamplingParams(n=1, temperature=0.0, max_tokens=8, seed=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model").resolve()


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _checkpoint(root: Path, kind: str) -> Path:
    """An empty plumcode checkpoint (``model/`` or ``adapter/`` is written by the caller)."""
    from plumcode.generation.hf import CKPT_META

    ck = root / "checkpoint"
    (ck / kind).mkdir(parents=True)
    (ck / CKPT_META).write_text(json.dumps({"kind": kind}))
    return ck


def test_parse_and_option_errors(tiny):
    ps = parse_spec(f"managed:plumcode:{tiny}?threads=1&log_dir=/tmp/x")
    assert (ps.kind, ps.target, ps.model, ps.options) == ("managed", "plumcode", str(tiny),
                                                          {"threads": 1, "log_dir": "/tmp/x"})
    with pytest.raises(ValueError, match="tensor_parallel_size"):  # a vLLM option on plumcode: no server started
        load_backend(f"managed:plumcode:{tiny}?tensor_parallel_size=2")
    with pytest.raises(ValueError, match="unknown managed engine 'sglang'"):
        load_backend(f"managed:sglang:{tiny}")
    with pytest.raises(ValueError, match="managed:<vllm|plumcode>:<model>"):
        parse_spec("managed:plumcode")


def test_with_checkpoint_keeps_managed(tmp_path):
    spec = "managed:plumcode:/m/base?threads=1"
    ck = _checkpoint(tmp_path, "model")
    lora = with_checkpoint(spec, ck, lora=True, reload="auto")
    assert lora == f"managed:plumcode:/m/base?threads=1&adapter={ck}"
    assert with_checkpoint(lora, ck, lora=True, reload="auto") == lora  # replaces, does not stack, adapters
    full = with_checkpoint(spec, ck, lora=False, reload="auto")
    assert full == f"managed:plumcode:{ck}/model?threads=1"
    assert with_checkpoint("managed:vllm:/m/base?adapter=/old", ck, lora=False, reload="auto") == \
        f"managed:vllm:{ck}/model"
    assert with_checkpoint(f"multi:{spec}|{spec}", ck, lora=False, reload="auto") == f"multi:{full}|{full}"
    assert with_checkpoint("openai:http://h:1/v1#m", ck, lora=False, reload="auto") == f"hf:{ck}"  # unchanged
    # the trainer loads the served weights (and the adapter to continue from)
    assert training_spec(lora) == ("/m/base", str(ck))
    assert training_spec(full) == (f"{ck}/model", None)


def test_managed_plumcode_samples_and_close_stops_group(tiny, tmp_path):
    import httpx

    b = load_backend(f"managed:plumcode:{tiny}?threads=1&log_dir={tmp_path}")
    pgid = b.server.proc.pid
    try:
        rows = b.generate([PROMPT, "def rev(s):", "Write a function f."], SamplingParams(n=2, max_tokens=6, seed=1))
        assert [len(r) for r in rows] == [2, 2, 2]
        ident = b.identity()
        served = httpx.get(b.server.spec.base_url + "/v1/policy", timeout=30).json()
        assert ident["model"] == str(tiny) and ident["managed"] == "plumcode"
        assert ident["model_sha256"] == served["model_sha256"]  # the driver names the weights as the server does
        assert Path(ident["server_log"]).parent == tmp_path
    finally:
        b.close()
    assert _group_gone(pgid) and not b.server.running


def test_lora_checkpoint_hot_loaded_through_adapter_option(tiny, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from plumcode.generation.hf import adapter_sha256

    torch.manual_seed(0)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                          LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 2.0)  # non-zero B: the adapter changes what is sampled
    lora_ck = _checkpoint(tmp_path / "lora", "adapter")
    peft.save_pretrained(lora_ck / "adapter")

    base = f"managed:plumcode:{tiny}?threads=1"
    b0 = load_backend(base)
    try:
        text0 = b0.generate([PROMPT], GREEDY)[0][0].text
        sha0 = b0.identity()["model_sha256"]
    finally:
        b0.close()

    b1 = load_backend(with_checkpoint(base, lora_ck, lora=True, reload="auto"))
    try:
        ident = b1.identity()
        assert ident["adapter_sha256"] == adapter_sha256(lora_ck) and ident["model_sha256"] == sha0
        assert ident["served_as"] in b1.list_models() and ident["served_as"] != str(tiny)
        assert b1.generate([PROMPT], GREEDY)[0][0].text != text0
    finally:
        b1.close()


def test_loop_restarts_managed_server_on_full_finetuned_weights(tiny, tmp_path):
    """The loop's own path (policy_spec -> with_checkpoint -> Runner.backend): round 1 after full
    fine-tuning stops round 0's server (its process group is gone) and starts one on the weights."""
    import httpx
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plumcode.loop.config import RunConfig
    from plumcode.loop.runner import Runner

    cfg = RunConfig.model_validate({"policy": {"model": f"managed:plumcode:{tiny}?threads=1",
                                               "lora": {"enabled": False}}})
    runner = Runner(tmp_path / "run", cfg, echo=lambda s: None)
    ck = runner.dir / "round-000" / "checkpoint"
    full = AutoModelForCausalLM.from_pretrained(tiny)
    with torch.no_grad():
        full.lm_head.weight.mul_(-1.0)  # "trained" full weights: a different hash
    full.save_pretrained(ck / "model")
    AutoTokenizer.from_pretrained(tiny).save_pretrained(ck / "model")
    try:
        b0 = runner.backend(runner.policy_spec(0))
        pgid0, sha0 = b0.server.proc.pid, b0.identity()["model_sha256"]
        runner.state.complete("round-000/train", {"steps": 1})  # what the train stage records
        spec1 = runner.policy_spec(1)
        assert spec1 == f"managed:plumcode:{ck.resolve()}/model?threads=1"
        b1 = runner.backend(spec1)
        assert _group_gone(pgid0) and not b0.server.running
        ident = b1.identity()
        assert ident["model"] == str(ck.resolve() / "model") and ident["model_sha256"] not in (None, sha0)
        served = httpx.get(b1.server.spec.base_url + "/v1/policy", timeout=30).json()
        assert (served["model"], served["model_sha256"]) == (ident["model"], ident["model_sha256"])
        assert len(b1.generate([PROMPT], GREEDY)[0]) == 1
        pgid1 = b1.server.proc.pid
    finally:
        runner._close_backends()
    assert _group_gone(pgid1)


FAKE_VLLM = r'''#!{python}
import http.server, json, os, sys
argv = sys.argv[1:]
port = int(argv[argv.index("--port") + 1])
with open({record!r}, "w") as f:
    json.dump({{"argv": argv, "lora_env": os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING"),
               "api_key_env": os.environ.get("VLLM_API_KEY")}}, f)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"data": [{{"id": argv[1]}}]}}).encode() if self.path == "/v1/models" else b"ok"
        self.send_response(200 if self.path in ("/health", "/v1/models") else 404); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def test_vllm_engine_argv_and_lifecycle_with_a_fake_vllm(tiny, tmp_path, monkeypatch):
    """What ``managed:vllm:`` runs (real vLLM only on a GPU machine): options become flags, runtime
    LoRA loading is enabled, a caller's VLLM_API_KEY is not inherited, close() stops the group."""
    from plumcode.distributed import servers

    if Path(sys.executable).with_name("vllm").exists():
        pytest.skip("a real vllm is installed next to this interpreter")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "vllm"
    record = tmp_path / "record.json"
    fake.write_text(FAKE_VLLM.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("VLLM_API_KEY", "secret-for-another-server")
    b = load_backend(f"managed:vllm:{tiny}?tensor_parallel_size=2&gpu_memory_utilization=0.5&max_model_len=1024")
    pgid = b.server.proc.pid
    try:
        assert isinstance(b, servers.ManagedOpenAIBackend) and b.model == str(tiny)
        rec = json.loads(record.read_text())
        argv = rec["argv"]
        assert argv[:2] == ["serve", str(tiny)]
        for flag, value in (("--tensor-parallel-size", "2"), ("--gpu-memory-utilization", "0.5"),
                            ("--max-model-len", "1024"), ("--host", "127.0.0.1")):
            assert argv[argv.index(flag) + 1] == value
        assert "--enable-lora" in argv and rec["lora_env"] == "True" and rec["api_key_env"] == ""
    finally:
        b.close()
    assert _group_gone(pgid)


def test_vllm_engine_missing_is_a_clear_error(tiny, monkeypatch):
    if shutil.which("vllm") or Path(sys.executable).with_name("vllm").exists():
        pytest.skip("vllm is installed")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GenerationError, match=r"managed:vllm needs vLLM.*managed:plumcode"):
        load_backend(f"managed:vllm:{tiny}?tensor_parallel_size=1")
