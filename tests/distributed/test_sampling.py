"""MultiBackend over two real ``plumcode serve`` endpoints (tiny model): load balance, a server
that goes down (marked unhealthy, its prompts retried on the other), coming back after a probe,
and resumable sampling through the generation stage's own ``sample_problems``."""

from __future__ import annotations

import json

import pytest

from plumcode.distributed.sampling import AllReplicasDown, MultiBackend, http_health_probe
from plumcode.distributed.servers import ManagedServer, plumcode_spec
from plumcode.problems.schema import Problem

pytest.importorskip("transformers")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    from plumcode.testing.tiny import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    out = []
    for i in range(2):
        spec = plumcode_spec(str(model), extra_args=["--threads", "1", "--served-model-name", "tiny"])
        spec.log_path = str(tmp_path_factory.getbasetemp() / f"serve{i}.log")
        out.append(ManagedServer(spec).start())
    yield out
    for s in out:
        s.stop()


def _backend(srv: ManagedServer):
    from plumcode.generation.openai_http import OpenAIBackend

    return OpenAIBackend(srv.spec.openai_url, "tiny", max_retries=1, timeout_s=60)


PROBLEMS = [Problem(f"p{i}", f"Write a function f that returns {i}.", entry_point="f") for i in range(8)]


def _count(path) -> dict[str, int]:
    c: dict[str, int] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        c[r["problem_id"]] = c.get(r["problem_id"], 0) + 1
    return c


def test_balanced_over_two_endpoints_and_resumable(servers, tmp_path):
    from plumcode.generation import SamplingParams, sample_problems

    mb = MultiBackend([_backend(s) for s in servers], prompts_per_request=1, max_outstanding=1,
                      probe=http_health_probe)
    params = SamplingParams(n=2, temperature=0.8, max_tokens=8, seed=1)
    out = tmp_path / "samples.jsonl"
    sample_problems(PROBLEMS[:4], mb, params, out, progress=False)
    sample_problems(PROBLEMS, mb, params, out, progress=False)  # resumes: only p4..p7 are new
    assert _count(out) == {p.id: 2 for p in PROBLEMS}
    st = mb.stats()
    assert all(r["requests"] >= 2 for r in st), st  # both endpoints did work
    assert sum(r["prompts"] for r in st) == 8  # nothing sampled twice
    assert mb.identity()["replicas"] == 2


def test_endpoint_down_is_routed_around_then_comes_back(servers, tmp_path):
    from plumcode.generation import SamplingParams

    a, b = servers
    mb = MultiBackend([_backend(a), _backend(b)], prompts_per_request=1, max_outstanding=1, cooldown_s=0.5,
                      probe=http_health_probe)
    params = SamplingParams(n=1, temperature=0.8, max_tokens=4, seed=2)
    prompts = [f"def f{i}():" for i in range(6)]
    b.stop()
    try:
        res = mb.generate(prompts, params)
        assert len(res) == 6 and all(len(c) == 1 for c in res)
        ra, rb = mb.replicas
        assert rb.failures >= 1 and not rb.healthy and ra.prompts == 6
        b.start()  # same port: the probe sees it healthy after the cool-down
        import time

        time.sleep(0.6)
        mb.generate(prompts, params)
        assert rb.healthy and rb.prompts - rb.failures >= 1
    finally:
        if not b.running:
            b.start()


def test_all_down_raises():
    from plumcode.distributed.servers import free_port
    from plumcode.generation import SamplingParams
    from plumcode.generation.openai_http import OpenAIBackend

    dead = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "tiny", max_retries=1, check=False)
    mb = MultiBackend([dead], cooldown_s=0.2, all_down_timeout_s=1.0, max_attempts=10)
    with pytest.raises(AllReplicasDown, match="no healthy replica"):
        mb.generate(["def g():"], SamplingParams(n=1, max_tokens=4))


def test_lora_hot_load_on_managed_plumcode_server(servers, tmp_path):
    """ManagedServer.load_lora changes what the server samples; unload restores the base."""
    import httpx
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    srv = servers[1]
    base = AutoModelForCausalLM.from_pretrained(srv.spec.argv[srv.spec.argv.index("--model") + 1])
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 2.0)  # non-zero B: the adapter changes the output
    adapter = tmp_path / "adapter"
    peft.save_pretrained(adapter)
    body = {"model": "tiny", "prompt": "def add(a, b):", "max_tokens": 8, "temperature": 0.0}
    r0 = httpx.post(srv.spec.openai_url + "/completions", json=body, timeout=120).json()
    srv.load_lora("round-001", adapter)
    try:
        assert "round-001" in srv.models()
        r1 = httpx.post(srv.spec.openai_url + "/completions", json={**body, "model": "round-001"},
                        timeout=120).json()
        assert r0["choices"][0]["text"] != r1["choices"][0]["text"]
    finally:
        srv.unload_lora("round-001")
    r2 = httpx.post(srv.spec.openai_url + "/completions", json=body, timeout=120).json()
    assert r2["choices"][0]["text"] == r0["choices"][0]["text"]


def test_refuses_replicas_of_different_policies():
    class Fake:
        name = "x"

        def __init__(self, sha):
            self.sha = sha

        def identity(self):
            return {"model": "m", "model_sha256": self.sha, "adapter_sha256": None}

    with pytest.raises(ValueError, match="different policies"):
        MultiBackend([Fake("a"), Fake("b")])


def test_multi_spec_from_config_strings(servers, tmp_path):
    """``multi:a|b`` in any model field (loop config, CLI) builds the same balanced MultiBackend, and
    after training every replica gets the round's adapter."""
    from plumcode.generation import SamplingParams, load_backend, sample_problems
    from plumcode.loop.stages import with_checkpoint

    spec = "multi:" + "|".join(f"openai:{s.spec.openai_url}#tiny" for s in servers)
    mb = load_backend(spec)
    try:
        assert isinstance(mb, MultiBackend) and mb.identity()["replicas"] == 2
        out = tmp_path / "samples.jsonl"
        sample_problems(PROBLEMS, mb, SamplingParams(n=1, temperature=0.0, max_tokens=8), out, progress=False)
        assert _count(out) == {p.id: 1 for p in PROBLEMS}
        assert all(r["requests"] > 0 for r in mb.stats())
    finally:
        mb.close()
    ck = tmp_path / "round-000" / "checkpoint"
    nxt = with_checkpoint(spec, ck, lora=True, reload="auto")
    assert nxt.startswith("multi:") and nxt.count(f"adapter={ck.resolve()}") == 2
    with pytest.raises(ValueError, match="no replica"):
        load_backend("multi:")
