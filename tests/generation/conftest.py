from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def make_adapter(base: Path, out: Path, seed: int = 1, scale: float = 2.0) -> Path:
    """A LoRA adapter with non-zero B (a fresh one is a no-op), so loading it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"]))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    peft.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_model, tmp_path_factory.mktemp("adapter") / "a1", seed=1)


@pytest.fixture(scope="session")
def tiny_adapter2(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_model, tmp_path_factory.mktemp("adapter") / "a2", seed=2)


@pytest.fixture(scope="session")
def tiny_backend(tiny_model: Path):
    from plumcode.generation.hf import TransformersBackend

    b = TransformersBackend(str(tiny_model), batch_size=8)
    yield b
