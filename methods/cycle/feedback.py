"""Execution feedback: what the model is told about its faulty program.

The executors already say why a program failed (core/verdict.py): the program's verdict,
and for its first failing test the test's input, the expected and the actual output, and
an error text.  For an exception that text is the traceback's last line with the
program's line number (`ValueError (line 3): invalid literal for int()`), which is what a
small model can use; the frames above it name harness internals and are left out.  A
compile error's text is the SyntaxError the compiler reported.

The text is short on purpose (CYCLE's prompt must fit beside the problem and the faulty
program): one `# `-comment line per field, in this order, each field cut to
`field_lines` lines and `field_chars` characters ("..." marks a cut):

    # verdict: wrong_answer (test 2 of 6 failed)
    # input: 2\\ninc 4\\ndec 1           (a line break inside a field is written \\n)
    # expected: 13
    # got: 14
    # error: ValueError (line 3): invalid literal for int() with base 10: 'x'

Fields a verdict does not have are left out: a compile error has only `verdict` and
`error`; an assert test (HumanEval, MBPP) has no separate expected value, its input is
the failing assert itself.  The template (template.py) caps the whole block again in
tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.verdict import COMPILE_ERROR, ExecutionResult


# Error texts that only restate the verdict (the executors' wrong-answer notes): not shown.
RESTATED = ("wrong output", "wrong return value")


@dataclass(frozen=True)
class Feedback:
    """The facts shown for one faulty program (JSON-safe, kept in the collected data so a
    different budget can render it again)."""

    verdict: str
    failed_test: int | None = None  # 1-based index of the first failing test
    tests: int = 0
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None

    @classmethod
    def from_result(cls, result: ExecutionResult) -> "Feedback":
        if result.verdict == COMPILE_ERROR or not result.tests:
            return cls(result.verdict, None, len(result.tests), error=result.error)
        failing = result.failing_test
        index = result.tests.index(failing) + 1 if failing is not None else None
        if failing is None:
            return cls(result.verdict, None, len(result.tests), error=result.error)
        return cls(result.verdict, index, len(result.tests), failing.input, failing.expected, failing.actual,
                   failing.error)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Feedback":
        return cls(**data)


def render(feedback: Feedback, field_chars: int = 160, field_lines: int = 4) -> str:
    """The feedback block as `# ` comment lines (module docstring), ending in a line break."""
    where = f" (test {feedback.failed_test} of {feedback.tests} failed)" if feedback.failed_test else ""
    lines = [f"verdict: {feedback.verdict}{where}"]
    for name, value in (("input", feedback.input), ("expected", feedback.expected), ("got", feedback.actual),
                        ("error", feedback.error)):
        if value is not None and not (name == "error" and value in RESTATED):
            lines.append(f"{name}: {shorten(value, field_chars, field_lines)}")
    return "".join(f"# {line}\n" for line in lines)


def shorten(text: str, chars: int, lines: int) -> str:
    """`text` on one line (line breaks written \\n), cut to `lines` lines and `chars`
    characters; "..." marks a cut."""
    parts = text.rstrip("\n").split("\n")
    cut = len(parts) > lines
    joined = "\\n".join(parts[:lines])
    if len(joined) > chars:
        joined, cut = joined[:chars], True
    return joined + ("..." if cut else "")
