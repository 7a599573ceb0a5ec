"""RLCF's evaluation metrics beside pass@k: compile@k, execute@k and static-clean@k,
from hand-built results whose values are computed by hand."""

from __future__ import annotations

import pytest

from cluster.evaluate import pass_at_k, tally
from core.problem import Problem, StdioTest
from core.verdict import Finding, ExecutionResult

UNREACHABLE = (Finding("unreachable", 3, "Unreachable code"),)


def _problem(pid: str, level: str) -> Problem:
    return Problem(id=pid, source="t", statement="s", tests=(StdioTest("1\n", "1\n"),), difficulty=level)


def _result(pid: str, verdict: str, findings=()) -> ExecutionResult:
    return ExecutionResult(problem_id=pid, verdict=verdict, reward=None if verdict == "sandbox_error" else 0.0,
                           findings=findings)


def test_grounding_metrics_by_hand():
    problems = [_problem("a", "easy"), _problem("b", "hard")]
    results = [_result("a", "pass"), _result("a", "wrong_answer", UNREACHABLE), _result("a", "compile_error",
                                                                                        (Finding("syntax", 1, "x"),)),
               _result("a", "runtime_error"),
               _result("b", "timeout"), _result("b", "compile_error", (Finding("syntax", 1, "x"),)),
               _result("b", "wrong_answer"), _result("b", "wrong_answer")]
    report = tally(problems, results, n=4, ks=[1, 2])
    g = report.grounding_at
    # a: compiled 3/4, executed 2/4 (pass, wrong answer), clean 2/4; b: compiled 3/4, executed 2/4, clean 3/4
    assert g["compile"][1] == pytest.approx(0.75)
    assert g["execute"][1] == pytest.approx(0.5)
    assert g["static_clean"][1] == pytest.approx((0.5 + 0.75) / 2)
    assert g["execute"][2] == pytest.approx(pass_at_k(4, 2, 2))
    assert report.pass_at[1] == pytest.approx((0.25 + 0.0) / 2)
    assert report.grounding_by_difficulty["hard"]["static_clean"][1] == pytest.approx(0.75)
    assert report.per_problem[0]["compile"] == 3 and report.per_problem[1]["static_clean"] == 3
    text = report.summary("set")
    assert "compile@1 0.750" in text and "execute@1 0.500" in text and "static-clean@1 0.625" in text
    assert report.to_dict()["grounding_at"]["execute"]["2"] == pytest.approx(pass_at_k(4, 2, 2))


def test_static_clean_is_absent_when_programs_were_not_checked():
    problems = [_problem("a", "easy")]
    report = tally(problems, [_result("a", "pass", None), _result("a", "wrong_answer", None)], n=2, ks=[1])
    assert set(report.grounding_at) == {"compile", "execute"} and "static-clean" not in report.summary()


def test_sandbox_errors_are_not_samples_of_any_metric():
    problems = [_problem("a", "easy")]
    results = [_result("a", "sandbox_error", None), _result("a", "compile_error", (Finding("syntax", 1, "x"),)),
               _result("a", "pass")]
    report = tally(problems, results, n=3, ks=[1])
    assert report.grounding_at["compile"][1] == pytest.approx(0.5)
    assert report.grounding_at["static_clean"][1] == pytest.approx(0.5)
