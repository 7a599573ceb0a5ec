"""CodeDPO's pass matrix (each cell judged alone: a timeout does not fail later tests)
and its timing (repeated runs, median, a failing repeat leaves the program untimed),
on a real local Judge."""

from __future__ import annotations

import pytest

from core.problem import Problem, StdioTest
from core.verdict import PASS, SKIPPED, TIMEOUT
from executors.config import ExecutorConfig
from executors.judge import Judge
from methods.codedpo.matrix import cell_problem, pass_matrix
from methods.codedpo.timing import Timing, speed_order, time_program

PROBLEM = Problem(id="p", source="t", statement="double n", tests=(StdioTest("1\n", "2\n"),))
# Loops forever on input 0, doubles anything else.
HANGS_ON_ZERO = "n = int(input())\nwhile n == 0:\n    pass\nprint(2 * n)\n"
WRONG = "print(int(input()) + 1)\n"
TESTS = [StdioTest("0\n", "0\n"), StdioTest("3\n", "6\n"), StdioTest("2\n", "4\n")]


@pytest.fixture(scope="module")
def judge():
    with Judge(ExecutorConfig(timeout_s=0.3, wall_timeout_s=2.0, coverage=False), slots=2) as j:
        yield j


def local(judge):
    return lambda subs: [judge.judge(s.problem, s.program) for s in subs]


def test_a_timeout_does_not_skip_the_programs_later_tests(judge):
    whole = judge.judge(Problem(id="w", source="t", statement="s", tests=tuple(TESTS)), HANGS_ON_ZERO)
    assert [t.verdict for t in whole.tests] == [TIMEOUT, SKIPPED, SKIPPED]  # what the matrix must not inherit
    m = pass_matrix(PROBLEM, [HANGS_ON_ZERO, WRONG], TESTS, local(judge))
    assert m.cells == ((False, True, True), (False, False, False))
    assert m.verdicts[0] == (TIMEOUT, PASS, PASS) and m.verdicts[1][1] == "wrong_answer"
    assert m.to_dict()["cells"] == [[0, 1, 1], [0, 0, 0]]


def test_cell_problems_hold_one_test_and_no_reference():
    cell = cell_problem(Problem(id="q", source="t", statement="s", tests=(TESTS[0],), solutions=("print(0)",)),
                        TESTS[2], 2)
    assert cell.id == "q#t2" and cell.tests == (TESTS[2],) and cell.solutions == ()


def test_empty_matrices():
    assert pass_matrix(PROBLEM, ["print(1)"], [], lambda subs: []).cells == ((),)
    assert pass_matrix(PROBLEM, [], TESTS, lambda subs: []).cells == ()


def test_timing_repeats_and_takes_the_median(judge):
    problem = Problem(id="t", source="t", statement="s", tests=(TESTS[1], TESTS[2]))
    slow = "n = int(input())\ns = 0\nfor i in range(300000):\n    s += i\nprint(2 * n)\n"
    fast_t, slow_t = time_program(judge, problem, "print(2 * int(input()))\n", 3), time_program(judge, problem, slow, 3)
    assert len(fast_t.runs) == 3 and len(slow_t.runs) == 3
    assert fast_t.median_s == sorted(fast_t.runs)[1]
    assert slow_t.median_s > 3 * fast_t.median_s
    assert speed_order([slow_t, None, fast_t]) == [2, 0]
    failing = time_program(judge, problem, WRONG, 3)
    assert failing.median_s is None and failing.runs == ()
    with pytest.raises(ValueError, match="repeats"):
        time_program(judge, problem, WRONG, 0)
    assert speed_order([Timing(None, ())]) == []


def test_speed_comparison_times_the_problems_both_models_solve():
    from methods.codedpo.evaluation import speed_comparison

    problem = Problem(id="t", source="t", statement="s", tests=(TESTS[1], TESTS[2]))
    other = Problem(id="u", source="t", statement="s", tests=(TESTS[1],))
    slow = "n = int(input())\ns = 0\nfor i in range(300000):\n    s += i\nprint(2 * n)\n"
    fast = "print(2 * int(input()))\n"
    before = [{"problem_id": "t", "programs": [WRONG, slow], "verdicts": ["wrong_answer", "pass"]},
              {"problem_id": "u", "programs": [fast], "verdicts": ["pass"]}]
    after = [{"problem_id": "t", "programs": [fast], "verdicts": ["pass"]},
             {"problem_id": "u", "programs": [WRONG], "verdicts": ["wrong_answer"]}]  # solved before only
    speed = speed_comparison([problem, other], before, after, ExecutorConfig(coverage=False), repeats=3)
    assert speed["compared"] == 1 and speed["rows"][0]["problem_id"] == "t"
    assert speed["mean_speedup"] > 3 and speed["faster_share"] == 1.0 and speed["same_program_share"] == 0.0
