"""The one prompt builder: problem statement + starter code + canonical prefix -> token ids.

RL rollouts (any CCCS stage), SFT and evaluation all call `build_prompt`, so the model
sees one format everywhere; SFT and evaluation use position 0 (no canonical prefix).

Code prefix.  At a start point with offset > 0 the prefix is the canonical solution up
to the line of the conditional statement, ending just before the line break that
precedes it (starter code included, since the solution begins with it); the model
writes the line break, the indentation and the conditional.  Cutting at the
statement itself (after its indentation) would leave a token boundary that byte-level
BPE never produces inside code ("\n    " then "if" where training text has "\n   "
then " if"): measured on the bundled SFT model, first-stage start points passed 46% of
the time with that cut and 92% with this one (position 0: about 83%).  At position 0
the prefix is the starter code ("" without one); SFT is trained on that very split.
The program the executor runs is always `prompt.prefix + completion`.

Format.  With a chat template (tokenizer.chat_template set and `chat` not False) the
statement is the user's message, and the code prefix opens the assistant's turn, right
after the generation prompt (and after `fence`, e.g. "```python\n", when given).
Without one, the plain format is the statement as a block of `# ` comment lines, a
blank line, then the code prefix; the comment block is skipped when the statement is
already inside the starter code (HumanEval, whose prompt is both).  Comments rather
than a docstring: they are valid anywhere and a statement may itself contain quotes.

Tokens.  The head (everything before the prefix) and the prefix are tokenised
separately and concatenated, so `prefix_span` marks exactly the prefix's tokens
(decoding them gives the prefix back) and the learner can mask them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.problem import Problem

from .start_points import WHOLE_PROGRAM, StartPoint, prefix_end


@dataclass(frozen=True)
class Prompt:
    """A tokenised prompt.  `input_ids[prefix_span[0]:prefix_span[1]]` is the code prefix."""

    input_ids: tuple[int, ...]
    text: str
    prefix: str
    prefix_span: tuple[int, int]
    start: StartPoint
    chat: bool

    @property
    def head(self) -> str:
        """The prompt before the code prefix (statement, template, fence)."""
        return self.text[: len(self.text) - len(self.prefix)]


def code_prefix(problem: Problem, start: StartPoint | None = None) -> str:
    """The code the model continues from at `start` (position 0 when None)."""
    if start is None or start.offset == 0:
        return problem.starter_code
    solution = problem.canonical_solution
    if solution is None:
        raise ValueError(f"problem {problem.id!r} has no canonical solution to take a prefix from")
    if start.offset > len(solution):
        raise ValueError(f"start offset {start.offset} is past the end of {problem.id!r}'s solution")
    return solution[: prefix_end(solution, start.offset)]


def comment_block(statement: str) -> str:
    lines = statement.strip("\n").splitlines() or [""]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def build_prompt(problem: Problem, tokenizer, start: StartPoint | None = None, *,
                 chat: bool | None = None, fence: str = "") -> Prompt:
    """Build the prompt for `problem` at `start` (None: position 0, for SFT/eval).

    `chat=None` uses the chat template when the tokenizer has one."""
    start = start or WHOLE_PROGRAM
    prefix = code_prefix(problem, start)
    use_chat = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
    if use_chat:
        messages = [{"role": "user", "content": problem.statement}]
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + fence
        head_ids = tokenizer(head, add_special_tokens=False).input_ids
    else:
        statement = problem.statement.strip()
        shown = bool(statement) and statement not in problem.starter_code
        head = comment_block(problem.statement) + "\n" if shown else ""
        head_ids = tokenizer(head, add_special_tokens=True).input_ids if head else _bos(tokenizer)
    prefix_ids = tokenizer(prefix, add_special_tokens=False).input_ids if prefix else []
    ids = tuple(head_ids) + tuple(prefix_ids)
    return Prompt(
        input_ids=ids,
        text=head + prefix,
        prefix=prefix,
        prefix_span=(len(head_ids), len(ids)),
        start=start,
        chat=use_chat,
    )


def _bos(tokenizer) -> list[int]:
    """What the tokenizer itself puts before a text (e.g. Llama's BOS), via an empty text."""
    return list(tokenizer("", add_special_tokens=True).input_ids)
