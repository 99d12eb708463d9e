"""``plumcode serve`` as a real process on loopback, driven through the OpenAI HTTP backend."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from plumcode.generation import GenerationError, SamplingParams
from plumcode.generation.hf import TransformersBackend
from plumcode.generation.openai_http import OpenAIBackend

KEY = "sekret-test-key"
CHAT = [[{"role": "user", "content": "Write add(a, b)."}], [{"role": "user", "content": "hi"}]]
GREEDY = SamplingParams(n=1, max_tokens=10, temperature=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as lf:
        proc = subprocess.Popen([sys.executable, "-m", "plumcode", "serve", "--model", str(tiny_model),
                                 "--served-model-name", "tiny", "--port", str(port), "--api-key", KEY,
                                 "--batch-size", "8"], stdout=lf, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("server did not come up in 300 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_chat_and_completion_match_in_process_engine(server: str, tiny_model: Path) -> None:
    b = OpenAIBackend(server, "tiny", api_key=KEY, concurrency=4)
    local = TransformersBackend(str(tiny_model))
    assert b.list_models() == ["tiny"]
    remote = [[c.text for c in r] for r in b.generate(CHAT + ["def add(a, b):\n"], GREEDY)]
    here = [[c.text for c in r] for r in local.generate(CHAT + ["def add(a, b):\n"], GREEDY)]
    assert remote == here
    rows = b.generate(CHAT, SamplingParams(n=3, max_tokens=6, seed=0))
    assert [len(r) for r in rows] == [3, 3]
    assert all(c.n_tokens > 0 and c.prompt_tokens > 0 for r in rows for c in r)


def test_many_concurrent_requests_are_batched_correctly(server: str, tiny_model: Path) -> None:
    prompts = [f"def f{i}(x):\n    return x + {i}" for i in range(12)]
    b = OpenAIBackend(server, "tiny", api_key=KEY, concurrency=12)
    local = TransformersBackend(str(tiny_model))
    assert [r[0].text for r in b.generate(prompts, GREEDY)] == [r[0].text for r in local.generate(prompts, GREEDY)]


def test_stop_sequences_over_http(server: str) -> None:
    b = OpenAIBackend(server, "tiny", api_key=KEY)
    full = b.generate(["def add(a, b):\n"], SamplingParams(n=1, max_tokens=16, temperature=0.0))[0][0].text
    stop = full[4:6]
    cut = b.generate(["def add(a, b):\n"], SamplingParams(n=1, max_tokens=16, temperature=0.0, stop=(stop,)))[0][0]
    assert cut.text == full[: full.find(stop)] and cut.finish_reason == "stop"


def test_errors_name_the_fix(server: str) -> None:
    with pytest.raises(GenerationError, match=r"not found .*the server has: tiny|serves: tiny"):
        OpenAIBackend(server, "gpt-17", api_key=KEY).generate(["x"], GREEDY)
    with pytest.raises(GenerationError, match="serves: tiny"):
        OpenAIBackend(server, "gpt-17", api_key=KEY, check=True)
    with pytest.raises(GenerationError, match="authentication failed"):
        OpenAIBackend(server, "tiny", api_key="wrong")
    b = OpenAIBackend(server, "tiny", api_key=KEY)
    with pytest.raises(GenerationError, match="context"):
        b.generate(["x = 1\n" * 400], SamplingParams(n=1, max_tokens=700))


def test_lora_hot_swap(server: str, tiny_model: Path, tiny_adapter: Path, tiny_adapter2: Path) -> None:
    base = OpenAIBackend(server, "tiny", api_key=KEY)
    before = [r[0].text for r in base.generate(CHAT, GREEDY)]
    pol = OpenAIBackend(server, "tiny", api_key=KEY, adapter=str(tiny_adapter))
    ident = pol.identity()
    assert ident["adapter_sha256"] and ident["served_as"] in pol.list_models()
    local = TransformersBackend(str(tiny_model), adapter=str(tiny_adapter))
    after = [r[0].text for r in pol.generate(CHAT, GREEDY)]
    assert after == [r[0].text for r in local.generate(CHAT, GREEDY)] and after != before
    with pytest.raises(GenerationError, match="409"):  # the base is not silently served with an adapter on
        base.generate(CHAT, GREEDY)
    pol.load_adapter(str(tiny_adapter2))  # next round's policy
    local.load_adapter(tiny_adapter2)
    assert [r[0].text for r in pol.generate(CHAT, GREEDY)] == [r[0].text for r in local.generate(CHAT, GREEDY)]
    r = httpx.post(f"{server}/unload_lora_adapter", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    assert [r[0].text for r in base.generate(CHAT, GREEDY)] == before


class _Flaky(BaseHTTPRequestHandler):
    """An OpenAI-ish server that fails transiently and ignores ``n`` (like some real ones)."""

    plan: list[int] = []
    calls: list[dict] = []

    def log_message(self, *a: object) -> None:
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"data": [{"id": "m"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        code = type(self).plan.pop(0) if type(self).plan else 200
        if code != 200:
            self._send(code, {"error": {"message": "busy"}})
            return
        self._send(200, {"choices": [{"message": {"content": f"ok{len(type(self).calls)}"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


def test_retries_backoff_and_n_fan_out() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        _Flaky.plan, _Flaky.calls = [503, 429], []
        b = OpenAIBackend(url, "m", concurrency=1)
        rows = b.generate([[{"role": "user", "content": "x"}]], SamplingParams(n=3, max_tokens=4))
        assert len(rows[0]) == 3 and all(c.text.startswith("ok") for c in rows[0])
        assert len(_Flaky.calls) == 5  # 2 transient failures retried + 3 requests (server ignores n)
        assert _Flaky.calls[0]["n"] == 3 and _Flaky.calls[-1]["n"] == 1
        _Flaky.plan, _Flaky.calls = [500] * 10, []
        with pytest.raises(GenerationError, match="500.*after 2 attempts|after 2 attempts.*500"):
            OpenAIBackend(url, "m", max_retries=2).generate([[{"role": "user", "content": "x"}]],
                                                            SamplingParams(n=1))
        assert len(_Flaky.calls) == 2
    finally:
        srv.shutdown()
