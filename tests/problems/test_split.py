"""The validation split: mbpp-dev is re-derivable from its rule and never overlaps mbpp-train."""

from __future__ import annotations

from pathlib import Path

from plumcode.problems import decontaminate, load_benchmark
from plumcode.problems.loaders import MBPP_DEV_IDS, MBPP_TRAIN_IDS, dev_rank


def test_dev_split_follows_its_rule(data_dir: Path) -> None:
    train = load_benchmark("mbpp-train")
    dev = load_benchmark("mbpp-dev")
    assert len(dev) == 50 and {p.metadata["task_id"] for p in dev} == set(MBPP_DEV_IDS)
    assert not {p.id for p in train} & {p.id for p in dev}
    assert len(train) + len(dev) == len(MBPP_TRAIN_IDS)
    assert all(p.tests and p.reference_solution and p.source == "mbpp-dev" for p in dev)
    # the rule: the 50 smallest hashes among the decontaminated train-split ids
    bench = [p for b in ("humaneval+", "mbpp+", "livecodebench") for p in load_benchmark(b, with_expected=False)]
    clean, _ = decontaminate(train + dev, bench, n=13)
    assert sorted((p.metadata["task_id"] for p in clean), key=dev_rank)[:50] == sorted(MBPP_DEV_IDS, key=dev_rank)


def test_limit_counts_split_problems(data_dir: Path) -> None:
    assert [p.metadata["task_id"] for p in load_benchmark("mbpp-dev", limit=3)] == sorted(MBPP_DEV_IDS)[:3]
