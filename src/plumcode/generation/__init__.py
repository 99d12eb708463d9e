"""Generation backends (transformers, OpenAI-compatible HTTP, llama.cpp, vLLM) behind one interface."""

from plumcode.generation.base import Backend, Completion, Message, Prompt, SamplingParams

__all__ = ["Backend", "Completion", "Message", "Prompt", "SamplingParams"]
