"""The one generation interface every engine implements.

A prompt is either a plain string (raw completion, for base models and HumanEval-style function
completion) or a list of chat messages ``[{"role": "user", "content": ...}]`` that the backend
renders with the model's own chat template. Backends return ``n`` completions per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Completion:
    text: str
    n_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    meta: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A text generator. ``identity()`` names the exact policy (model + adapter hash) so samples
    can say which policy produced them (on-policy bookkeeping)."""

    name: str

    def identity(self) -> dict: ...

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]: ...

    def close(self) -> None: ...
