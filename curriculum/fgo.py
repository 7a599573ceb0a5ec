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
codes) and `masked_fraction` is the share of masked tokens, for logging.  `masked_spans`
is the mask without the tokenizer (character spans of the completion), what run logs
keep; `mark_spans` renders those spans as `render_mask` renders the mask.
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
    outside_code: int = 0  # tokens after the code the executors ran (kept)

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
             coverage_known: bool = True, code: str | None = None) -> TokenMask:
    """Keep/mask flags for the completion tokens; `compiled=None` compiles the program here;
    `coverage_known=False` (the executor's `ExecutionResult.coverage_known`) keeps every token.

    `code` is the part of the completion the executors ran (the completion cut before a
    stop string, e.g. the chat format's closing fence); None: all of it.  Tokens that
    start past it (the closing fence, prose after it, EOS) are not code: they are kept,
    like EOS, because where the program ends is a decision about the whole program, and
    counted (`TokenMask.outside_code`)."""
    ids = [int(i) for i in completion_ids]
    pieces = token_bytes(tokenizer, ids)
    data = b"".join(pieces)
    code_end = len(data)
    if code is not None and data.startswith(code.encode("utf-8")):
        code_end = len(code.encode("utf-8"))
    completion = data.decode("utf-8", errors="replace")
    program = prefix + data[:code_end].decode("utf-8", errors="replace")
    prefix_bytes = prefix.encode("utf-8")
    full = prefix_bytes + data[:code_end]
    newlines = [i for i, b in enumerate(full) if b == 0x0A]
    offsets = list(accumulate((len(p) for p in pieces), initial=0))[:-1]
    inside = [offset < code_end for offset in offsets]
    token_lines = tuple(line_of_byte(newlines, len(prefix_bytes) + s) for s in offsets)
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
        for token_id, line, code_token in zip(ids, token_lines, inside):
            decider = decide[line] if code_token and line < len(decide) else None
            keep.append(token_id in special or decider is None or decider in ran)
        reason = COVERAGE
    return TokenMask(
        keep=tuple(keep),
        lines=token_lines,
        pieces=tuple(display_pieces(pieces)),
        program=program,
        completion=completion,
        reason=reason,
        outside_code=sum(not x for x in inside),
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


def masked_spans(mask: TokenMask) -> tuple[tuple[int, int], ...]:
    """The masked runs as [start, end) character offsets into the completion text (the
    concatenated display pieces): a few integers per sample, so run logs and `execrl
    inspect` can show what FGO left out of the loss without the tokenizer."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece, keep in zip(mask.pieces, mask.keep):
        end = pos + len(piece)
        if not keep and end > pos:
            if spans and spans[-1][1] == pos:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((pos, end))
        pos = end
    return tuple(spans)


def mark_spans(text: str, spans: Iterable[tuple[int, int]], open_: str = "⟦", close: str = "⟧") -> str:
    """`text` with each span wrapped in `open_`/`close`: `render_mask`'s "brackets" view
    rebuilt from `masked_spans` (spans past the end of `text` are clipped)."""
    out, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        out += [text[pos:start], open_, text[start:end], close]
        pos = end
    out.append(text[pos:])
    return "".join(out)
