"""What the executors say about a program: per-test verdicts, the program's verdict, coverage.

Shared by executors (which produce it), the learner (rewards, FGO masks), CYCLE (feedback
text) and the training driver (metrics); so it is plain, JSON-safe data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS = "pass"
WRONG_ANSWER = "wrong_answer"
RUNTIME_ERROR = "runtime_error"
TIMEOUT = "timeout"
MEMORY_LIMIT = "memory_limit"
COMPILE_ERROR = "compile_error"
SANDBOX_ERROR = "sandbox_error"
SKIPPED = "skipped"  # not run: an earlier test of the same program timed out

TEST_VERDICTS = (PASS, WRONG_ANSWER, RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT, SANDBOX_ERROR, SKIPPED)
PROGRAM_VERDICTS = (PASS, WRONG_ANSWER, RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT, COMPILE_ERROR, SANDBOX_ERROR)
# Failures that StepCoder's reward counts as runtime errors (-0.6) rather than failed tests.
RUNTIME_CLASS = (RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT)


@dataclass(frozen=True)
class TestResult:
    """One test of one program.  `input`, `expected` and `actual` are filled (truncated)
    only for failing tests: they are what CYCLE's feedback shows the model."""

    verdict: str
    time_s: float
    executed_lines: tuple[int, ...] = ()
    error: str | None = None
    input: str | None = None
    expected: str | None = None
    actual: str | None = None


@dataclass(frozen=True)
class Finding:
    """One static-check finding (executors/static_checks.py): its class, line, and the
    analyser's message."""

    kind: str
    line: int
    message: str


@dataclass(frozen=True)
class ExecutionResult:
    """One program judged against all tests of one problem.

    executed_lines   1-based lines of the program run by at least one test
    executable_lines lines that hold code (what coverage is measured against)
    reward           StepCoder's reward for the program; None for sandbox_error, which
                     is our failure, so the sample must not be trained on
    coverage_known   False when line coverage was not collected, or when some test that
                     ran lost its record of executed lines: FGO then has no evidence to
                     mask with and keeps every token (counted in the training metrics)
    findings         the program's static-check findings when executor.static_checks is on
    """

    problem_id: str
    verdict: str
    reward: float | None
    tests: tuple[TestResult, ...] = ()
    executed_lines: tuple[int, ...] = ()
    executable_lines: tuple[int, ...] = ()
    error: str | None = None
    coverage_known: bool = True
    findings: tuple[Finding, ...] | None = None  # static checks (executor.static_checks); None: not checked
    sandbox_layers: tuple[str, ...] = field(default=(), compare=False)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def failing_test(self) -> TestResult | None:
        return next((t for t in self.tests if t.verdict not in (PASS, SKIPPED)), None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out
