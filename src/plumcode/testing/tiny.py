"""Build a tiny random-weight Qwen2-architecture chat model with a tokenizer trained on the spot.

Tests of generation, training and the loop use it so CI needs no model download. The model has the
same architecture family and chat template format (ChatML) as the embedded default
(Qwen2.5-Coder-0.5B-Instruct), so code paths are identical; only sizes differ.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "def reverse(s):\n    return s[::-1]\n",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "assert add(1, 2) == 3\nassert is_even(4) is True\n",
    "Write a Python function that returns the sum of a list of numbers.\n",
    "```python\nimport math\nprint(math.sqrt(16))\n```\n",
    "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n",
    "Here is the code:\n```python\ndef f(x):\n    return [i * i for i in x]\n```\n",
]


def build_tiny_model(out_dir: str | Path, *, vocab_size: int = 512, hidden_size: int = 64,
                     num_layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Qwen2ForCausalLM + fast tokenizer to ``out_dir`` and return the path."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     bos_token=None, unk_token=None)
    hf_tok.chat_template = CHATML_TEMPLATE
    hf_tok.save_pretrained(out)

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(hf_tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True,
        eos_token_id=hf_tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=hf_tok.convert_tokens_to_ids("<|endoftext|>"), bos_token_id=None,
    )
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    model.save_pretrained(out)
    return out
