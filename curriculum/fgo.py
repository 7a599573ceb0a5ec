"""FGO, StepCoder's fine-grained optimization: mask unexecuted code out of the policy loss.

The reward says whether the tests passed; code the tests never ran had no part in that,
so optimising its tokens is noise.  `fgo_mask` turns the executor's coverage of the
full program (canonical prefix + completion) into a keep/mask flag per completion
token:

  * program = prefix + decode(completion_ids, skip_special_tokens=True); `executed` and
    `executable` are 1-based line numbers of that program;
  * each line gets a verdict from its deciding executable line (`curriculum.lines`:
    continuation lines follow their statement, `else:`/`try:`/`finally:`/comments/blank
    lines follow the next code that can run, trailing lines the last one);
  * a token belongs to the line its first byte lies on: a token such as "\\n    "
    belongs to the line its newline ends, and a token holding part of a multi-byte
    character belongs to that character's line.  One line per token keeps the mask a
    plain function of line verdicts;
  * special tokens (EOS, PAD, ...; not UNK, which stands for text) are kept: stopping
    is a decision about the whole program;
  * a program that does not compile keeps every token (the compile error is the whole
    program's fault), and so does one with no executable lines reported, or one whose
    coverage the executor could not collect or lost (`coverage_known=False`, e.g. a
    test killed before its record of executed lines came back): no evidence to mask
    with, and an empty executed set would otherwise mask everything but EOS.

`render_mask` shows a mask for debugging (masked runs inside ⟦ ⟧, or dimmed with ANSI
codes) and `masked_fraction` is the share of masked tokens, for logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Sequence

from .lines import deciders, line_of_byte
from .token_bytes import display_pieces, token_bytes

COVERAGE, COMPILE_ERROR, NO_COVERAGE = "coverage", "compile_error", "no_coverage"
COVERAGE_UNKNOWN = "coverage_unknown"


@dataclass(frozen=True)
class TokenMask:
    """Per completion token: `keep` (True = in the policy loss), its program `line`, and
    its display text (`pieces` concatenate to the completion text)."""

    keep: tuple[bool, ...]
    lines: tuple[int, ...]
    pieces: tuple[str, ...]
    program: str
    completion: str
    reason: str

    @property
    def masked_fraction(self) -> float:
        return masked_fraction(self)


def compiles(program: str) -> bool:
    try:
        compile(program, "<completion>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def fgo_mask(tokenizer, completion_ids: Sequence[int], prefix: str, executed: Iterable[int],
             executable: Iterable[int], *, compiled: bool | None = None,
             coverage_known: bool = True) -> TokenMask:
    """Keep/mask flags for the completion tokens; `compiled=None` compiles the program here;
    `coverage_known=False` (the executor's `ExecutionResult.coverage_known`) keeps every token."""
    ids = [int(i) for i in completion_ids]
    pieces = token_bytes(tokenizer, ids)
    data = b"".join(pieces)
    completion = data.decode("utf-8", errors="replace")
    program = prefix + completion
    prefix_bytes = prefix.encode("utf-8")
    full = prefix_bytes + data
    newlines = [i for i, b in enumerate(full) if b == 0x0A]
    starts = [len(prefix_bytes) + s for s in accumulate((len(p) for p in pieces), initial=0)][:-1]
    token_lines = tuple(line_of_byte(newlines, s) for s in starts)
    ran = set(executed)
    runnable = set(executable) | ran
    if compiled is None:
        compiled = compiles(program)
    if not compiled:
        keep, reason = [True] * len(ids), COMPILE_ERROR
    elif not coverage_known:
        keep, reason = [True] * len(ids), COVERAGE_UNKNOWN
    elif not runnable:
        keep, reason = [True] * len(ids), NO_COVERAGE
    else:
        decide = deciders(program, runnable)
        special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        keep = []
        for token_id, line in zip(ids, token_lines):
            decider = decide[line] if line < len(decide) else None
            keep.append(token_id in special or decider is None or decider in ran)
        reason = COVERAGE
    return TokenMask(
        keep=tuple(keep),
        lines=token_lines,
        pieces=tuple(display_pieces(pieces)),
        program=program,
        completion=completion,
        reason=reason,
    )


def masked_fraction(masks: TokenMask | Iterable[TokenMask]) -> float:
    """Masked tokens / all tokens, over one mask or many (token-weighted); 0 when empty."""
    if isinstance(masks, TokenMask):
        masks = [masks]
    total = masked = 0
    for m in masks:
        total += len(m.keep)
        masked += sum(not k for k in m.keep)
    return masked / total if total else 0.0


def render_mask(mask: TokenMask, style: str = "brackets") -> str:
    """The completion with masked runs marked: "brackets" wraps them in ⟦ ⟧, "ansi" dims
    them, "tokens" also separates every token with "|" to show the token boundaries."""
    if style not in ("brackets", "ansi", "tokens"):
        raise ValueError(f"unknown render style {style!r}; choose brackets, ansi or tokens")
    open_, close = ("\x1b[2m", "\x1b[0m") if style == "ansi" else ("⟦", "⟧")
    sep = "|" if style == "tokens" else ""
    out, inside = [], False
    for piece, keep in zip(mask.pieces, mask.keep):
        if not keep and not inside:
            out.append(open_)
            inside = True
        elif keep and inside:
            out.append(close)
            inside = False
        out.append(piece + sep)
    if inside:
        out.append(close)
    return "".join(out)
