"""OpenAI-compatible HTTP backend: vLLM, SGLang, TGI, llama.cpp server, ``plumcode serve``, hosted APIs.

Requests go out concurrently (asyncio + httpx, bounded by ``concurrency``) so a batching server
sees many sequences at once. Transient failures (429, 5xx, timeouts, dropped connections) are
retried with exponential backoff and jitter (tenacity); permanent ones fail fast with a message
that says what to fix: a wrong key (401/403), a wrong model name (404, with the models the
server does serve), an unreachable URL. Message prompts use ``/chat/completions`` and string
prompts ``/completions``; ``n`` is sent natively and any shortfall (servers that ignore ``n``) is
filled by extra requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from plumcode.generation.base import Completion, Prompt, SamplingParams
from plumcode.generation.hf import GenerationError, adapter_sha256

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
    def __init__(self, msg: str, status: int | None = None):
        super().__init__(msg)
        self.status = status


def _retryable(e: BaseException) -> bool:
    return isinstance(e, (_Transient, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError,
                          httpx.WriteError))


class OpenAIBackend:
    """Generate through an OpenAI-compatible server at ``base_url`` (``.../v1``) with ``model``."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, *, api_key: str | None = None,
                 concurrency: int = 16, timeout_s: float = 600.0, max_retries: int = 6,
                 adapter: str | None = None, adapter_name: str | None = None, mode: str = "auto",
                 check: bool = True):
        base_url = base_url.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            base_url = "http://" + base_url
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        self.base_url = base_url
        self.api_key = api_key if api_key is not None else (os.environ.get("PLUMCODE_API_KEY")
                                                            or os.environ.get("OPENAI_API_KEY"))
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = timeout_s
        self.max_retries = max(1, int(max_retries))
        self.mode = mode  # auto | chat | completion
        self.adapter: str | None = None
        self._adapter_sha: str | None = None
        self.model = model or ""
        if check or not self.model:
            served = self.list_models()
            if not self.model:
                if not served:
                    raise GenerationError(f"{self.base_url} serves no models")
                self.model = served[0]
            elif self.model not in served and not adapter:
                raise GenerationError(f"model {self.model!r} not found on {self.base_url}; it serves: "
                                      f"{', '.join(served) or '(none)'}")
        self.base_model = self.model
        if adapter:
            self.load_adapter(adapter, adapter_name)

    # -- plumbing --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _raise_for(self, r: httpx.Response, what: str) -> None:
        if r.status_code < 400:
            return
        try:
            body = r.json()
            msg = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else \
                (body.get("detail") or body.get("message") or body.get("error"))
        except ValueError:
            msg = r.text[:300]
        msg = str(msg or r.reason_phrase)
        if r.status_code in RETRY_STATUS:
            raise _Transient(f"{what}: HTTP {r.status_code}: {msg}", r.status_code)
        if r.status_code in (401, 403):
            raise GenerationError(f"{what}: authentication failed at {self.base_url} (HTTP {r.status_code}: "
                                  f"{msg}); set OPENAI_API_KEY or PLUMCODE_API_KEY to a valid key")
        if r.status_code == 404 or "does not exist" in msg or "not found" in msg.lower():
            try:
                served = ", ".join(self.list_models()) or "(none)"
            except GenerationError:
                served = "(could not list)"
            raise GenerationError(f"{what}: model {self.model!r} not found at {self.base_url} (HTTP "
                                  f"{r.status_code}: {msg}); the server has: {served}")
        raise GenerationError(f"{what}: HTTP {r.status_code} from {self.base_url}: {msg}")

    def list_models(self) -> list[str]:
        """Model ids the server serves (``GET /v1/models``)."""
        try:
            r = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=30)
        except httpx.HTTPError as e:
            raise GenerationError(f"cannot reach {self.base_url} ({type(e).__name__}: {e}); is the server "
                                  "running and the URL right?") from None
        if r.status_code in (401, 403):
            raise GenerationError(f"authentication failed at {self.base_url} (HTTP {r.status_code}); set "
                                  "OPENAI_API_KEY or PLUMCODE_API_KEY to a valid key")
        if r.status_code >= 400:
            raise GenerationError(f"GET {self.base_url}/models: HTTP {r.status_code}: {r.text[:200]}")
        return [m.get("id", "") for m in r.json().get("data", [])]

    def load_adapter(self, path: str, name: str | None = None) -> str:
        """Hot-load a LoRA adapter into the server (vLLM / ``plumcode serve`` API) and sample from it."""
        sha = adapter_sha256(path)
        name = name or f"policy-{sha[:12]}"
        try:
            r = httpx.post(f"{self.base_url}/load_lora_adapter", headers=self._headers(), timeout=600,
                           json={"lora_name": name, "lora_path": str(os.path.abspath(path))})
        except httpx.HTTPError as e:
            raise GenerationError(f"cannot reach {self.base_url} to load adapter ({e})") from None
        if r.status_code >= 400 and "already" not in r.text:
            raise GenerationError(f"server refused adapter {path}: HTTP {r.status_code}: {r.text[:300]} (vLLM needs "
                                  "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)")
        self.model, self.adapter, self._adapter_sha = name, str(path), sha
        return sha

    def identity(self) -> dict:
        return {"backend": self.name, "base_url": self.base_url, "model": self.base_model,
                "adapter": self.adapter, "adapter_sha256": self._adapter_sha, "served_as": self.model}

    # -- generation ------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        coro = self.agenerate(prompts, params)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        box: dict[str, Any] = {}  # called from inside an event loop: run ours in a thread

        def target() -> None:
            try:
                box["v"] = asyncio.run(coro)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                box["e"] = e

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box["v"]

    async def agenerate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits, headers=self._headers()) as client:
            tasks = [self._one_prompt(client, sem, i, p, params) for i, p in enumerate(prompts)]
            return list(await asyncio.gather(*tasks))

    async def _one_prompt(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, idx: int, prompt: Prompt,
                          params: SamplingParams) -> list[Completion]:
        got: list[Completion] = []
        attempt = 0
        while len(got) < params.n:
            want = params.n - len(got)
            seed = None if params.seed is None else params.seed + idx * 1000 + attempt
            async with sem:
                got.extend(await self._request(client, prompt, params, want, seed))
            attempt += 1
            if attempt > params.n + 2:  # server keeps returning nothing: do not loop forever
                raise GenerationError(f"{self.base_url} returned {len(got)} of {params.n} choices repeatedly")
        return got[: params.n]

    async def _request(self, client: httpx.AsyncClient, prompt: Prompt, params: SamplingParams, n: int,
                       seed: int | None) -> list[Completion]:
        chat = not isinstance(prompt, str)
        if self.mode == "chat" and not chat:
            prompt, chat = [{"role": "user", "content": prompt}], True
        body: dict[str, Any] = {"model": self.model, "max_tokens": params.max_tokens, "n": n,
                                "temperature": max(0.0, params.temperature), "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)[:4]  # OpenAI allows 4; the rest are applied locally
        if seed is not None:
            body["seed"] = seed
        if chat:
            body["messages"] = list(prompt)
            url = f"{self.base_url}/chat/completions"
        else:
            body["prompt"] = prompt
            url = f"{self.base_url}/completions"
        what = f"POST {url.rsplit('/v1', 1)[-1]}"
        data: dict = {}
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.max_retries),
                                               wait=wait_exponential_jitter(max=30),
                                               retry=retry_if_exception(_retryable), reraise=True):
                with attempt:
                    try:
                        r = await client.post(url, json=body)
                    except httpx.ConnectError as e:
                        raise GenerationError(f"cannot reach {self.base_url} ({e}); is the server running?") from None
                    self._raise_for(r, what)
                    data = r.json()
        except (_Transient, httpx.TimeoutException, httpx.TransportError) as e:
            raise GenerationError(f"{what} at {self.base_url} still failing after {self.max_retries} attempts: "
                                  f"{type(e).__name__}: {e}") from None
        usage = data.get("usage") or {}
        choices = data.get("choices") or []
        out = []
        per_choice_tokens = (usage.get("completion_tokens") or 0) // max(1, len(choices))
        for ch in choices:
            text = ch.get("message", {}).get("content") if chat else ch.get("text")
            text = text or ""
            finish = ch.get("finish_reason") or "stop"
            for st in params.stop:
                cut = text.find(st)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            n_tok = (ch.get("usage") or {}).get("completion_tokens") or per_choice_tokens
            out.append(Completion(text, int(n_tok), "length" if finish == "length" else "stop",
                                  int(usage.get("prompt_tokens") or 0), {"finish": finish}))
        return out

    def close(self) -> None:
        pass
