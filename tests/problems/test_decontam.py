from __future__ import annotations

from pathlib import Path

from plumcode.problems import Problem, decontaminate, load_benchmark, load_instructions


def test_ngram_overlap_and_exact_match() -> None:
    bench = [Problem("B/1", "Write a function that checks if in a given list of numbers, any two numbers are closer "
                            "to each other than the given threshold.",
                     reference_solution="def has_close_elements(numbers, threshold):\n    for idx, elem in "
                                        "enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n"
                                        "            if idx != idx2:\n                return True\n"),
             Problem("B/2", "Reverse a string.")]
    train = [
        Problem("t/copy", "Please: check if in a given list of numbers, any two numbers are closer to each other "
                          "than the given threshold, then return a bool."),
        Problem("t/short", "  reverse a STRING! "),  # same words as B/2: identical after normalisation
        Problem("t/clean", "Write a function that sums the digits of a positive integer and returns the result."),
        Problem("t/code", "Something else entirely.", metadata={
            "output": "def f(numbers, threshold):\n    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in "
                      "enumerate(numbers):\n            if idx != idx2:\n                return True\n"}),
    ]
    kept, dropped = decontaminate(train, bench, code_n=13)
    assert [p.id for p in kept] == ["t/clean"]
    why = {d.problem.id: (d.benchmark_id, d.reason) for d in dropped}
    assert why["t/copy"][0] == "B/1" and why["t/copy"][1].startswith("13-gram in instruction")
    assert why["t/short"] == ("B/2", "identical instruction")
    assert why["t/code"][0] == "B/1" and "in code" in why["t/code"][1]
    # instructions only: the code overlap no longer counts
    kept2, _ = decontaminate(train, bench, code=False)
    assert {p.id for p in kept2} == {"t/clean", "t/code"}
    kept3, _ = decontaminate(train, bench)  # default code_n=30: this short shared loop is not enough
    assert {p.id for p in kept3} == {"t/clean", "t/code"}
    _, d = decontaminate([Problem("n", "print 1 2 3 4 5 6 7 8 9 10 11 12 13 14")],
                         [Problem("b", "numbers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")])
    assert d == []  # bare number runs are not evidence
    assert dropped[0].to_json()["id"] == "t/copy"
    # a shorter n catches shorter overlaps
    _, d5 = decontaminate([Problem("x", "numbers are closer to each other today")], bench, n=5)
    assert len(d5) == 1


def test_real_sets(data_dir: Path) -> None:
    bench = load_benchmark("humaneval") + load_benchmark("mbpp")
    train = load_instructions(data_dir / "code_alpaca_2k.json.gz")
    kept, dropped = decontaminate(train, bench)
    assert len(kept) + len(dropped) == len(train)
    assert len(dropped) < len(train) * 0.05  # different sources: overlap is rare
    # a benchmark problem planted in the training set is caught
    planted = load_benchmark("mbpp")[5]
    kept, dropped = decontaminate(train[:50] + [planted], bench)
    assert [d.problem.id for d in dropped][-1] == planted.id
