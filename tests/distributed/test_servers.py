"""ManagedServer process handling (real processes; no mocks) and, when the generation stage is
present, plumcode's own OpenAI-compatible server with a tiny model: health, completions, LoRA
hot-load, restart with a new checkpoint, clean stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from plumcode.distributed.servers import (
    ManagedServer,
    ServerError,
    ServerSpec,
    free_port,
    plumcode_spec,
    vllm_spec,
)

# A server that starts a helper child in its process group (like vLLM's engine/TP workers) and
# optionally ignores SIGTERM, then serves /health.
SERVER = r'''
import http.server, os, signal, subprocess, sys
port, ignore_term, pidfile = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
child = subprocess.Popen([sys.executable, "-c", "import time, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN) if %r else None; time.sleep(600)" % ignore_term])
open(pidfile, "w").write(f"{os.getpid()} {child.pid}")
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _spec(tmp_path: Path, ignore_term: bool = False) -> ServerSpec:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    return ServerSpec([sys.executable, str(script), str(port), "1" if ignore_term else "0",
                       str(tmp_path / "pids")], f"http://127.0.0.1:{port}", startup_timeout_s=60,
                      log_path=str(tmp_path / "server.log"))


@pytest.mark.parametrize("ignore_term", [False, True])
def test_stop_kills_whole_group_no_orphans(tmp_path, ignore_term):
    srv = ManagedServer(_spec(tmp_path, ignore_term)).start()
    assert srv.healthy()
    server_pid, child_pid = map(int, (tmp_path / "pids").read_text().split())
    assert _alive(server_pid) and _alive(child_pid)
    t = time.monotonic()
    srv.stop(grace_s=1.0)
    assert not _alive(server_pid) and not _alive(child_pid)  # the child is not orphaned
    assert time.monotonic() - t < 15
    assert not srv.running and not srv.healthy()


def test_restart_and_context_manager(tmp_path):
    spec = _spec(tmp_path)
    with ManagedServer(spec) as srv:
        first = int((tmp_path / "pids").read_text().split()[0])
        srv.restart()
        second = int((tmp_path / "pids").read_text().split()[0])
        assert first != second and not _alive(first) and srv.healthy() and srv.starts == 2
    assert not _alive(second)


def test_crash_on_start_reports_log(tmp_path):
    spec = ServerSpec([sys.executable, "-c", "import sys; print('no such checkpoint: /x'); sys.exit(3)"],
                      f"http://127.0.0.1:{free_port()}", startup_timeout_s=30, log_path=str(tmp_path / "s.log"))
    with pytest.raises(ServerError, match="no such checkpoint"):
        ManagedServer(spec).start()


def test_never_healthy_times_out_and_cleans_up(tmp_path):
    spec = ServerSpec([sys.executable, "-c", "import time; time.sleep(600)"],
                      f"http://127.0.0.1:{free_port()}", startup_timeout_s=2, log_path=str(tmp_path / "s.log"))
    srv = ManagedServer(spec)
    with pytest.raises(ServerError, match="not healthy"):
        srv.start()
    assert not srv.running


def test_vllm_command_has_runtime_lora():
    spec = vllm_spec("/ckpt/round-001/model", port=8123, tensor_parallel_size=2, served_model_name="policy")
    assert spec.argv[:3] == ["vllm", "serve", "/ckpt/round-001/model"]
    assert "--enable-lora" in spec.argv and spec.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert spec.argv[spec.argv.index("--tensor-parallel-size") + 1] == "2"
    assert spec.openai_url == "http://127.0.0.1:8123/v1"


# -------------------------------------------------- plumcode serve (needs the generation stage)
def _has_server() -> bool:
    try:
        import plumcode.generation.server  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.skipif(not _has_server(), reason="plumcode.generation.server not present")
def test_plumcode_serve_lora_hot_load_and_restart(tmp_path, tiny_model):
    import httpx
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    # a LoRA adapter whose B matrices are non-zero, so it changes the output
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 2.0)
    adapter = tmp_path / "adapter"
    peft.save_pretrained(adapter)

    spec = plumcode_spec(str(tiny_model))
    spec.log_path = str(tmp_path / "serve.log")
    with ManagedServer(spec) as srv:
        pgid = srv.proc.pid
        body = {"model": srv.models()[0], "prompt": "def add(a, b):", "max_tokens": 8, "temperature": 0.0}
        r0 = httpx.post(srv.spec.openai_url + "/completions", json=body, timeout=120).json()
        srv.load_lora("round-001", adapter)
        assert "round-001" in srv.models()
        r1 = httpx.post(srv.spec.openai_url + "/completions", json={**body, "model": "round-001"},
                        timeout=120).json()
        assert r0["choices"][0]["text"] != r1["choices"][0]["text"]
        srv.restart()  # e.g. new full checkpoint: adapters are gone after a restart
        assert srv.healthy() and srv.loaded_adapters == {}
    assert not any(Path(f"/proc/{p}").exists() and _alive(int(p)) and
                   int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid
                   for p in os.listdir("/proc") if p.isdigit())
