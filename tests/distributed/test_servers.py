"""ManagedServer process handling with real processes: process-group stop (no orphans, SIGKILL
escalation), restart, start-up failures. ``plumcode serve`` itself (LoRA hot-load, sampling) is
exercised in test_sampling.py, which shares its two servers."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from plumcode.distributed.servers import (
    ManagedServer,
    ServerError,
    ServerSpec,
    free_port,
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
