"""A tiny Qwen2 model taught, in a few seconds, to answer every chat prompt with one short
program followed by asserts, so the real loop sees real signal: greedy/low-temperature samples are
correct, hot samples are often broken, and as a test writer it writes parseable asserts."""

from __future__ import annotations

import random
from pathlib import Path

ANSWER = "```python\ndef add(a, b):\n    return a + b\n\nassert add(1, 2) == 3\nassert add(2, 2) == 4\n```"
_WORDS = ("write a python function that returns the sum of two numbers list string test add reverse even "
          "unit tests assert only code block signature").split()


def build_tiny_coder(out_dir: str | Path, prompts: list[list[dict]] = (), steps: int = 120, seed: int = 0) -> Path:
    """``prompts``: chat prompts the loop will send (test-writing and sampling), learnt first-hand;
    random short prompts are mixed in so unseen prompts get the same answer too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plumcode.testing.tiny import build_tiny_model

    torch.set_num_threads(1)  # tiny matrices: more threads only add barrier overhead
    path = build_tiny_model(out_dir, seed=seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    answer = tok(ANSWER + "<|im_end|>")["input_ids"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        rows = []
        for _ in range(8):
            if prompts and rng.random() < 0.75:
                msgs = list(rng.choice(prompts))
            else:
                msgs = [{"role": "user", "content": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 24)))}]
            if rng.random() < 0.3 and msgs[0]["role"] != "system":
                msgs.insert(0, {"role": "system", "content": "You are a helpful assistant."})
            prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            rows.append((tok(prompt)["input_ids"], answer))
        width = max(len(a) + len(b) for a, b in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (a, b) in enumerate(rows):
            ids[i, :len(a) + len(b)] = torch.tensor(a + b)
            labels[i, len(a):len(a) + len(b)] = torch.tensor(b)
            mask[i, :len(a) + len(b)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(path)
    return path


def tiny_coder_for_run(out_dir: str | Path, train: list, bench: list, n_tests: int) -> Path:
    """The tiny coder taught the exact prompts a loop run will send: test writing for the training
    problems, sampling for them and evaluation on the benchmark problems."""
    from plumcode.generation import build_prompt
    from plumcode.testgen.prompts import render

    prompts = [render("tests", p, "chat", n_tests).prompt for p in train]
    prompts += [build_prompt(p, "chat") for p in list(train) + list(bench)]
    return build_tiny_coder(out_dir, prompts)
