"""A sample's program line by line: which lines the curriculum gave (canonical prefix),
which the model wrote, which some test ran, and which characters FGO masked out of the
policy loss.  Both `execrl inspect` renderers (text and HTML) draw from this one view.

The program is prefix + completion (what the executors ran).  The prefix ends just
before a line break, so the completion usually starts a new line; a line holding both
(the prefix's last line continued by the completion) counts as the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX, COMPLETION = "prefix", "completion"


@dataclass(frozen=True)
class Segment:
    text: str
    masked: bool


@dataclass(frozen=True)
class ProgramLine:
    """`ran` is None when the run has no line coverage for the sample (compile error,
    coverage off or lost): unknown, not "did not run"."""

    number: int
    origin: str
    ran: bool | None
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    @property
    def masked(self) -> bool:
        return any(s.masked and s.text.strip() for s in self.segments)


def program_lines(prefix: str, completion: str, masked_spans, executed_lines, first_line: int = 1,
                  coverage: bool = True) -> list[ProgramLine]:
    """The lines of prefix + completion; `masked_spans` are completion character spans,
    `executed_lines` program line numbers, `first_line` the number of the prefix's first
    line (a cut prefix starts later)."""
    program = prefix + completion
    masked = _masked_flags(len(prefix), len(program), masked_spans)
    ran = set(executed_lines)
    out, start, number = [], 0, first_line
    for line in program.splitlines(keepends=True) or [""]:
        end = start + len(line)
        body_end = start + len(line.rstrip("\r\n"))
        origin = PREFIX if body_end <= len(prefix) else COMPLETION
        out.append(ProgramLine(number, origin, (number in ran) if coverage else None,
                               _segments(program, masked, start, body_end)))
        start, number = end, number + 1
    return out


def _masked_flags(offset: int, length: int, spans) -> list[bool]:
    flags = [False] * length
    for a, b in spans:
        for i in range(offset + max(0, a), min(length, offset + b)):
            flags[i] = True
    return flags


def _segments(program: str, masked: list[bool], start: int, end: int) -> tuple[Segment, ...]:
    """Runs of equally masked characters of program[start:end]."""
    segments: list[Segment] = []
    i = start
    while i < end:
        j = i
        while j < end and masked[j] == masked[i]:
            j += 1
        segments.append(Segment(program[i:j], masked[i]))
        i = j
    return tuple(segments)
