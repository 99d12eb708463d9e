"""Generation backends (transformers, OpenAI-compatible HTTP, llama.cpp, vLLM) behind one interface.

``load_backend(spec)`` builds one from a spec string; ``sample_problems`` is the sampling stage;
``build_prompt`` / ``extract_code`` turn problems into prompts and model output into programs.
Heavy engines (torch, llama.cpp, vLLM) are imported only when their backend is built.
"""

from plumcode.generation.base import Backend, Completion, Message, Prompt, SamplingParams
from plumcode.generation.hf import GenerationError
from plumcode.generation.loader import BackendSpec, load_backend, parse_spec
from plumcode.generation.prompts import build_prompt, extract, extract_code, stop_sequences
from plumcode.generation.sample import sample_problems

__all__ = ["Backend", "BackendSpec", "Completion", "GenerationError", "Message", "Prompt", "SamplingParams",
           "build_prompt", "extract", "extract_code", "load_backend", "parse_spec", "sample_problems",
           "stop_sequences"]
