"""The program inside a chat answer.

An instruct model answers in Markdown: some prose, then a fenced code block (or
several: a helper, an example call, the solution).  Training never needs this: a chat
rollout pre-fills the opening fence and stops at the closing one, so its completion is
code.  Answers written without the pre-fill (evaluating someone's instruct model,
`execrl judge` on chat answers) are reduced to one program by these rules, in order:

  1. the last complete fenced block that defines the entry point (`def NAME(`), when
     the problem has one (call-based problems);
  2. otherwise the last complete fenced block (stdin programs, or a model that named
     its function differently: the judge then reports the missing function);
  3. an unterminated block (the answer was cut by the token limit inside it: it is
     what the model was writing) counts as its content when it defines the entry point,
     when the problem has none, or when no block is complete; rule 1 still wins;
  4. an answer without any fence is taken as code as it is.

The rule that picked the program is reported with it (`Extracted.rule`), so a result
says which text was judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)

DEFINES_ENTRY_POINT, LAST_BLOCK, UNTERMINATED_BLOCK, WHOLE_ANSWER = (
    "block_defining_entry_point", "last_block", "unterminated_block", "whole_answer")


@dataclass(frozen=True)
class Extracted:
    """The program and where it lies in the answer (`start`/`end` are character offsets)."""

    code: str
    start: int
    end: int
    rule: str


@dataclass(frozen=True)
class _Block:
    start: int  # first character of the code (after the opening fence's line)
    end: int  # one past its last character (the closing fence's line starts here)
    closed: bool


def fenced_blocks(answer: str) -> list[_Block]:
    """Fenced code blocks in order; a block closes at the next fence line of the same
    character, at least as long (CommonMark's rule), and runs to the end when unclosed."""
    blocks, open_fence, start = [], None, 0
    for match in FENCE.finditer(answer):
        fence = match.group(1)
        if open_fence is None:
            open_fence, start = fence, min(match.end() + 1, len(answer))
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not match.group(2):
            blocks.append(_Block(start, match.start(), True))
            open_fence = None
    if open_fence is not None:
        blocks.append(_Block(start, len(answer), False))
    return blocks


def extract_program(answer: str, entry_point: str | None = None) -> Extracted:
    """The program an answer gives, by the rules in the module docstring."""
    blocks = fenced_blocks(answer)
    if not blocks:
        return Extracted(answer, 0, len(answer), WHOLE_ANSWER)
    complete = [b for b in blocks if b.closed]
    defines = _definition(entry_point)
    defining = [b for b in complete if defines and defines.search(answer, b.start, b.end)]
    if defining:
        return _pick(answer, defining[-1], DEFINES_ENTRY_POINT)
    last = blocks[-1]
    if not last.closed and (not complete or not defines or defines.search(answer, last.start, last.end)):
        return _pick(answer, last, UNTERMINATED_BLOCK)
    return _pick(answer, complete[-1], LAST_BLOCK)


def _definition(entry_point: str | None) -> re.Pattern | None:
    if not entry_point:
        return None
    return re.compile(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", re.MULTILINE)


def _pick(answer: str, block: _Block, rule: str) -> Extracted:
    return Extracted(answer[block.start:block.end], block.start, block.end, rule)
