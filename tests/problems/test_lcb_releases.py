"""LiveCodeBench selection as its users make it: release versions (code_generation_lite's shard
files), lcb_runner's contest-date window, per-difficulty results, on files in the real schema."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from plumcode.cli import main
from plumcode.problems.livecodebench import load_livecodebench, release_shards, select_problems


def _private(cases: list[dict]) -> str:
    """code_generation_lite's private_test_cases: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def _stdin(qid: str, date: str, difficulty: str) -> dict:
    """An AtCoder-style record: print the sum of two integers."""
    return {"question_title": f"Sum {qid}", "question_content": "Print A+B.", "platform": "atcoder",
            "question_id": qid, "contest_id": qid.split("_")[0], "contest_date": date, "starter_code": "",
            "difficulty": difficulty,
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": _private([{"input": "5 7\n", "output": "12\n", "testtype": "stdin"}]),
            "metadata": "{}"}


def _functional(qid: str, date: str, difficulty: str) -> dict:
    """A LeetCode-style record: Solution.double(x) == 2 * x."""
    return {"question_title": "double", "question_content": "Return 2 * x.", "platform": "leetcode",
            "question_id": qid, "contest_id": "weekly-contest-1", "contest_date": date,
            "starter_code": "class Solution:\n    def double(self, x: int) -> int:\n        ",
            "difficulty": difficulty,
            "public_test_cases": json.dumps([{"input": "3", "output": "6", "testtype": "functional"}]),
            "private_test_cases": _private([{"input": "21", "output": "42", "testtype": "functional"}]),
            "metadata": json.dumps({"func_name": "double"})}


SHARDS = {  # shard file -> records; "abc350_a" is dated in v2's months but shipped in shard 3
    "test.jsonl": [_stdin("abc301_a", "2023-05-13T00:00:00", "easy"), _functional("2800", "2023-11-04T19:30:00",
                                                                                   "medium")],
    "test2.jsonl": [_stdin("abc349_b", "2024-04-13T00:00:00", "hard")],
    "test3.jsonl": [_stdin("abc350_a", "2024-05-20T00:00:00", "easy"), _functional("3200", "2024-06-15T19:30:00",
                                                                                   "hard")],
}
STDIN_OK = "a, b = map(int, input().split())\nprint(a + b)\n"
FUNC_OK = "class Solution:\n    def double(self, x: int) -> int:\n        return 2 * x\n"


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    d = tmp_path / "code_generation_lite"
    d.mkdir()
    for name, recs in SHARDS.items():
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    return d


def _ids(ps: list) -> list[str]:
    return [p.id for p in ps]


def test_release_tags_follow_code_generation_lite() -> None:
    assert release_shards("release_v1") == [1] and release_shards("release_v5") == [1, 2, 3, 4, 5]
    assert release_shards("v5") == [5] and release_shards("v4_v6") == [4, 5, 6]
    assert release_shards("release_latest") == [1, 2, 3, 4, 5, 6]
    for bad in ("v5_v4", "release_5", "latest_v2"):
        with pytest.raises(ValueError, match="unknown LiveCodeBench release"):
            release_shards(bad)


def test_release_from_the_shard_folder_is_exact(shard_dir: Path) -> None:
    ps, info = load_livecodebench(shard_dir, release="release_v2")
    assert _ids(ps) == ["abc301_a", "2800", "abc349_b"] and info["release_by"] == "shard files"
    assert _ids(load_livecodebench(shard_dir, release="v3")[0]) == ["abc350_a", "3200"]
    assert _ids(load_livecodebench(shard_dir, release="v2_v3")[0]) == ["abc349_b", "abc350_a", "3200"]
    assert len(load_livecodebench(shard_dir)[0]) == 5  # no release: every shard present
    with pytest.raises(FileNotFoundError, match="test4.jsonl"):
        load_livecodebench(shard_dir, release="release_v4")
    # private tests (base64/zlib/pickle) are decoded: public + private
    assert [len(p.tests) for p in ps] == [2, 2, 2]


def test_release_in_one_file_goes_by_the_release_months(shard_dir: Path, tmp_path: Path) -> None:
    merged = tmp_path / "lcb_all.jsonl"
    merged.write_text("".join(json.dumps(r) + "\n" for recs in SHARDS.values() for r in recs))
    ps, info = load_livecodebench(merged, release="v3")
    assert _ids(ps) == ["3200"] and "months" in info["release_by"]  # abc350_a is dated in v2's months
    assert _ids(load_livecodebench(merged, release="release_v2")[0]) == ["abc301_a", "2800", "abc349_b", "abc350_a"]


def test_contest_date_window_is_lcb_runners(shard_dir: Path) -> None:
    ps = load_livecodebench(shard_dir)[0]
    # start <= contest_date <= end with both dates at 00:00, as lcb_runner compares them
    assert _ids(select_problems(ps, start_date="2023-11-04", end_date="2024-05-20")[0]) == ["2800", "abc349_b",
                                                                                            "abc350_a"]
    assert _ids(select_problems(ps, end_date="2023-11-04")[0]) == ["abc301_a"]  # 2800 is at 19:30 that day
    sel, info = select_problems(ps, release="release_v3", start_date="2024-01-01")
    assert _ids(sel) == ["abc349_b", "abc350_a", "3200"] and info["n_problems"] == 3 and info["n_before"] == 5
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        select_problems(ps, start_date="01/01/2024")
    with pytest.raises(ValueError, match="after"):
        select_problems(ps, start_date="2024-02-01", end_date="2024-01-01")


def test_evaluate_cli_release_window_and_difficulty(shard_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUMCODE_CACHE_DIR", str(tmp_path / "cache"))
    # lcb_runner's custom-output file: [{"question_id", "code_list"}]
    outputs = [{"question_id": "abc301_a", "code_list": [STDIN_OK, "print(0)\n"]},
               {"question_id": "2800", "code_list": [FUNC_OK, FUNC_OK]},
               {"question_id": "abc349_b", "code_list": ["print(3)\n", "print(3)\n"]},
               {"question_id": "abc350_a", "code_list": [STDIN_OK, STDIN_OK]},
               {"question_id": "3200", "code_list": [FUNC_OK, "x = 1\n"]}]
    samples = tmp_path / "custom_output.json"
    samples.write_text(json.dumps(outputs))
    out = tmp_path / "res.json"
    assert main(["evaluate", "--benchmark", "livecodebench", "--path", str(shard_dir), "--release", "release_v3",
                 "--start-date", "2023-06-01", "--samples", str(samples), "--k", "1,2", "--out", str(out),
                 "--no-progress", "--workers", "2"]) == 0
    res = json.loads(out.read_text())
    assert res["selection"]["release"] == "release_v3" and res["selection"]["n_problems"] == 4
    assert res["n_problems"] == 4 and res["missing_problems"] == []
    assert {p["problem_id"]: p["n_correct"] for p in res["problems"]} == {"2800": 2, "abc349_b": 0, "abc350_a": 2,
                                                                          "3200": 1}
    bd = res["by_difficulty"]
    assert list(bd) == ["easy", "medium", "hard"]
    assert bd["easy"]["pass@1"] == 1.0 and bd["medium"]["pass@1"] == 1.0 and bd["hard"]["pass@1"] == 0.25
    assert bd["hard"]["n_problems"] == 2 and bd["hard"]["n_solved"] == 1 and bd["hard"]["pass@2"] == 0.5
    # the same window on a Problem JSONL written by `plumcode problems`
    pj = tmp_path / "lcb.jsonl"
    assert main(["problems", "--benchmark", "livecodebench", "--path", str(shard_dir), "--release", "v3",
                 "--out", str(pj)]) == 0
    assert [json.loads(x)["id"] for x in pj.read_text().splitlines()] == ["abc350_a", "3200"]
    # the flags are LiveCodeBench's: elsewhere an error, not ignored
    assert main(["evaluate", "--benchmark", "humaneval", "--release", "v5", "--samples", str(samples)]) == 2


def test_shared_sample_file_release_windows(data_dir: Path) -> None:
    """The shipped 20-problem release_v5 sample (dates 2024-08-10 .. 2025-01-04)."""
    sample = data_dir / "livecodebench_v5_sample20_public.jsonl.gz"
    if not sample.exists():
        pytest.skip("LiveCodeBench sample data not found")
    assert len(load_livecodebench(sample, release="release_v5")[0]) == 20
    assert len(load_livecodebench(sample, release="release_v4")[0]) == 6
    assert len(load_livecodebench(sample, release="v5")[0]) == 14
    ps, _ = load_livecodebench(sample, start_date="2024-10-01", end_date="2024-12-31")
    assert len(ps) == 13 and {p.metadata["difficulty"] for p in ps} == {"easy", "medium", "hard"}
