"""Efficiency: time each program that passes the trusted tests, repeatedly, on an idle slot.

The executor pool's verdict times are wall times of busy machines; for a speed ranking
the measurement must not depend on what else runs.  So timing uses one local Judge with
a single fork server (`idle_judge`), programs one after another (nothing shares its
slot), coverage off (a tracer would slow programs unevenly), and the CPU time the fork
server measures for each test (child.py: the test child's user + system time).  A
program's time is the sum over the trusted tests of one run; it is run `repeats` times
and its median kept (the spread is recorded).  A repeat that does not pass every
trusted test (a flaky program) makes the program untimed: it is not among the correct
ones.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Sequence

from core.problem import Problem
from executors.config import ExecutorConfig
from executors.judge import Judge


@dataclass(frozen=True)
class Timing:
    """`median_s` over `runs` (each the summed CPU seconds of one pass over the trusted
    tests); None when some repeat failed a trusted test."""

    median_s: float | None
    runs: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def idle_judge(cfg: ExecutorConfig) -> Judge:
    """A Judge with one slot and coverage off, for timing runs."""
    from dataclasses import replace

    return Judge(replace(cfg, coverage=False, static_checks=False, time_scale_to_reference=0.0), slots=1)


def time_program(judge: Judge, problem: Problem, program: str, repeats: int) -> Timing:
    """Run `program` on `problem`'s tests `repeats` times; the median summed CPU time."""
    if repeats < 1:
        raise ValueError(f"timing.repeats: {repeats} must be >= 1")
    runs = []
    for _ in range(repeats):
        # The judge's own per-test CPU facts (Judge.calibrate reads them the same way).
        result, facts = judge._run_on_free_slot(problem, program, coverage=False)
        if not result.passed:
            return Timing(None, tuple(runs))
        runs.append(sum(f.get("cpu_s") or 0.0 for f in facts))
    return Timing(statistics.median(runs), tuple(runs))


def speed_order(timings: Sequence[Timing | None]) -> list[int]:
    """Indices of the timed programs, fastest first (ties by index)."""
    timed = [i for i, t in enumerate(timings) if t is not None and t.median_s is not None]
    return sorted(timed, key=lambda i: (timings[i].median_s, i))
