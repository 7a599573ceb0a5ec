"""The k x m pass matrix: every program against every generated test, each cell alone.

The judge runs a program's tests in order and, once one times out, marks the rest
SKIPPED (executors/judge.py: the program's CPU budget is spent).  A pass matrix must not
inherit that: a test that times out says nothing about the next one.  So each cell is
its own single-test Problem (`cell_problem`), judged as its own submission through the
executor pool (`judge`: any function from submissions to results in order, e.g.
`ExecutorPool.judge`), and cell (i, j) is True only for a PASS verdict on that test.

Cell problems carry no reference solution, so no time-limit calibration runs against
them: every cell gets the executor's configured limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from core.problem import Problem, Test
from core.verdict import PASS, SANDBOX_ERROR, ExecutionResult
from executors.judge import Submission

JudgeFn = Callable[[list[Submission]], list[ExecutionResult]]


@dataclass(frozen=True)
class PassMatrix:
    """cells[i][j]: program i passes test j; verdicts[i][j]: that cell's program
    verdict (pass, wrong_answer, timeout, compile_error, sandbox_error, ...)."""

    cells: tuple[tuple[bool, ...], ...]
    verdicts: tuple[tuple[str, ...], ...]

    @property
    def sandbox_errors(self) -> int:
        return sum(v == SANDBOX_ERROR for row in self.verdicts for v in row)

    def to_dict(self) -> dict:
        return {"cells": [[int(c) for c in row] for row in self.cells], "verdicts": [list(r) for r in self.verdicts]}


def cell_problem(problem: Problem, test: Test, index: int) -> Problem:
    """`problem` with `test` as its only test (and no reference solution)."""
    return Problem(id=f"{problem.id}#t{index}", source=problem.source, statement=problem.statement, tests=(test,),
                   starter_code=problem.starter_code, entry_point=problem.entry_point,
                   difficulty=problem.difficulty)


def pass_matrix(problem: Problem, programs: Sequence[str], tests: Sequence[Test], judge: JudgeFn) -> PassMatrix:
    """Judge len(programs) x len(tests) single-test submissions in one batch."""
    cells = [cell_problem(problem, t, j) for j, t in enumerate(tests)]
    subs = [Submission(cell, program) for program in programs for cell in cells]
    results = judge(subs) if subs else []
    m = len(tests)
    verdicts = tuple(tuple(r.verdict for r in results[i * m:(i + 1) * m]) for i in range(len(programs)))
    return PassMatrix(tuple(tuple(v == PASS for v in row) for row in verdicts), verdicts)


def real_verdicts(problem: Problem, programs: Sequence[str], judge: JudgeFn) -> list[str]:
    """Each program's verdict on the problem's own (real) tests, for the agreement report."""
    return [r.verdict for r in judge([Submission(problem, p) for p in programs])] if programs else []
