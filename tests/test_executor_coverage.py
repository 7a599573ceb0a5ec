"""FGO's evidence survives a killed test: the probes write executed lines into memory the
fork server shares with the test child (lineprobes.LineRecord), so a test that times
out, floods its output, calls os._exit or crashes still reports the lines it ran, the
spinning line included.  Where a test that ran has no record, or coverage was not asked
for, the result says coverage is unknown (FGO then masks nothing)."""

import os

import pytest

from core.problem import Problem, StdioTest
from core.verdict import PASS, RUNTIME_ERROR, SKIPPED, TIMEOUT, WRONG_ANSWER
from executors.config import ExecutorConfig
from executors.judge import Judge

CFG = ExecutorConfig(timeout_s=0.5, wall_timeout_s=3.0, memory_mb=256, max_output_bytes=1 << 16)


@pytest.fixture(scope="module")
def judge():
    with Judge(CFG, slots=1) as j:
        if j.coverage_mode is None:
            pytest.skip("the fork server has no slipcover: no line coverage to test")
        yield j


def stdio(*pairs: tuple[str, str]) -> Problem:
    return Problem(id="p", source="t", statement="s", tests=tuple(StdioTest(i, o) for i, o in pairs))


def test_a_first_test_that_times_out_keeps_its_lines(judge):
    program = "n = int(input())\ntotal = 0\nwhile n > 0:\n    total += 1\nprint(total)\n"
    result = judge.judge(stdio(("1\n", "1\n"), ("2\n", "2\n")), program, coverage=True)
    assert [t.verdict for t in result.tests] == [TIMEOUT, SKIPPED]
    assert result.tests[0].executed_lines == (1, 2, 3, 4)  # the spinning lines 3-4 included
    assert result.executed_lines == (1, 2, 3, 4)
    assert result.coverage_known


def test_os_exit_keeps_its_lines(judge):
    program = "import os\nn = int(input())\nif n > 0:\n    print(n, flush=True)\n    os._exit(0)\nprint(-n)\n"
    result = judge.judge(stdio(("3\n", "3\n")), program, coverage=True)
    assert result.verdict == PASS, result  # judged on its output: it printed before exiting
    assert result.executed_lines == (1, 2, 3, 4, 5)
    assert result.coverage_known


def test_a_later_test_that_times_out_keeps_its_spinning_line(judge):
    program = "n = int(input())\nif n == 1:\n    print(1)\nelse:\n    while True:\n        n += 1\n"
    result = judge.judge(stdio(("1\n", "1\n"), ("2\n", "2\n"), ("3\n", "3\n")), program, coverage=True)
    assert [t.verdict for t in result.tests] == [PASS, TIMEOUT, SKIPPED]
    assert result.tests[0].executed_lines == (1, 2, 3)
    assert result.tests[1].executed_lines == (1, 2, 5, 6)
    assert result.executed_lines == (1, 2, 3, 5, 6)
    assert result.coverage_known


def test_a_flood_and_a_crash_keep_their_lines(judge):
    flood = "n = int(input())\nwhile True:\n    print('x' * 1000)\n"
    result = judge.judge(stdio(("1\n", "1\n")), flood, coverage=True)
    assert result.verdict == WRONG_ANSWER and result.tests[0].executed_lines == (1, 2, 3)
    crash = "import os, signal\nn = int(input())\nos.kill(os.getpid(), signal.SIGSEGV)\nprint(n)\n"
    result = judge.judge(stdio(("1\n", "1\n")), crash, coverage=True)
    assert result.verdict == RUNTIME_ERROR and result.tests[0].executed_lines == (1, 2, 3)
    assert result.coverage_known


def test_coverage_not_asked_for_is_unknown(judge):
    result = judge.judge(stdio(("1\n", "1\n")), "print(input())\n", coverage=False)
    assert result.verdict == PASS and result.executed_lines == ()
    assert not result.coverage_known
    assert judge.judge(stdio(("1\n", "1\n")), "print(input())\n", coverage=True).coverage_known


def test_a_killed_slipcover_copy_has_no_record_and_a_killed_probe_test_does():
    """The fallback's probes keep lines in slipcover's own set, which dies with the child:
    its record is absent (coverage unknown), while self-removing probes wrote theirs."""
    slipcover = pytest.importorskip("slipcover")
    import slipcover.bytecode  # noqa: F401
    import signal
    import time

    from executors import lineprobes

    program = compile("x = 0\nwhile True:\n    x += 1\n", "solution.py", "exec")
    record = lineprobes.LineRecord(2, 3)
    copy = lineprobes.SlipcoverCopy(slipcover, program, record)
    probes = lineprobes.SelfRemovingProbes(slipcover.bytecode.Editor, record)
    armed = probes.instrument(program) if lineprobes.self_test(slipcover.bytecode.Editor) else None
    for index, (coverage, code) in enumerate([(copy, copy.code), (probes, armed)]):
        if code is None:
            continue
        pid = os.fork()
        if pid == 0:
            coverage.start(index)
            exec(code, {})  # noqa: S102 - spins until killed
            os._exit(0)
        time.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert record.lines(0) is None
    if armed is not None:
        assert record.lines(1) == [1, 2, 3]
