"""Managed generation servers: start ``vllm serve`` (GPU) or ``plumcode serve`` (CPU) with a
checkpoint, wait until healthy, hot-load a LoRA adapter or restart with new weights between
rounds, and stop cleanly.

``managed_backend`` (the ``managed:<engine>:<model>`` spec of ``load_backend``) ties one server's
lifetime to an OpenAI-compatible backend: the loop closes its backend before training and loads the
next round's spec after, so a managed server is stopped, and restarted on the new weights.

The server runs in its own process group (``start_new_session``); stopping signals the whole
group (SIGTERM, then SIGKILL after a grace period) and waits until no process of the group is
left, so engine workers (vLLM's tensor-parallel ranks, tokenizer pools) cannot be orphaned.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plumcode.generation.hf import CKPT_META, GenerationError, adapter_dir, weights_sha256
from plumcode.generation.loader import parse_spec
from plumcode.generation.openai_http import OpenAIBackend

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class ServerSpec:
    argv: list[str]
    base_url: str                     # http://host:port (the OpenAI API is under /v1)
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 900.0  # vLLM loading a 7B model + CUDA graphs takes minutes
    log_path: str | None = None       # server stdout+stderr; default a temp file
    lora_load_path: str = "/v1/load_lora_adapter"
    lora_unload_path: str = "/v1/unload_lora_adapter"

    @property
    def openai_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1"


def vllm_spec(model: str, *, port: int | None = None, host: str = "127.0.0.1", served_model_name: str | None = None,
              enable_lora: bool = True, max_lora_rank: int = 64, max_loras: int = 2,
              tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
              max_model_len: int | None = None, seed: int | None = None, extra_args: list[str] = (),
              executable: str = "vllm") -> ServerSpec:
    """``vllm serve`` with runtime LoRA loading enabled (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``)."""
    port = port or free_port(host)
    argv = [executable, "serve", model, "--host", host, "--port", str(port),
            "--tensor-parallel-size", str(tensor_parallel_size),
            "--gpu-memory-utilization", str(gpu_memory_utilization)]
    if served_model_name:
        argv += ["--served-model-name", served_model_name]
    if enable_lora:
        argv += ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(max_loras)]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    argv += list(extra_args)
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"} if enable_lora else {}
    return ServerSpec(argv, f"http://{host}:{port}", "/health", env)


def plumcode_spec(model: str, *, port: int | None = None, host: str = "127.0.0.1",
                  served_model_name: str | None = None, threads: int | None = None, dtype: str | None = None,
                  batch_size: int | None = None, extra_args: list[str] = ()) -> ServerSpec:
    """``plumcode serve`` (transformers backend; CPU or one GPU) with the same LoRA endpoints."""
    port = port or free_port(host)
    argv = [sys.executable, "-m", "plumcode", "serve", "--model", model, "--host", host, "--port", str(port)]
    for flag, value in (("--served-model-name", served_model_name), ("--threads", threads), ("--dtype", dtype),
                        ("--batch-size", batch_size)):
        if value is not None:
            argv += [flag, str(value)]
    argv += list(extra_args)
    return ServerSpec(argv, f"http://{host}:{port}", "/health", {}, startup_timeout_s=300.0)


class ServerError(RuntimeError):
    pass


_LIVE: weakref.WeakSet[ManagedServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # a crashed driver must not leave a GPU server behind
    for s in list(_LIVE):
        with contextlib.suppress(Exception):
            s.stop(grace_s=5.0)


class ManagedServer:
    """One server process group. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, spec: ServerSpec):
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.loaded_adapters: dict[str, str] = {}
        self.starts = 0

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> str | None:
        return self.spec.log_path

    def start(self) -> ManagedServer:
        if self.running:
            return self
        if self.spec.log_path is None:
            fd, path = tempfile.mkstemp(prefix="plumcode-server-", suffix=".log")
            os.close(fd)
            self.spec = replace(self.spec, log_path=path)
        Path(self.spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.spec.log_path, "ab")
        log.info("starting server: %s (log %s)", " ".join(self.spec.argv), self.spec.log_path)
        self.proc = subprocess.Popen(self.spec.argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **self.spec.env},
                                     start_new_session=True)
        self.starts += 1
        self.loaded_adapters = {}
        _LIVE.add(self)
        try:
            self.wait_healthy()
        except BaseException:
            self.stop(grace_s=5.0)
            raise
        return self

    def wait_healthy(self, timeout_s: float | None = None) -> None:
        import httpx

        timeout_s = self.spec.startup_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        url = self.spec.base_url.rstrip("/") + self.spec.health_path
        delay = 0.1
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ServerError(f"server exited with code {code} before it was healthy; "
                                  f"last log lines:\n{self.log_tail()}")
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"server not healthy at {url} after {timeout_s:.0f}s; last log lines:\n"
                                  f"{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.spec.base_url.rstrip("/") + self.spec.health_path, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace_s``; wait for all of it."""
        proc, self.proc = self.proc, None
        if proc is not None:
            pgid = proc.pid  # leader of its own session/group
            _signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + grace_s
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(pgid) or proc.poll() is None:
                _signal_group(pgid, signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 10.0
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE.discard(self)

    def restart(self, argv: list[str] | None = None, **spec_changes: object) -> ManagedServer:
        """Stop and start again, e.g. with a new checkpoint (``argv`` from ``vllm_spec(new_ckpt)``)."""
        self.stop()
        if argv is not None:
            spec_changes["argv"] = argv
        if spec_changes:
            self.spec = replace(self.spec, **spec_changes)
        return self.start()

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- adapters
    def load_lora(self, name: str, path: str | os.PathLike) -> None:
        """Hot-load a LoRA adapter under ``name`` (vLLM's and plumcode's ``/v1/load_lora_adapter``);
        requests then pick it with ``model=name``."""
        self._post(self.spec.lora_load_path, {"lora_name": name, "lora_path": str(path)})
        self.loaded_adapters[name] = str(path)

    def unload_lora(self, name: str) -> None:
        self._post(self.spec.lora_unload_path, {"lora_name": name})
        self.loaded_adapters.pop(name, None)

    def models(self) -> list[str]:
        import httpx

        r = httpx.get(self.spec.openai_url + "/models", timeout=10.0)
        r.raise_for_status()
        return [m["id"] for m in r.json().get("data", [])]

    def _post(self, path: str, body: dict) -> None:
        import httpx

        if not self.running:
            raise ServerError("server is not running")
        r = httpx.post(self.spec.base_url.rstrip("/") + path, json=body, timeout=600.0)
        if r.status_code >= 300:
            raise ServerError(f"POST {path} -> HTTP {r.status_code}: {r.text[:500]}")

    def log_tail(self, n: int = 30) -> str:
        if not self.spec.log_path or not os.path.exists(self.spec.log_path):
            return ""
        with open(self.spec.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """True while any process (zombies of our own children excepted) is left in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies; look at /proc to tell running members from zombies
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            return True
    return False


# -- managed:<engine>:<model> ---------------------------------------------------------------------

ENGINES = ("vllm", "plumcode")
_SPEC_FNS = {"vllm": vllm_spec, "plumcode": plumcode_spec}
_NOT_OPTIONS = {"port", "host", "served_model_name", "extra_args", "executable"}
# options of the managed backend itself (the rest are the engine's server options)
MANAGED_OPTIONS = ("adapter", "adapter_name", "log_dir", "startup_timeout_s", "concurrency", "timeout_s",
                   "max_retries", "mode")


def server_options(engine: str) -> list[str]:
    """The server options ``managed:<engine>:`` takes: keyword arguments of ``vllm_spec`` / ``plumcode_spec``."""
    if engine not in _SPEC_FNS:
        raise ValueError(f"unknown managed engine {engine!r} (one of {', '.join(ENGINES)})")
    params = inspect.signature(_SPEC_FNS[engine]).parameters
    return [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in _NOT_OPTIONS]


def checkpoint_weights(model: str | os.PathLike) -> str:
    """What a server loads for ``model``: a plumcode full fine-tuning checkpoint's ``model/`` (vLLM
    cannot read the checkpoint layout), a local path made absolute (it names the policy), else as is."""
    p = Path(model).expanduser()
    if (p / CKPT_META).is_file() and (p / "model" / "config.json").is_file():
        p = p / "model"
    return str(p.resolve()) if p.exists() else str(model)


def find_vllm(executable: str = "vllm") -> str:
    """The ``vllm`` CLI next to this interpreter (a venv) or on PATH; a clear error without it."""
    local = Path(sys.executable).parent / executable
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(executable)
    if found is None:
        raise GenerationError(f"managed:vllm needs vLLM, but no {executable!r} executable is next to "
                              f"{sys.executable} or on PATH: pip install 'plumcode[vllm]' on a CUDA machine, "
                              "or use managed:plumcode (transformers, CPU or one GPU)")
    return found


class ManagedOpenAIBackend(OpenAIBackend):
    """An OpenAI backend that owns its server: ``close()`` stops the server's whole process group."""

    def __init__(self, server: ManagedServer, engine: str, weights: str, **client_opts: Any):
        self.server, self.engine, self.weights = server, engine, weights
        self._weights_sha: str | None = None
        # the server was started without a key; a key in the environment is for other servers
        super().__init__(server.spec.openai_url, weights, api_key="", **client_opts)

    def identity(self) -> dict:
        if self._weights_sha is None:
            self._weights_sha = weights_sha256(self.weights)
        return super().identity() | {"managed": self.engine, "model": self.weights,
                                     "model_sha256": self._weights_sha, "server_log": self.server.log_path}

    def load_adapter(self, path: str, name: str | None = None) -> str:
        # a plumcode checkpoint's adapter/ inside: vLLM reads PEFT directories only
        return super().load_adapter(str(adapter_dir(path)), name)

    def close(self) -> None:
        self.server.stop()


def managed_backend(engine: str, model: str, *, adapter: str | None = None, adapter_name: str | None = None,
                    log_dir: str | None = None, startup_timeout_s: float | None = None, concurrency: int = 16,
                    timeout_s: float = 600.0, max_retries: int = 6, mode: str = "auto",
                    **server_opts: Any) -> ManagedOpenAIBackend:
    """Start a ``vllm serve`` / ``plumcode serve`` on ``model`` (a free port on 127.0.0.1), wait until
    healthy, hot-load ``adapter`` if given, and return the backend that samples from it.

    The server serves the base weights under their path; a LoRA adapter is hot-loaded (as the loop's
    ``?adapter=`` does for any server), so the LoRA path never restarts more than the loop asks.
    """
    allowed = server_options(engine)
    bad = sorted(set(server_opts) - set(allowed))
    if bad:
        raise ValueError(f"unknown option(s) {', '.join(bad)} for managed:{engine}; it takes: "
                         f"{', '.join([*MANAGED_OPTIONS, *allowed])}")
    weights = checkpoint_weights(model)
    if engine == "vllm":
        spec = vllm_spec(weights, executable=find_vllm(), **server_opts)
    else:
        spec = plumcode_spec(weights, **server_opts)
    spec.env.update({"PLUMCODE_SERVE_API_KEY": "", "VLLM_API_KEY": ""})  # no key: loopback, loop's own client
    if startup_timeout_s is not None:
        spec.startup_timeout_s = float(startup_timeout_s)
    if log_dir is not None:
        port = spec.base_url.rsplit(":", 1)[-1]
        spec.log_path = str(Path(log_dir) / f"managed-{engine}-{port}.log")
    else:
        spec.log_path = os.path.join(tempfile.mkdtemp(prefix="plumcode-managed-"), f"{engine}.log")
    server = ManagedServer(spec)
    try:
        server.start()
    except ServerError as e:
        raise GenerationError(f"managed:{engine} server on {weights} did not start (log {spec.log_path}): {e}") \
            from None
    try:
        return ManagedOpenAIBackend(server, engine, weights, adapter=adapter, adapter_name=adapter_name,
                                    concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
                                    mode=mode)
    except BaseException:
        server.stop(grace_s=5.0)
        raise


def load_managed_spec(spec: str, **opts: Any) -> ManagedOpenAIBackend:
    """``load_backend("managed:<engine>:<model>?...", **opts)`` (registered with the generation
    loader): spec options must be the engine's or the backend's; keyword ``opts`` it does not
    take are dropped, as for every backend."""
    ps = parse_spec(spec)
    if ps.target not in ENGINES:
        raise ValueError(f"model spec {spec!r}: unknown managed engine {ps.target!r} (one of {', '.join(ENGINES)})")
    allowed = [*MANAGED_OPTIONS, *server_options(ps.target)]
    bad = [k for k in ps.options if k not in allowed]
    if bad:
        raise ValueError(f"unknown option(s) {', '.join(bad)} in spec {spec!r}; managed:{ps.target} takes: "
                         f"{', '.join(allowed)}")
    options = dict(ps.options)
    options.update({k: v for k, v in opts.items() if v is not None and k in allowed})
    return managed_backend(ps.target, ps.model or "", **options)
