"""Verdicts do not depend on how busy the machine is: a test's time limit is CPU time,
with a wall-clock backstop for programs that sleep or block; each says which fired."""

import subprocess
import sys
import time

from core.problem import Problem, StdioTest
from core.verdict import PASS, TIMEOUT
from executors.config import ExecutorConfig
from executors.judge import Judge

BURN = "import time\nend = time.process_time() + {cpu}\nwhile time.process_time() < end:\n    pass\nprint(int(input()) * 2)\n"
HOG = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"  # bounded, even if orphaned


def stdio(count: int) -> Problem:
    return Problem(id="p", source="t", statement="s", tests=tuple(StdioTest(f"{k}\n", f"{2 * k}\n") for k in range(count)))


def test_half_the_cpu_limit_passes_on_a_saturated_machine():
    """Four busy loops on a two-core machine: each test gets well under half a core, so
    0.5 s of CPU takes more than the 1 s limit in wall time; it must still pass.  Each
    hog is a session of its own: with the kernel's autogroup scheduling a session shares
    the CPU as one (the test child calls setsid, so four hogs in one session would
    leave it a whole core)."""
    cfg = ExecutorConfig(timeout_s=1.0, wall_timeout_s=20.0)
    with Judge(cfg, slots=1) as judge:
        hogs = [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(4)]
        try:
            time.sleep(0.2)
            result = judge.judge(stdio(3), BURN.format(cpu=0.5))
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    assert result.verdict == PASS, result
    print("wall seconds per test under load:", [round(t.time_s, 2) for t in result.tests])


def test_cpu_limit_and_wall_backstop_say_which_fired():
    cfg = ExecutorConfig(timeout_s=0.3, wall_timeout_s=1.5)
    with Judge(cfg, slots=1) as judge:
        spin = judge.judge(stdio(1), "while True:\n    pass\n")
        sleep = judge.judge(stdio(1), "import time\ntime.sleep(30)\n")
        both = judge.judge(stdio(2), BURN.format(cpu=0.1))
    assert spin.verdict == TIMEOUT and spin.error == "time limit exceeded (0.3 s of CPU)"
    assert spin.tests[0].time_s < 1.5
    assert sleep.verdict == TIMEOUT and sleep.error.startswith("wall-clock limit exceeded (1.5 s")
    assert 1.5 <= sleep.tests[0].time_s < 5
    assert both.verdict == PASS


def test_the_wall_backstop_defaults_to_five_times_the_cpu_limit_and_at_least_ten_seconds():
    assert ExecutorConfig(timeout_s=1.0).wall_limit(1.0) == 10.0
    assert ExecutorConfig(timeout_s=4.0).wall_limit(4.0) == 20.0
    assert ExecutorConfig(wall_timeout_s=3.0).wall_limit(4.0) == 3.0
