"""``plumcode serve``: a minimal OpenAI-compatible server over the transformers backend.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``,
``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` (vLLM's API, so the online loop
hot-swaps the policy the same way on both), ``GET /health``.

Requests that arrive together are generated together: a worker thread drains the queue and
runs one batched ``generate`` per group of identical sampling parameters, so many concurrent
clients (the HTTP backend's fan-out) share forward passes. One policy is active at a time: after
an adapter is loaded, the base name answers 409 until it is unloaded, so a client never gets
samples of a policy it did not ask for.
"""


import argparse
import asyncio
import concurrent.futures as cf
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from plumcode.generation.base import Completion, Prompt, SamplingParams

log = logging.getLogger(__name__)


@dataclass
class _Job:
    prompts: list[Prompt]
    params: SamplingParams
    future: cf.Future


class Batcher:
    """Collects concurrent requests and generates those with equal sampling params in one call."""

    def __init__(self, backend: Any, max_wait_s: float = 0.02):
        self.backend = backend
        self.max_wait_s = max_wait_s
        self.q: queue.Queue[_Job | None] = queue.Queue()
        self._t = threading.Thread(target=self._loop, name="plumcode-batcher", daemon=True)
        self._t.start()

    def submit(self, prompts: list[Prompt], params: SamplingParams) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.q.put(_Job(prompts, params, fut))
        return fut

    def stop(self) -> None:
        self.q.put(None)

    def _loop(self) -> None:
        while True:
            first = self.q.get()
            if first is None:
                return
            jobs = [first]
            deadline = time.monotonic() + self.max_wait_s
            while True:
                try:
                    j = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if j is None:
                    self.q.put(None)
                    break
                jobs.append(j)
            groups: dict[SamplingParams, list[_Job]] = {}
            for j in jobs:
                groups.setdefault(j.params, []).append(j)
            for params, group in groups.items():
                prompts = [p for j in group for p in j.prompts]
                try:
                    res = self.backend.generate(prompts, params)
                except Exception as e:  # noqa: BLE001 - delivered to each waiting request
                    for j in group:
                        j.future.set_exception(e)
                    continue
                i = 0
                for j in group:
                    j.future.set_result(res[i:i + len(j.prompts)])
                    i += len(j.prompts)


def create_app(backend: Any, served_name: str, api_key: str | None = None, max_wait_s: float = 0.02) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    app = FastAPI(title="plumcode serve")
    batcher = Batcher(backend, max_wait_s)
    state: dict[str, Any] = {"adapter_name": None}  # an adapter given at start is served as served_name

    def err(status: int, message: str, type_: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": type_, "code": status}}, status_code=status)

    def served() -> list[str]:
        return [served_name] + ([state["adapter_name"]] if state["adapter_name"] else [])

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith("/v1"):
            if request.headers.get("authorization", "") != f"Bearer {api_key}":
                return err(401, "invalid or missing API key", "authentication_error")
        return await call_next(request)

    def check_model(name: str | None) -> JSONResponse | None:
        if name in (None, "") and not state["adapter_name"]:
            return None
        if state["adapter_name"] and name in (served_name, None, ""):
            return err(409, f"adapter {state['adapter_name']!r} is loaded; ask for it by that name or POST "
                            "/v1/unload_lora_adapter to sample the base", "conflict")
        if name not in served():
            return err(404, f"The model `{name}` does not exist. Served: {', '.join(served())}", "NotFoundError")
        return None

    def params_from(body: dict) -> SamplingParams:
        stop = body.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        return SamplingParams(n=int(body.get("n") or 1), temperature=float(body.get("temperature", 1.0)),
                              top_p=float(body.get("top_p", 1.0)), max_tokens=int(body.get("max_tokens") or 256),
                              stop=tuple(stop), seed=body.get("seed"))

    async def run(prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return await asyncio.wrap_future(batcher.submit(prompts, params))

    def usage(rows: list[list[Completion]]) -> dict:
        pt = sum(r[0].prompt_tokens for r in rows if r)
        ct = sum(c.n_tokens for r in rows for c in r)
        return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}

    def overflow(rows: list[list[Completion]]) -> JSONResponse | None:
        for r in rows:
            for c in r:
                if c.finish_reason == "error":
                    return err(400, str(c.meta.get("error", "generation error")), "invalid_request_error")
        return None

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "plumcode",
                                            "created": 0} for m in served()]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        if (bad := check_model(body.get("model"))) is not None:
            return bad
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            return err(400, "'prompt' must be a string or a list of strings", "invalid_request_error")
        params = params_from(body)
        rows = await run(prompts, params)
        if (bad := overflow(rows)) is not None:
            return bad
        choices = [{"index": i * params.n + k, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
                   for i, r in enumerate(rows) for k, c in enumerate(r)]
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model") or served()[-1], "choices": choices, "usage": usage(rows)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if (bad := check_model(body.get("model"))) is not None:
            return bad
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return err(400, "'messages' must be a non-empty list", "invalid_request_error")
        params = params_from(body)
        rows = await run([[{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in msgs]],
                         params)
        if (bad := overflow(rows)) is not None:
            return bad
        choices = [{"index": k, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
                   for k, c in enumerate(rows[0])]
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or served()[-1], "choices": choices, "usage": usage(rows)}

    @app.post("/v1/load_lora_adapter")
    async def load_lora(request: Request) -> Any:
        body = await request.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return err(400, "need lora_name and lora_path", "invalid_request_error")
        try:
            sha = await run_in_threadpool(backend.load_adapter, path)
        except Exception as e:  # noqa: BLE001 - reported to the client
            return err(400, f"cannot load adapter {path}: {e}", "invalid_request_error")
        state["adapter_name"] = name
        log.info("serving adapter %s as %r", path, name)
        return {"status": "ok", "lora_name": name, "adapter_sha256": sha}

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora(request: Request) -> Any:
        body = await request.json()
        if not state["adapter_name"] or body.get("lora_name") not in (None, state["adapter_name"]):
            return err(404, f"adapter {body.get('lora_name')!r} is not loaded", "NotFoundError")
        await run_in_threadpool(backend.unload_adapter)
        state["adapter_name"] = None
        return {"status": "ok"}

    @app.get("/v1/policy")
    async def policy() -> dict:
        return backend.identity() | {"served": served()}

    app.state.batcher = batcher
    return app


def register(subparsers: argparse._SubParsersAction, name: str, help: str) -> None:
    p = subparsers.add_parser(name, help=help, description=__doc__.splitlines()[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="default", help="hf model: registered name, dir, .gguf or hub id")
    p.add_argument("--adapter", default=None, help="LoRA adapter dir to start with")
    p.add_argument("--served-model-name", default=None, help="model id clients use (default: --model)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--api-key", default=os.environ.get("PLUMCODE_SERVE_API_KEY"),
                   help="require 'Authorization: Bearer KEY' (env PLUMCODE_SERVE_API_KEY)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from plumcode.generation.hf import TransformersBackend

    backend = TransformersBackend(args.model, adapter=args.adapter, dtype=args.dtype, batch_size=args.batch_size,
                                  threads=args.threads)
    app = create_app(backend, args.served_model_name or args.model, api_key=args.api_key)
    print(f"plumcode serve: {args.model} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    app.state.batcher.stop()
    return 0
