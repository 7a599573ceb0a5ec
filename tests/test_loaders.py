"""Loaders: real dataset files, format detection, round trips, and clear errors."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import pytest

from core.problem import AssertTest, CallTest, Problem, ProblemFormatError, StdioTest
from problems.convert import write_problems
from problems.formats import detect
from problems.formats.humaneval import humaneval_package_path
from problems.formats.mbpp import entry_point
from problems.load import load_problems
from problems.stats import format_stats, problem_stats

# (path under shared/data, problems, format, stdio problems, call problems, assert problems, source)
REAL_FILES = [
    ("mbpp/mbpp.jsonl", 974, "mbpp", 0, 0, 974, "mbpp"),
    ("mbpp/sanitized-mbpp.json", 427, "mbpp", 0, 0, 427, "mbpp"),
    ("apps_sample/apps_train_sample.jsonl", 105, "apps", 34, 71, 0, "apps"),
    ("taco_examples/taco_test_examples.jsonl", 674, "apps", 674, 0, 0, "taco"),
    ("leetcode/leetcodedataset.jsonl", 1000, "apps", 0, 1000, 0, "leetcode"),
]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def apps_row(pid: str = "apps-train-1", **changes) -> dict:
    row = {
        "problem_id": pid,
        "question": "Print the sum of two integers.",
        "solutions": ["a, b = map(int, input().split())\nprint(a + b)\n"],
        "input_output": {"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]},
        "difficulty": "introductory",
        "url": "",
        "starter_code": "",
    }
    row.update(changes)
    return row


def error_of(path, **kwargs) -> str:
    with pytest.raises(ProblemFormatError) as info:
        load_problems(path, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- real files


def test_humaneval_from_package():
    result = load_problems("humaneval")
    assert len(result.problems) == 164
    assert result.format == "humaneval"
    assert Path(result.path) == humaneval_package_path()
    first = result.problems[0]
    assert first.id == "HumanEval/0" and first.source == "humaneval"
    assert first.entry_point == "has_close_elements"
    assert first.statement == first.starter_code and first.solutions[0].startswith(first.starter_code)
    assert first.tests[0].code.endswith("\ncheck(has_close_elements)\n")


@pytest.mark.parametrize("rel, count, fmt, n_stdio, n_call, n_assert, source", REAL_FILES)
def test_real_file_counts_and_detection(shared_data, rel, count, fmt, n_stdio, n_call, n_assert, source):
    path = shared_data / rel
    result = load_problems(path)
    assert len(result.problems) == count
    assert result.format == fmt and not result.skipped
    first = (json.load(open(path)) if path.suffix == ".json" else [json.loads(open(path).readline())])[0]
    assert detect(first) == fmt
    stats = problem_stats(result.problems)
    assert stats["problems_with_kind"] == {"stdio": n_stdio, "call": n_call, "assert": n_assert}
    assert stats["by_source"] == {source: count}
    assert len({p.id for p in result.problems}) == count


def test_apps_call_tests_unwrap_expected(shared_data):
    problems = load_problems(shared_data / "leetcode/leetcodedataset.jsonl").problems
    two_sum = problems[0]
    assert two_sum.entry_point == "twoSum" and "class Solution" in two_sum.solutions[0]
    assert two_sum.tests[0] == CallTest(args=([2, 7, 11, 15], 9), expected=[0, 1], also_accepted=([[0, 1]],))
    assert two_sum.meta["provenance"]["repo"] == "newfacade/LeetCodeDataset"


def test_mbpp_fields(shared_data):
    problems = {p.id: p for p in load_problems(shared_data / "mbpp/mbpp.jsonl").problems}
    p = problems["mbpp/1"]
    assert p.entry_point == "min_cost" and "\r" not in p.solutions[0]
    assert p.statement.startswith("Write a function to find the minimum cost path")
    assert len(p.tests) == 3 and all(isinstance(t, AssertTest) for t in p.tests)
    assert problems["mbpp/367"].tests[0].setup.startswith("root = Node(1)")
    sanitized = {p.id: p for p in load_problems(shared_data / "mbpp/sanitized-mbpp.json").problems}
    assert sanitized["mbpp/2"].entry_point == "similar_elements"  # first call in the assert is set()
    # the text never names the function; the statement shows the first test (the rest unseen)
    assert sanitized["mbpp/2"].statement.endswith(
        "Your code should pass this test:\nassert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))")
    assert sanitized["mbpp/2"].tests[1].code not in sanitized["mbpp/2"].statement


def test_stats_table(shared_data):
    stats = problem_stats(load_problems(shared_data / "apps_sample/apps_train_sample.jsonl").problems)
    assert stats["problems"] == 105
    assert stats["tests"] == stats["tests_by_kind"]["stdio"] + stats["tests_by_kind"]["call"]
    table = format_stats(stats)
    assert "problems" in table and "kind call" in table and "71 problems" in table


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
@pytest.mark.parametrize("rel", ["apps_sample/apps_train_sample.jsonl", "mbpp/mbpp.jsonl",
                                 "mbpp/sanitized-mbpp.json", "humaneval"])
def test_round_trip_through_execrl_jsonl(shared_data, tmp_path, rel, suffix):
    original = load_problems(rel if rel == "humaneval" else shared_data / rel).problems
    out = tmp_path / f"converted{suffix}"
    assert write_problems(original, out) == len(original)
    if suffix.endswith(".gz"):
        with gzip.open(out, "rt") as f:
            assert f.readline().startswith("{")
    result = load_problems(out)
    assert result.format == "execrl"
    assert result.problems == original
    assert [p.meta for p in result.problems] == [p.meta for p in original]


def test_distributed_apps_json_strings_load_the_same(shared_data, tmp_path):
    rows = [json.loads(line) for line in open(shared_data / "apps_sample/apps_train_sample.jsonl")]
    encoded = [dict(r, solutions=json.dumps(r["solutions"]), input_output=json.dumps(r["input_output"]))
               for r in rows]
    path = write_jsonl(tmp_path / "apps_distributed.jsonl", encoded)
    assert load_problems(path).problems == load_problems(shared_data / "apps_sample/apps_train_sample.jsonl").problems


def test_distributed_apps_conventions(tmp_path):
    rows = [
        {"problem_id": 3, "question": "q", "solutions": "", "difficulty": "interview", "url": "u",
         "starter_code": "", "input_output": json.dumps({"inputs": [["1 2", "3"]], "outputs": [["3", "3"]]})},
        {"problem_id": 4, "question": "q", "solutions": json.dumps(["def f(x): return x"]), "difficulty": "",
         "url": "u", "starter_code": "def f(x):",
         "input_output": json.dumps({"fn_name": "f", "inputs": [[1], [[2, 3]]], "outputs": [[1], 5]})},
    ]
    a, b = load_problems(write_jsonl(tmp_path / "train.jsonl", rows)).problems
    assert (a.id, a.source, a.solutions, a.entry_point) == ("apps-3", "apps", (), None)
    assert a.tests == (StdioTest(input="1 2\n3", output="3\n3"),)
    assert b.meta["url"] == "u" and b.difficulty == "unknown"
    assert b.tests == (CallTest(args=(1,), expected=1, also_accepted=([1],)), CallTest(args=([2, 3],), expected=5))


# ---------------------------------------------------------------- APPS+


APPS_PLUS_RECORDS = [
    {"problem_id": 10, "description": "Double x.", "canonical_solution": "def f(x):\n    return 2 * x\n",
     "fn_name": "f", "inputs": [[1], [2]], "outputs": [[2], [4]], "starter_code": "def f(x):", "difficulty": "introductory"},
    {"id": "p-11", "question": "Echo.", "solution": ["print(input())", "import sys\nprint(sys.stdin.read().strip())"],
     "input_output": json.dumps({"inputs": ["a\n"], "outputs": ["a\n"]}), "level": 2},
    {"task_id": "p-12", "prompt": "Add.", "solutions": json.dumps(["def add(a, b):\n    return a + b\n"]),
     "test_case": {"fn_name": "add", "inputs": [[1, 2]], "outputs": [3]}, "starter": "def add(a, b):"},
    {"name": "p-13", "problem": "Echo twice.", "canonical_solution": "s = input()\nprint(s + s)\n",
     "tests": [{"input": "ab\n", "output": "abab\n"}]},
]


def test_apps_plus_key_spellings(tmp_path):
    path = write_jsonl(tmp_path / "apps_plus.jsonl", APPS_PLUS_RECORDS)
    result = load_problems(path)
    assert result.format == "apps_plus"
    p10, p11, p12, p13 = result.problems
    assert (p10.id, p10.source, p10.statement, p10.entry_point) == ("apps_plus-10", "apps_plus", "Double x.", "f")
    assert p10.tests[1] == CallTest(args=(2,), expected=4, also_accepted=([4],))
    assert p10.starter_code == "def f(x):" and p10.difficulty == "introductory"
    assert p11.solutions[0] == "print(input())" and len(p11.solutions) == 2 and p11.difficulty == "2"
    assert p11.tests == (StdioTest(input="a\n", output="a\n"),)
    assert p12.entry_point == "add" and p12.tests == (CallTest(args=(1, 2), expected=3),)
    assert p12.starter_code == "def add(a, b):" and p12.solutions[0].startswith("def add")
    assert p13.tests == (StdioTest(input="ab\n", output="abab\n"),) and p13.entry_point is None


def test_detection_prefers_apps_only_with_exact_apps_keys():
    assert detect(apps_row()) == "apps"
    assert detect(dict(apps_row(), canonical_solution="print(1)")) == "apps_plus"
    for record in APPS_PLUS_RECORDS:
        assert detect(record) == "apps_plus"
    assert detect({"task_id": "HumanEval/0", "prompt": "", "canonical_solution": "", "test": "",
                   "entry_point": "f"}) == "humaneval"
    assert detect({"unrelated": 1}) is None


def test_forced_format(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [apps_row()])
    assert load_problems(path, fmt="apps_plus").problems[0].tests == load_problems(path).problems[0].tests
    message = error_of(path, fmt="mbpp")
    assert "rows.jsonl:1 (id apps-train-1)" in message and "'task_id'" in message


# ---------------------------------------------------------------- errors


def test_invalid_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(apps_row()) + "\n{not json\n")
    message = error_of(path)
    assert "bad.jsonl:2" in message and "invalid JSON" in message


@pytest.mark.parametrize("change, expected", [
    ({"question": None}, "missing field(s) 'question'"),
    ({"input_output": "{not json"}, "field 'input_output' is not valid JSON"),
    ({"input_output": {"inputs": ["1\n", "2\n"], "outputs": ["1\n"]}}, "2 inputs but 1 outputs"),
    ({"input_output": {"inputs": [[1, 2]], "outputs": [[3]]}}, "no 'fn_name'"),
    ({"input_output": {"inputs": [], "outputs": []}}, "no tests"),
    ({"input_output": ""}, "no tests"),
    ({"kind": "call"}, "no 'fn_name'"),
    ({"solutions": [1]}, "'solutions' must be a list of strings"),
])
def test_bad_apps_record_names_file_line_and_id(tmp_path, change, expected):
    bad = apps_row("apps-train-7", **change)
    if change.get("question", "") is None:
        del bad["question"]
    path = write_jsonl(tmp_path / "apps_rows.jsonl", [apps_row("apps-train-1"), bad])
    message = error_of(path)
    assert "apps_rows.jsonl:2 (id apps-train-7)" in message
    assert expected in message


def test_bad_record_in_json_array_names_index(tmp_path):
    rows = [{"task_id": 1, "prompt": "p", "code": "def f(): pass", "test_imports": [], "test_list": ["assert f() is None"]},
            {"task_id": 2, "prompt": "p", "code": "x = 1", "test_imports": [], "test_list": ["assert True"]}]
    path = tmp_path / "sanitized.json"
    path.write_text(json.dumps(rows))
    message = error_of(path)
    assert "sanitized.json[1] (id 2)" in message and "function under test" in message


def test_humaneval_missing_field(tmp_path):
    record = {"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    pass\n",
              "test": "def check(c): pass", "entry_point": "f"}
    path = write_jsonl(tmp_path / "he.jsonl", [record, {k: v for k, v in record.items() if k != "test"} | {"task_id": "HumanEval/1"}])
    message = error_of(path, fmt="humaneval")
    assert "he.jsonl:2 (id HumanEval/1)" in message and "'test'" in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert "empty.jsonl" in error_of(path) and "empty" in error_of(path)


def test_unknown_format_lists_keys_and_formats(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1, "bar": 2}])
    message = error_of(path)
    assert "odd.jsonl" in message and "bar, foo" in message
    for name in ("apps", "apps_plus", "humaneval", "mbpp", "execrl"):
        assert name in message


def test_unknown_fmt_value():
    with pytest.raises(ValueError, match="allowed: apps, apps_plus, execrl, humaneval, mbpp"):
        load_problems("humaneval", fmt="hf")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        load_problems(tmp_path / "nowhere.jsonl")


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "dups.jsonl", [apps_row("a"), apps_row("b"), apps_row("a")])
    message = error_of(path)
    assert "dups.jsonl:3 (id a)" in message and "duplicate id 'a'" in message and "dups.jsonl:1" in message


def test_skip_bad_counts_skips(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(apps_row("ok-1")), "{broken", json.dumps(apps_row("bad-1", input_output="{x")),
             json.dumps(apps_row("ok-2")), json.dumps(apps_row("ok-1"))]
    path.write_text("\n".join(lines) + "\n")
    result = load_problems(path, skip_bad=True)
    assert [p.id for p in result.problems] == ["ok-1", "ok-2"]
    assert [s.location.split("/")[-1] for s in result.skipped] == [
        "mixed.jsonl:2", "mixed.jsonl:3 (id bad-1)", "mixed.jsonl:5 (id ok-1)"]
    assert "not valid JSON" in result.skipped[1].reason and "duplicate" in result.skipped[2].reason
    assert "skipped 3" in result.summary()


def test_skip_bad_with_nothing_valid_is_an_error(tmp_path):
    path = tmp_path / "all_bad.jsonl"
    path.write_text("{broken\n[1, 2]\n")
    message = error_of(path, skip_bad=True)
    assert "all_bad.jsonl" in message and "all 2 skipped" in message and "all_bad.jsonl:1" in message


def test_mbpp_entry_point_parsing():
    assert entry_point("assert f(1) == 2") == "f"
    assert entry_point("assert set(g((1, 2))) == set((1,))", "def g(t): return t") == "g"
    assert entry_point("assert math.isclose(area(2), 4)") == "area"
    with pytest.raises(ProblemFormatError, match="function under test"):
        entry_point("assert 1 == 1")


def test_bundled_spec(monkeypatch):
    calls = []

    def generate_split(split: str, seed: int = 0) -> list[Problem]:
        calls.append((split, seed))
        return [Problem(id=f"bundled/{split}/0", source="bundled", statement="s",
                        tests=(StdioTest(input="", output=""),))]

    monkeypatch.setitem(sys.modules, "problems.bundled", types.SimpleNamespace(generate_split=generate_split))
    assert load_problems("bundled:easy").problems[0].id == "bundled/easy/0"
    assert load_problems("bundled:hard:7").format == "bundled"
    assert calls == [("easy", 0), ("hard", 7)]
    with pytest.raises(ValueError, match="not an integer"):
        load_problems("bundled:hard:x")


def test_a_window_of_a_file_is_its_problems_at_those_positions(shared_data):
    """MBPP's standard splits are task-id ranges; `#START:END` cuts them from the one file."""
    path = shared_data / "mbpp/mbpp.jsonl"
    train = load_problems(f"{path}#600:974")
    assert [p.id for p in train.problems[:1] + train.problems[-1:]] == ["mbpp/601", "mbpp/974"]
    assert len(train.problems) == 374 and train.path.endswith("#600:974") and train.format == "mbpp"
    test = load_problems(f"{path}#10:510").problems
    assert len(test) == 500 and not {p.id for p in test} & {p.id for p in train.problems}
    assert [p.id for p in load_problems("humaneval#:2").problems] == ["HumanEval/0", "HumanEval/1"]


@pytest.mark.parametrize("suffix, message", [("#5:x", "expected START:END"), ("#7", "expected START:END"),
                                             ("#2000:", "hold no problem")])
def test_a_bad_window_is_refused_by_name(shared_data, suffix, message):
    with pytest.raises(ValueError, match=message):
        load_problems(f"{shared_data / 'mbpp/mbpp.jsonl'}{suffix}")
