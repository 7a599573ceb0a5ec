"""What a person needs to see about one judged sample, beyond its verdict and reward.

Where the curriculum started it (stage, start point, the canonical prefix), what ran
(executed program lines), what FGO left out of the loss (masked character spans of the
completion), how it failed (the first failing test's input, expected and actual output,
or the program's error), how long its tests took, and which reward-hacking signals it
shows.  Built once per sample when it is judged (`cluster.samples.judged_sample`) and
carried on the `Sample`, so the rollout table, `samples.jsonl` and `execrl inspect`
read one record and a checkpointed batch keeps it.

Everything is cut to a few KB per sample (a prefix tail of whole lines, texts of
FIELD_CHARS characters, the first TEST_TIMES test times): checkpoints hold whole
batches of samples and must stay small.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields

from cluster.hacking import program_hacks
from core.problem import STDIO
from core.verdict import (MEMORY_LIMIT, PASS, RUNTIME_ERROR, SANDBOX_ERROR, SKIPPED, TIMEOUT, WRONG_ANSWER,
                          ExecutionResult)
from curriculum.fgo import TokenMask, masked_spans

PREFIX_CHARS = 1500
FIELD_CHARS = 300
TEST_TIMES = 32
TEST_VERDICTS = 128
# One letter per test verdict, so a program's tests read at a glance ("PPPWT--").
LETTERS = {PASS: "P", WRONG_ANSWER: "W", RUNTIME_ERROR: "R", TIMEOUT: "T", MEMORY_LIMIT: "M", SANDBOX_ERROR: "S",
           SKIPPED: "-"}


@dataclass(frozen=True)
class FailingTest:
    """The first test the program failed (0-based `index` in the problem's tests)."""

    index: int
    verdict: str
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Observation:
    """One sample as the rollout table and `execrl inspect` show it.

    prefix             the canonical prefix the completion continues (its last
                       PREFIX_CHARS characters, cut at a line start)
    prefix_first_line  the program line number of the kept prefix's first line (1
                       unless the prefix was cut)
    masked_spans       [start, end) character spans of the completion that FGO masked
                       (empty with FGO off, for a compile error, or without coverage)
    executed_lines     1-based program lines (prefix + completion) that some test ran
    test_verdicts      one letter per test (LETTERS; the first TEST_VERDICTS tests)
    test_times         wall seconds of the first TEST_TIMES tests that ran
    judge_s            wall seconds of all its tests together (the executors' time)
    problem_key        what the problem asks, as a digest of its canonical solution (of
                       its id when it has none): problems with the same key are the same
                       task in other words, so one program for all of them is no sign
                       of a hack (`cluster.hacking.identical_across_problems`)
    """

    num_stages: int
    start_line: int
    start_kind: str
    prefix: str
    prefix_first_line: int
    masked_spans: tuple[tuple[int, int], ...]
    executed_lines: tuple[int, ...]
    tests_passed: int
    tests_total: int
    test_verdicts: str
    test_times: tuple[float, ...]
    judge_s: float
    failing: FailingTest | None
    error: str | None
    hacks: tuple[str, ...]
    problem_key: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict) -> "Observation":
        """From `to_json` (a Sample restored from a checkpoint carries it as a dict)."""
        row = dict(row)
        row["masked_spans"] = tuple(tuple(span) for span in row.get("masked_spans", ()))
        for name in ("executed_lines", "test_times", "hacks"):
            row[name] = tuple(row.get(name, ()))
        if isinstance(row.get("failing"), dict):
            row["failing"] = FailingTest(**row["failing"])
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


def observe(problem, prompt, assignment, text: str, result: ExecutionResult, mask: TokenMask | None) -> Observation:
    """The observation of completion `text` of `problem`, started at `assignment` with
    `prompt`, judged as `result`, masked by `mask` (None: FGO off or not computed)."""
    prefix, first_line = cut_prefix(prompt.prefix)
    ran = [t for t in result.tests if t.verdict != SKIPPED]
    reads_stdin = any(t.kind == STDIO for t in problem.tests)
    return Observation(
        num_stages=assignment.num_stages, start_line=assignment.start.line, start_kind=assignment.start.kind,
        prefix=prefix, prefix_first_line=first_line,
        masked_spans=masked_spans(mask) if mask is not None else (),
        executed_lines=tuple(result.executed_lines),
        tests_passed=sum(t.verdict == PASS for t in result.tests), tests_total=len(result.tests),
        test_verdicts="".join(LETTERS.get(t.verdict, "?") for t in result.tests[:TEST_VERDICTS]),
        test_times=tuple(round(t.time_s, 4) for t in ran[:TEST_TIMES]),
        judge_s=round(sum(t.time_s for t in ran), 4),
        failing=failing_test(result), error=cut(result.error),
        hacks=program_hacks(prompt.prefix + text, reads_stdin, problem.entry_point),
        problem_key=problem_key(problem))


def problem_key(problem) -> str:
    solution = problem.canonical_solution
    if solution is None:
        return f"id:{problem.id}"
    return hashlib.sha256(solution.encode()).hexdigest()[:16]


def failing_test(result: ExecutionResult) -> FailingTest | None:
    test = result.failing_test
    if test is None:
        return None
    return FailingTest(result.tests.index(test), test.verdict, cut(test.input), cut(test.expected), cut(test.actual),
                       cut(test.error))


def cut_prefix(prefix: str) -> tuple[str, int]:
    """The prefix's tail of at most PREFIX_CHARS characters, starting at a line start,
    and the program line number that tail starts on."""
    if len(prefix) <= PREFIX_CHARS:
        return prefix, 1
    start = prefix.find("\n", len(prefix) - PREFIX_CHARS) + 1 or len(prefix)
    return prefix[start:], prefix.count("\n", 0, start) + 1


def cut(text: str | None, limit: int = FIELD_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
