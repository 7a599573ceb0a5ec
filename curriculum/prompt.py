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

Format (`PromptFormat`, from the rollout config's prompt_format, fence, system_prompt
and user_template).  Chat (an instruct model's tokenizer has a chat template): an
optional system message, the user message (the template filled with the statement
and starter code), then the assistant's turn pre-filled with the opening fence and the
code prefix; generation stops at the closing fence (`Prompt.stop`), so the completion
is code, and the executors run prefix + completion as in the plain format.  At
position 0 the fence (and any starter code) alone is pre-filled.  The fence is
tokenised on its own, after the template, so SFT targets that start with it
(cluster/warmstart.py) split into the very tokens the rollout pre-fills.
Without one, the plain format is the statement as a block of `# ` comment lines, a
blank line, then the code prefix; the comment block is skipped when the statement is
already inside the starter code (HumanEval, whose prompt is both).  Comments rather
than a docstring: they are valid anywhere and a statement may itself contain quotes.

Tokens.  The head (everything before the prefix) and the prefix are tokenised
separately and concatenated, so `prefix_span` marks exactly the prefix's tokens
(decoding them gives the prefix back) and the learner can mask them out.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from core.problem import Problem

from .start_points import WHOLE_PROGRAM, StartPoint, prefix_end


@dataclass(frozen=True)
class PromptFormat:
    """How prompts are laid out: `kind` plain, chat, or auto (chat when the tokenizer has
    a chat template); the chat format's opening `fence` (pre-filled; "" pre-fills the
    code alone and stops at nothing), `system` message ("" for none) and
    `user_template` ({statement} and optionally {starter_code})."""

    kind: str = "auto"
    fence: str = "```python\n"
    system: str = ""
    user_template: str = "{statement}"

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "plain", "chat"):
            raise ValueError(f"rollout.prompt_format: {self.kind!r}; choose auto, plain or chat")
        fields = {name for _, name, _, _ in string.Formatter().parse(self.user_template) if name is not None}
        if "statement" not in fields or fields - {"statement", "starter_code"}:
            raise ValueError(f"rollout.user_template: {self.user_template!r} must contain {{statement}} and may "
                             f"contain {{starter_code}}, nothing else in braces (write {{{{ }}}} for a brace)")
        if self.fence and not (self.fence.startswith(("```", "~~~")) and self.fence.endswith("\n")):
            raise ValueError(f"rollout.fence: {self.fence!r} must open a Markdown code block (``` or ~~~) and "
                             f"end with a line break, or be empty")

    def uses_chat(self, tokenizer) -> bool:
        if self.kind == "auto":
            return bool(getattr(tokenizer, "chat_template", None))
        if self.kind == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("rollout.prompt_format is chat but the model's tokenizer has no chat template")
        return self.kind == "chat"

    @property
    def closing_fence(self) -> str:
        """The fence that ends the pre-filled block: three of the opening fence's character."""
        return self.fence[:3] if self.fence else ""

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        user = self.user_template.format(statement=problem.statement, starter_code=problem.starter_code)
        return ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": "user", "content": user}]


PLAIN = PromptFormat("plain")


@dataclass(frozen=True)
class Prompt:
    """A tokenised prompt.  `input_ids[prefix_span[0]:prefix_span[1]]` is the code prefix."""

    input_ids: tuple[int, ...]
    text: str
    prefix: str
    prefix_span: tuple[int, int]
    start: StartPoint
    chat: bool
    stop: tuple[str, ...] = ()  # stop strings this format adds (the closing fence)

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
                 fmt: PromptFormat | None = None, chat: bool | None = None, fence: str | None = None) -> Prompt:
    """Build the prompt for `problem` at `start` (None: position 0, for SFT/eval) in
    format `fmt` (default: auto).  `chat` and `fence` override the format's (tests)."""
    fmt = fmt or PromptFormat()
    start = start or WHOLE_PROGRAM
    prefix = code_prefix(problem, start)
    use_chat = fmt.uses_chat(tokenizer) if chat is None else chat
    fence = fmt.fence if fence is None else fence
    stop: tuple[str, ...] = ()
    if use_chat:
        template = tokenizer.apply_chat_template(fmt.messages(problem), tokenize=False, add_generation_prompt=True)
        head = template + fence
        head_ids = tokenizer(template, add_special_tokens=False).input_ids + chat_fence_ids(tokenizer, fence)
        stop = (fence[:3],) if fence else ()
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
        stop=stop,
    )


def chat_fence_ids(tokenizer, fence: str) -> list[int]:
    """The pre-filled fence's tokens, tokenised on their own (see the module docstring)."""
    return list(tokenizer(fence, add_special_tokens=False).input_ids) if fence else []


def _bos(tokenizer) -> list[int]:
    """What the tokenizer itself puts before a text (e.g. Llama's BOS), via an empty text."""
    return list(tokenizer("", add_special_tokens=True).input_ids)
