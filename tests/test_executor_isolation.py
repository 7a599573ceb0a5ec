"""One child runs all of a program's tests (child.py): each test must still see a fresh
program, its own stdin, its own output, coverage and verdict, whatever the previous test
did to the process."""

import os

import pytest

from core.problem import AssertTest, CallTest, Problem, StdioTest
from core.verdict import PASS, RUNTIME_ERROR, SKIPPED, TIMEOUT, WRONG_ANSWER
from executors.config import ExecutorConfig
from executors.judge import Judge
from executors.sandbox import SandboxPlan, bwrap_works

CFG = ExecutorConfig(timeout_s=1.0, wall_timeout_s=3.0, memory_mb=256, max_output_bytes=1 << 16)
PLANS = {"full": None}
if os.geteuid() == 0:
    PLANS["no-seccomp"] = SandboxPlan(bwrap=bwrap_works(), setuid=True, seccomp=False, landlock=True)


@pytest.fixture(scope="module", params=list(PLANS))
def judge(request):
    with Judge(CFG, slots=1, plan=PLANS[request.param]) as j:
        yield j


def stdio(*pairs: tuple[str, str]) -> Problem:
    return Problem(id="p", source="t", statement="s", tests=tuple(StdioTest(i, o) for i, o in pairs))


def test_each_test_has_its_own_coverage(judge):
    program = "n = int(input())\nif n == 1:\n    print(2)\nelse:\n    print(4)\n"
    result = judge.judge(stdio(("1\n", "2\n"), ("2\n", "4\n")), program, coverage=True)
    assert result.verdict == PASS, result
    assert [t.executed_lines for t in result.tests] == [(1, 2, 3), (1, 2, 5)]
    assert result.executed_lines == (1, 2, 3, 5)


def test_each_test_reads_its_own_stdin_and_owns_its_output(judge):
    program = "print(input())\n"  # reads one line: the rest must not leak into the next test
    result = judge.judge(stdio(("a\nb\n", "a\n"), ("c\nd\n", "c\n"), ("e\n", "x\n")), program)
    assert [t.verdict for t in result.tests] == [PASS, PASS, "wrong_answer"]
    assert result.tests[2].actual.strip() == "e"


def test_files_and_patched_modules_do_not_carry_over(judge):
    program = ("import os, math\nprint('seen' if os.path.exists('marker') else 'fresh', math.floor(1.5))\n"
               "open('marker', 'w').write('x')\nmath.floor = lambda x: 99\n")
    result = judge.judge(stdio(("", "fresh 1\n"), ("", "fresh 1\n"), ("", "fresh 1\n")), program)
    assert result.verdict == PASS, result


def test_closed_stdout_and_leaked_fds_do_not_break_the_next_test(judge):
    # 40 leaked descriptors per test would pass the 64-file limit by the second test.
    program = ("import os, sys\nkept = [os.open('/dev/null', os.O_RDONLY) for _ in range(40)]\n"
               "print(int(input()) * 2)\nsys.stdout.flush()\nos.close(1)\nos.close(2)\n")
    result = judge.judge(stdio(("3\n", "6\n"), ("5\n", "10\n"), ("7\n", "14\n")), program)
    assert result.verdict == PASS, result


def test_closing_the_servers_pipes_costs_no_later_test(judge):
    # fds 3-6 are the child's report and control pipes and its spare copies of stdout and
    # stderr: a program that closes them is its own first test's problem, not the next's.
    program = "import os\nprint(int(input()) * 2)\nfor fd in (4, 5, 6):\n    os.close(fd)\n"
    result = judge.judge(stdio(("3\n", "6\n"), ("5\n", "10\n"), ("7\n", "14\n")), program)
    assert result.verdict == PASS, result


def test_a_crash_is_charged_to_its_test_only(judge):
    program = "import os\nn = int(input())\nif n == 3:\n    os._exit(3)\nprint(n * 2)\n"
    result = judge.judge(stdio(("3\n", "6\n"), ("5\n", "10\n"), ("7\n", "14\n")), program)
    assert [t.verdict for t in result.tests] == [RUNTIME_ERROR, PASS, PASS]


def test_a_timeout_ends_the_program(judge):
    program = "n = int(input())\nwhile n == 5:\n    pass\nprint(n * 2)\n"
    result = judge.judge(stdio(("3\n", "6\n"), ("5\n", "10\n"), ("7\n", "14\n")), program)
    assert [t.verdict for t in result.tests] == [PASS, TIMEOUT, SKIPPED]
    assert result.tests[1].time_s >= CFG.timeout_s


def test_modules_the_program_patched_are_restored_before_every_tests_checks(judge):
    """Every test's asserts run after a restore, not only the first test's (the snapshot
    once held a stale `restore_modules`, so later tests' restores did nothing)."""
    tests = tuple(AssertTest(code=f"assert math.isclose(area({r}), {3.14159 * r * r})", setup="import math")
                  for r in (1, 2, 3))
    problem = Problem(id="a", source="t", statement="s", entry_point="area", tests=tests)
    program = "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0.0\n"
    result = judge.judge(problem, program)
    assert [t.verdict for t in result.tests] == [WRONG_ANSWER] * 3


def test_class_state_is_fresh_per_call_test(judge):
    problem = Problem(id="c", source="t", statement="s", entry_point="f",
                      tests=(CallTest((1,), 1), CallTest((2,), 1)))
    program = ("class Solution:\n    calls = 0\n    def f(self, n):\n"
               "        Solution.calls += 1\n        return Solution.calls\n")
    assert judge.judge(problem, program).verdict == PASS


def test_each_test_gets_its_own_cpu_allowance(judge):
    # 0.4 s of CPU per test: six tests add up to more than one test's allowance (2 s).
    program = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end:\n    pass\nprint(1)\n"
    result = judge.judge(stdio(*[("", "1\n")] * 6), program)
    assert result.verdict == PASS, result


def test_time_limits_scale_with_the_reference_solution():
    from dataclasses import replace

    burn = "import time\nend = time.process_time() + {}\nwhile time.process_time() < end:\n    pass\nprint(int(input()) * 2)\n"
    reference, candidate = burn.format(0.4), burn.format(0.5)
    problem = Problem(id="slow", source="t", statement="s", solutions=(reference,), tests=(StdioTest("3\n", "6\n"),))
    fixed = replace(CFG, timeout_s=0.2)
    with Judge(fixed, slots=1) as judge:
        assert judge.judge(problem, candidate).verdict == TIMEOUT
    # The reference takes ~0.4 s of CPU, so with 2x scaling the limit is ~0.8 s: the first
    # judging of the problem times the reference (once), and the candidate fits.
    with Judge(replace(fixed, time_scale_to_reference=2.0), slots=1) as judge:
        assert judge.judge(problem, candidate).verdict == PASS
        assert 0.4 <= judge._reference_times["slow"] < 0.8
