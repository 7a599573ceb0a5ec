"""CCCS start points: where the conditional statements of a canonical solution begin.

StepCoder turns one hard task (write the whole program) into easier ones (finish the
canonical solution from some point on).  The cut points are the starts of conditional
statements, found on the tree-sitter syntax tree: `if`, `elif`, `else` (of if/for/while/
try), `for`, `while` (async too), `try`, `except`, `finally`, `match` and `case`.  Each
clause is its own start point: `elif`/`else`/`except` begin a new line and a new branch
the model has to write.

What does not count, and why:
  * conditional expressions (`a if c else b`) and comprehension filters (`[x for x in
    xs if x]`) are expressions; a start point there would cut a line in the middle of an
    expression, and the subtask would no longer be "continue the program from a
    statement boundary";
  * `with` is not conditional (its body always runs).

A start point's `offset` is the statement's first character (after the indentation); its
code prefix ends at `prefix_end`, just before the line break of the statement's line, so
the model writes the line break, the indentation and the statement.  Starter code
(HumanEval's prompt, a LeetCode class header) is always given, so start points never
fall inside it: only conditionals whose prefix ends strictly after the starter code count
(one right at its end would repeat position 0).  Position 0, the whole program, is always the last start point (kind "program").
A solution tree-sitter cannot parse cleanly gets no conditional start points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import tree_sitter
import tree_sitter_python

CONDITIONAL_KINDS: dict[str, str] = {
    "if_statement": "if",
    "elif_clause": "elif",
    "else_clause": "else",
    "for_statement": "for",
    "while_statement": "while",
    "try_statement": "try",
    "except_clause": "except",
    "except_group_clause": "except",
    "finally_clause": "finally",
    "match_statement": "match",
    "case_clause": "case",
}
PROGRAM = "program"


@dataclass(frozen=True)
class StartPoint:
    """Where a subtask starts: 1-based line, character offset into the solution, kind."""

    line: int
    offset: int
    kind: str

    def to_dict(self) -> dict:
        return {"line": self.line, "offset": self.offset, "kind": self.kind}


WHOLE_PROGRAM = StartPoint(line=1, offset=0, kind=PROGRAM)


@dataclass(frozen=True)
class StartPoints:
    """All start points of one solution, in source order, position 0 last.

    `starter_end` is the character offset where the starter code ends inside the
    solution (0 without starter code); `parse_error` is set when tree-sitter found
    syntax errors (then only position 0 is offered)."""

    conditionals: tuple[StartPoint, ...]
    starter_end: int = 0
    parse_error: bool = False

    @property
    def all(self) -> tuple[StartPoint, ...]:
        return self.conditionals + (WHOLE_PROGRAM,)


@lru_cache(maxsize=1)
def python_parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))


def parse(source: str) -> tree_sitter.Tree:
    return python_parser().parse(source.encode("utf-8"))


def find_start_points(solution: str, starter_code: str = "") -> StartPoints:
    """The conditional statements of `solution` that begin after its starter code."""
    starter_end = starter_end_offset(solution, starter_code)
    tree = parse(solution)
    if tree.root_node.has_error:
        return StartPoints(conditionals=(), starter_end=starter_end, parse_error=True)
    data = solution.encode("utf-8")
    found: dict[int, StartPoint] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = CONDITIONAL_KINDS.get(node.type)
        if kind is not None:
            offset = len(data[: node.start_byte].decode("utf-8"))
            if prefix_end(solution, offset) > starter_end:
                found[offset] = StartPoint(line=node.start_point.row + 1, offset=offset, kind=kind)
        stack.extend(node.children)
    ordered = tuple(found[o] for o in sorted(found))
    return StartPoints(conditionals=ordered, starter_end=starter_end)


def prefix_end(solution: str, offset: int) -> int:
    """Where the code prefix of the start point at `offset` ends: before the line break
    that precedes the statement's line when that line holds only indentation before it
    (curriculum/prompt.py explains the token boundary this avoids), else at `offset`."""
    line_start = solution.rfind("\n", 0, offset) + 1
    if solution[line_start:offset].strip(" \t"):
        return offset  # the statement does not begin its line: cut right before it
    if line_start >= 2 and solution[line_start - 2:line_start] == "\r\n":
        return line_start - 2
    return max(line_start - 1, 0)


def starter_end_offset(solution: str, starter_code: str) -> int:
    """Where the starter code ends inside the solution.

    Usually the solution begins with the starter code verbatim (HumanEval: prompt +
    body).  Otherwise (APPS+ headers re-indented or with trailing spaces dropped) the
    starter's non-blank lines are matched, stripped, in order against the solution's
    lines, and the end of the last matched line is the answer.  A starter that cannot
    be found (LeetCode headers a formatter re-wrapped) gives 0 and excludes nothing,
    which is safe: a class or def header holds no conditional statements."""
    if not starter_code.strip():
        return 0
    if solution.startswith(starter_code):
        return len(starter_code)
    if solution.startswith(starter_code.rstrip()):
        return len(starter_code.rstrip())
    wanted = [line.strip() for line in starter_code.splitlines() if line.strip()]
    position = 0
    for line in solution.splitlines(keepends=True):
        if wanted and line.strip() == wanted[0]:
            wanted.pop(0)
        position += len(line)
        if not wanted:
            return position
    return 0
