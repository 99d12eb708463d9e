"""Code extraction on real-looking model outputs: each case is executed, not just string-compared."""

from __future__ import annotations

import pytest

from plumcode.generation.prompts import build_prompt, extract, extract_code, stop_sequences
from plumcode.problems.schema import Problem, TestCase

STUB = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    """
'''
HE = Problem(id="HumanEval/0", instruction="Check closeness.", prompt=STUB, entry_point="has_close_elements")
FREE = Problem(id="x/1", instruction="Write a function add(a, b) that returns a + b.", entry_point="add")
STDIO = Problem(id="lcb/1", instruction="Read two ints, print their sum.", entry_point=None,
                tests=[TestCase("stdio", input="1 2\n", output="3\n")])

BODY = """    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
"""
FULL = "from typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + BODY


def run_he(code: str) -> None:
    ns: dict = {}
    exec(compile(code, "<cand>", "exec"), ns)
    f = ns["has_close_elements"]
    assert f([1.0, 2.0, 3.0], 0.5) is False
    assert f([1.0, 2.8, 3.0], 0.3) is True


def run_add(code: str) -> None:
    ns: dict = {}
    exec(compile(code, "<cand>", "exec"), ns)
    assert ns["add"](2, 3) == 5


HE_CASES = {
    "fenced python": f"Here is the solution:\n\n```python\n{FULL}```\n\nThis checks every pair.",
    "fenced py": f"```py\n{FULL}```",
    "fenced bare": f"Sure!\n```\n{FULL}```\n",
    "fenced python3 with spaces": f"``` python3\n{FULL}```",
    "unclosed fence": f"Here you go:\n```python\n{FULL}",
    "unclosed fence then im_end": f"```python\n{FULL}<|im_end|>",
    "several blocks, entry second": ("First, an example of usage:\n```python\nprint(has_close_elements([1.0], 0.1))\n```\n"
                                     f"Implementation:\n```python\n{FULL}```\nTests:\n```python\n"
                                     "assert has_close_elements([1.0, 1.05], 0.1)\n```\n"),
    "other language block first": f"```bash\npip install numpy\n```\n```python\n{FULL}```",
    "no fence, prose before and after": f"Here is my solution.\n{FULL}\nThe function runs in O(n^2) time.",
    "no fence, pure code": FULL,
    "completion body only": BODY,
    "completion body, first line dedented": BODY.lstrip(),
    "body without header in fence": f"```python\n{BODY}```",
    "tabs": "```python\ndef has_close_elements(numbers, threshold):\n\tfor i, a in enumerate(numbers):\n"
            "\t\tfor j, b in enumerate(numbers):\n\t\t\tif i != j and abs(a - b) < threshold:\n"
            "\t\t\t\treturn True\n\treturn False\n```",
    "whole block indented": "```python\n" + "\n".join("    " + ln for ln in FULL.split("\n")) + "```",
    "main block and example usage": (f"```python\n{FULL}\n\nif __name__ == '__main__':\n    n = int(input())\n"
                                     "    print(has_close_elements([1.0] * n, 0.5))\n```"),
    "top-level asserts that fail": f"```python\n{FULL}\nassert has_close_elements([1.0, 2.0], 0.5) is True\n```",
    "truncated after function (max tokens)": f"```python\n{FULL}\n\nprint(has_close_elements([1.0, 2.0, 3.0], 0.5",
    "missing import of List": "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
                              + BODY + "```",
    "crlf line endings": f"```python\r\n{FULL}```".replace("\n", "\r\n"),
}


@pytest.mark.parametrize("case", sorted(HE_CASES))
def test_humaneval_outputs_extract_to_working_code(case: str) -> None:
    ex = extract(HE_CASES[case], HE)
    assert ex.reason == "", (case, ex)
    run_he(ex.code)


ADD_CASES = {
    "chat fenced": "Certainly! Below is a Python function:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
                   "You can call it like `add(1, 2)`.",
    "two blocks, helper first": "```python\ndef _plus(a, b):\n    return a + b\n```\nthen\n```python\n"
                                "def add(a, b):\n    return _plus(a, b)\n```",
    "lambda": "```python\nadd = lambda a, b: a + b\n```",
    "prose inline with code words": "To add numbers, define:\ndef add(a, b):\n    return a + b\nThat's it!",
    "class-free example loop": "```python\ndef add(a, b):\n    return a + b\n\nfor x in range(3):\n    print(add(x, x))\n```",
}


@pytest.mark.parametrize("case", sorted(ADD_CASES))
def test_freeform_outputs(case: str) -> None:
    run_add(extract_code(ADD_CASES[case], FREE))


def test_helpers_from_another_block_are_joined() -> None:
    code = extract_code(ADD_CASES["two blocks, helper first"], FREE)
    assert "_plus" in code
    run_add(code)


@pytest.mark.parametrize("text,reason", [
    ("", "empty completion"),
    ("   \n<|im_end|>", "empty completion"),
    ("I'm sorry, I can't help with that.", "no code in completion"),
    ("```python\ndef other(x):\n    return x\n```", "no definition of `add` in completion"),
])
def test_no_code_gives_empty_or_reason(text: str, reason: str) -> None:
    ex = extract(text, FREE)
    assert ex.reason == reason
    if reason.startswith(("empty", "no code")):
        assert ex.code == ""


def test_broken_code_is_kept_with_reason() -> None:
    ex = extract("```python\ndef add(a, b)\n    return a +\n```", FREE)
    assert ex.code.startswith("def add") and ex.reason == "extracted code does not parse"


def test_stdio_program_keeps_main_code() -> None:
    text = "```python\nimport sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n```"
    code = extract_code(text, STDIO)
    assert "print(a + b)" in code and "sys.stdin" in code


def test_prompts_and_stops() -> None:
    msgs = build_prompt(HE, "chat", system="be brief")
    assert msgs[0] == {"role": "system", "content": "be brief"}
    assert "def has_close_elements" in msgs[-1]["content"] and "```python" in msgs[-1]["content"]
    assert build_prompt(HE, "completion") == STUB
    assert "\ndef " in stop_sequences(HE, "completion") and stop_sequences(HE, "chat") == ()
    free = build_prompt(FREE, "chat")[0]["content"]
    assert "add(a, b)" in free
    nofn = Problem(id="p", instruction="Sort a list.", entry_point="sort_list")
    assert "`sort_list`" in build_prompt(nofn, "chat")[0]["content"]
    assert "standard input" in build_prompt(STDIO, "chat")[0]["content"]
    comp = build_prompt(nofn, "completion")
    assert comp.startswith("# Sort a list.") and comp.endswith("```python\n")
    with pytest.raises(ValueError, match="prompt style"):
        build_prompt(HE, "nope")
