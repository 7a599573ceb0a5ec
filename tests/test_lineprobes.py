"""Self-removing line probes (executors/lineprobes.py) against slipcover's own.

Run in-process: the fork server uses exactly these classes, and the sandboxed path is
covered by the executor tests (test_executor_isolation, test_fgo).  Slipcover's
per-test copies are the reference: both must report the same lines for every test.
"""

from __future__ import annotations

import sys

import pytest

slipcover = pytest.importorskip("slipcover")
import slipcover.bytecode  # noqa: E402

from executors import lineprobes  # noqa: E402
from problems.load import load_problems  # noqa: E402

needs_311 = pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                               reason="self-removing probes write 3.11's adaptive bytecode; other versions keep slipcover's")

TRICKY = """
import itertools

class Box:
    size = 3

    def grow(self, k):
        if k > 2:
            self.size += k
        return self.size

def gen(n):
    for i in range(n):
        if i % 2:
            yield i
        else:
            continue

def risky(x):
    try:
        if x < 0:
            raise ValueError(x)
        return [y * 2 for y in range(x) if y]
    except ValueError:
        return None
    finally:
        pass

def big(n):
    total = 0
{big_body}
    return total

def run(x):
    lam = lambda z: (z, z + 1)
    out = [Box().grow(x), list(gen(x)), risky(x), lam(x), big(x)]
    while x > 0:
        x -= 3
    return out
"""


def _tricky_program() -> str:
    """TRICKY plus a function long enough that jumps and constants need EXTENDED_ARG."""
    body = "\n".join(f"    if n > {k}:\n        total += {k * 1000 + 7}" for k in range(300))
    return TRICKY.replace("{big_body}", body)


def _run(code, calls: list[str]) -> list:
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own test programs
    return [eval(call, namespace) for call in calls]  # noqa: S307


def _lines_per_test(program: str, tests: list[list[str]], self_removing: bool) -> list[tuple]:
    """(results, lines) per test, each test running the program from scratch, as the
    child does: one instrumented program re-armed per test, or one slipcover copy each."""
    code = compile(program, "solution.py", "exec")
    record = lineprobes.LineRecord(len(tests), len(program.splitlines()) + 1)
    per_test = []
    if self_removing:
        probes = lineprobes.SelfRemovingProbes(slipcover.bytecode.Editor, record)
        instrumented = probes.instrument(code)
        for index, calls in enumerate(tests):
            probes.start(index)
            per_test.append((_run(instrumented, calls), record.lines(index)))
        return per_test
    for index, calls in enumerate(tests):
        copy = lineprobes.SlipcoverCopy(slipcover, code, record)
        results = _run(copy.code, calls)
        copy.finish(index)  # what the child does before its report
        per_test.append((results, record.lines(index)))
    return per_test


@needs_311
def test_the_probes_work_on_this_interpreter():
    assert lineprobes.self_test(slipcover.bytecode.Editor)


@needs_311
def test_same_lines_and_results_as_slipcover_on_tricky_code():
    tests = [["run(0)"], ["run(5)"], ["run(-1)"], ["run(301)"], ["run(2)", "run(7)"]]
    ours = _lines_per_test(_tricky_program(), tests, self_removing=True)
    theirs = _lines_per_test(_tricky_program(), tests, self_removing=False)
    assert ours == theirs
    assert ours[0][1] != ours[1][1]  # tests reach different lines: re-arming matters
    assert len(ours[3][1]) > 600  # EXTENDED_ARG function: all 300 branches taken


@needs_311
def test_each_probe_fires_once_per_test_however_often_its_line_runs():
    program = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    probes = lineprobes.SelfRemovingProbes(slipcover.bytecode.Editor, lineprobes.LineRecord(3, 5))
    instrumented = probes.instrument(compile(program, "solution.py", "exec"))
    for index, n in enumerate((10, 10_000, 3)):
        probes.start(index)
        assert _run(instrumented, [f"f({n})"]) == [sum(range(n))]
        assert probes.lines() == [1, 2, 3, 4, 5]
        assert probes.fired <= 7  # one per probe site, not one per iteration


@needs_311
def test_same_lines_as_slipcover_on_every_humaneval_reference():
    problems = load_problems("humaneval").problems
    assert len(problems) == 164
    mismatched = []
    for problem in problems:
        program = problem.canonical_solution
        checks = [[f"exec({test.setup + chr(10) + test.code!r}, globals())"] for test in problem.tests]
        ours = _lines_per_test(program, checks, self_removing=True)
        theirs = _lines_per_test(program, checks, self_removing=False)
        if ours != theirs or not all(lines for _, lines in ours):
            mismatched.append(problem.id)
    assert mismatched == []


@needs_311
def test_the_fork_server_reports_self_removing_probes():
    from executors.config import ExecutorConfig
    from executors.judge import Judge

    with Judge(ExecutorConfig(timeout_s=2.0), slots=1) as judge:
        assert judge.coverage_mode == "self-removing probes"
