"""CYCLE's refinement prompt: problem + faulty program + execution feedback -> a fix.

Layout (plain prompt format, the one execrl's code models continue):

    # <the statement, as comment lines>         exactly build_prompt's head (empty when
                                                the starter code holds the statement)
    # Faulty program:
    <the faulty program, its first program_tokens tokens>
    # [N more tokens of the program cut]        only when it was cut
    # Execution feedback:
    # verdict: ... / # input: ... / ...        feedback.py, its first feedback_tokens tokens
    # [feedback cut]                            only when it was cut
    # Fixed program:
    <the starter code (HumanEval's signature and docstring), as in a one-shot prompt>

The model continues after the last line exactly as it does after a one-shot prompt, so
the program the executors run is `prefix + completion`, and the target of a training
example is the correct program after the prefix.  The statement comes first and whole:
it is what the fix must satisfy.  The budget cuts the faulty program and the feedback
from their ends (the beginning of a program says the most about its approach; the
feedback's first lines hold the verdict and the failing input), so a prompt is at most
head + program_tokens + feedback_tokens + ~30 marker tokens + prefix long.

Tokens.  Each part is tokenised on its own and the ids concatenated (as build_prompt does
with head and prefix), so `program_span` marks exactly the faulty program's tokens: the
only tokens past-generation masking may replace (pgm.py).  Training and inference build
prompts with this one function, so they agree token for token.

Only the plain format is supported: a chat model's refinement turn (the attempt as an
earlier assistant message) is a different template, not built here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.problem import Problem
from curriculum.prompt import PLAIN, build_prompt

from .config import TemplateConfig
from .feedback import Feedback, render

PROGRAM_HEADER = "# Faulty program:\n"
FEEDBACK_HEADER = "# Execution feedback:\n"
FIX_HEADER = "# Fixed program:\n"


@dataclass(frozen=True)
class RefinePrompt:
    """A tokenised refinement prompt; `input_ids[program_span[0]:program_span[1]]` are the
    faulty program's (kept) tokens.  `cut_program` / `cut_feedback`: tokens dropped."""

    input_ids: tuple[int, ...]
    text: str
    prefix: str
    program_span: tuple[int, int]
    cut_program: int = 0
    cut_feedback: int = 0


def refine_prompt(problem: Problem, tokenizer, program: str, feedback: Feedback,
                  budget: TemplateConfig | None = None) -> RefinePrompt:
    """The prompt asking for a fix of `program` (the whole program the executors ran)."""
    budget = budget or TemplateConfig()
    one_shot = build_prompt(problem, tokenizer, fmt=PLAIN)
    head_ids = list(one_shot.input_ids[: one_shot.prefix_span[0]])
    head_text = one_shot.head
    parts: list[tuple[str, list[int]]] = []

    def add(text: str) -> None:
        if text:
            parts.append((text, _ids(tokenizer, text)))

    add(PROGRAM_HEADER)
    program_ids = _ids(tokenizer, program)
    kept, cut_program = program_ids[: budget.program_tokens], max(0, len(program_ids) - budget.program_tokens)
    kept_text = tokenizer.decode(kept) if cut_program else program
    start = len(head_ids) + sum(len(ids) for _, ids in parts)
    parts.append((kept_text, kept))
    span = (start, start + len(kept))
    tail = "" if kept_text.endswith("\n") else "\n"
    add(tail + (f"# [{cut_program} more tokens of the program cut]\n" if cut_program else ""))
    add(FEEDBACK_HEADER)
    block = render(feedback, budget.field_chars, budget.field_lines)
    block_ids = _ids(tokenizer, block)
    cut_feedback = max(0, len(block_ids) - budget.feedback_tokens)
    if cut_feedback:
        block = tokenizer.decode(block_ids[: budget.feedback_tokens])
        parts.append((block, block_ids[: budget.feedback_tokens]))
        add(("" if block.endswith("\n") else "\n") + "# [feedback cut]\n")
    else:
        parts.append((block, block_ids))
    add(FIX_HEADER)
    add(one_shot.prefix)
    ids = tuple(head_ids) + tuple(t for _, part in parts for t in part)
    text = head_text + "".join(t for t, _ in parts)
    return RefinePrompt(ids, text, one_shot.prefix, span, cut_program, cut_feedback)


def check_plain(tokenizer, rollout_cfg) -> None:
    """Refuse a chat prompt format by name (this template is the plain one)."""
    if rollout_cfg.prompt_style().uses_chat(tokenizer):
        raise ValueError("CYCLE's refinement template is written for the plain prompt format; this model's "
                         "prompts are chat (set base.rollout.prompt_format=plain, or use a base model)")


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids) if text else []
