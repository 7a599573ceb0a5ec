"""Step 5: iterative self-refinement, and the figures `execrl eval --refine R` reports.

A chain starts from one one-shot sample (round 0).  While its latest program fails and
fewer than R refinements were made, the model gets the refinement prompt (template.py,
never masked) with that program and its new feedback, writes one program, and the
executors judge it; a chain stops at its first pass.  All chains of a round are
generated and judged together (one batch per round).

A sandbox error is our failure, not the program's (cluster/evaluate.py): the chain ends
there and is left out of every round's pass@1 for its problem, counted as
`sandbox_errors`.

Figures, per round r (overall and per difficulty; problems weigh equally, as in pass@k):
- pass@1 after round r: the share of a problem's chains that passed in rounds 0..r
  (round 0 is one-shot pass@1; with n chains per problem this is the unbiased c/n).
- exact-copy rate (r >= 1): the share of round-r refinements whose program is the
  faulty program it was asked to fix, token for token (tokenised programs compared;
  any changed token, whitespace included, is not a copy).  Pooled over refinements.
- fixed share (r >= 1): the share of round-r refinements that pass, i.e. of the chains
  still failing before round r, the ones fixed in round r.  Pooled over refinements.
- empty share (r >= 1): the share of round-r refinements where the model wrote nothing
  after the prefix (it ended at once).  Two empty programs in a row are an exact copy,
  so this says how much of the copy rate is a model giving up rather than repeating code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from core.problem import Problem
from core.verdict import SANDBOX_ERROR, ExecutionResult
from curriculum.prompt import PLAIN, build_prompt
from executors.judge import Submission

from .config import TemplateConfig
from .feedback import Feedback, render
from .template import refine_prompt

# generate(requests) -> completions, one list per request: a request is (prompt ids, n, seed).
Generate = Callable[[list[tuple[Sequence[int], int, int]]], list[list[str]]]
Judge = Callable[[list[Submission]], list[ExecutionResult]]
ROUND_SEED_STRIDE = 1_000_003


@dataclass
class Attempt:
    round: int
    program: str
    verdict: str
    feedback: str | None = None  # the text the next round would show (None: passed)
    exact_copy: bool | None = None  # rounds >= 1: the program repeats the faulty one
    facts: dict | None = None  # Feedback.to_dict(): what the next round's prompt is built from
    empty: bool = False  # the model wrote nothing after the prompt's prefix


@dataclass
class Chain:
    problem_id: str
    difficulty: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def passed_round(self) -> int | None:
        return next((a.round for a in self.attempts if a.verdict == "pass"), None)

    @property
    def excluded(self) -> bool:
        return any(a.verdict == SANDBOX_ERROR for a in self.attempts)

    @property
    def open(self) -> bool:
        last = self.attempts[-1]
        return last.verdict not in ("pass", SANDBOX_ERROR)


def exact_copy(tokenizer, faulty: str, refined: str) -> bool:
    """The refined program repeats the faulty one token for token."""
    ids = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    return ids(faulty) == ids(refined)


def run_refinement(problems: Sequence[Problem], tokenizer, generate: Generate, judge: Judge, samples: int,
                   rounds: int, seed: int = 0, budget: TemplateConfig | None = None,
                   log: Callable[[str], None] = lambda _: None) -> list[Chain]:
    """`samples` chains per problem, up to `rounds` refinements each (module docstring)."""
    budget = budget or TemplateConfig()
    by_id = {p.id: p for p in problems}
    one_shot = [build_prompt(p, tokenizer, fmt=PLAIN) for p in problems]
    outputs = generate([(pr.input_ids, samples, seed + k * samples) for k, pr in enumerate(one_shot)])
    chains, programs = [], []
    for problem, prompt, texts in zip(problems, one_shot, outputs):
        for text in texts:
            chains.append(Chain(problem.id, problem.difficulty))
            programs.append(prompt.prefix + text)
    _judge_round(chains, programs, 0, judge, by_id, budget, tokenizer, None, [p.prefix for p in one_shot
                                                                              for _ in range(samples)])
    for r in range(1, rounds + 1):
        active = [c for c in chains if c.open]
        log(f"refinement round {r}/{rounds}: {len(active)} of {len(chains)} chains still failing")
        if not active:
            break
        prompts = [refine_prompt(by_id[c.problem_id], tokenizer, c.attempts[-1].program,
                                 Feedback.from_dict(c.attempts[-1].facts), budget) for c in active]
        outputs = generate([(p.input_ids, 1, seed + r * ROUND_SEED_STRIDE + i) for i, p in enumerate(prompts)])
        faulty = [c.attempts[-1].program for c in active]
        _judge_round(active, [p.prefix + out[0] for p, out in zip(prompts, outputs)], r, judge, by_id, budget,
                     tokenizer, faulty, [p.prefix for p in prompts])
    return chains


def _judge_round(chains: list[Chain], programs: list[str], r: int, judge: Judge, by_id: dict, budget: TemplateConfig,
                 tokenizer, faulty: list[str] | None, prefixes: list[str]) -> None:
    results = judge([Submission(by_id[c.problem_id], prog) for c, prog in zip(chains, programs)])
    for i, (chain, program, result) in enumerate(zip(chains, programs, results)):
        facts = Feedback.from_result(result)
        chain.attempts.append(Attempt(
            r, program, result.verdict, None if result.passed else render(facts, budget.field_chars, budget.field_lines),
            exact_copy(tokenizer, faulty[i], program) if faulty is not None else None,
            None if result.passed else facts.to_dict(), not program[len(prefixes[i]):].strip()))


@dataclass
class RefineReport:
    """Per-round figures (module docstring); lists are indexed by round."""

    rounds: int
    samples: int
    pass_at_1: list[float]
    exact_copy: list[float | None]
    fixed: list[float | None]
    empty: list[float | None]
    refinements: list[int]
    by_difficulty: dict[str, dict]
    problems: int
    sandbox_errors: int

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self, name: str = "") -> str:
        lines = [f"{name}{' ' if name else ''}{self.problems} problems x {self.samples} chains, {self.rounds} "
                 f"refinement round(s)" + (f" ({self.sandbox_errors} chains excluded: sandbox errors)"
                                           if self.sandbox_errors else "")]
        lines.append("  round  pass@1  exact-copy  fixed  empty  refinements")
        for r in range(len(self.pass_at_1)):
            lines.append(f"  {r:>5}  {self.pass_at_1[r]:.3f}  {_fmt(self.exact_copy[r]):>10}  "
                         f"{_fmt(self.fixed[r]):>5}  {_fmt(self.empty[r]):>5}  {self.refinements[r]:>11}")
        for level, figures in sorted(self.by_difficulty.items()):
            by_round = " ".join(f"{v:.3f}" for v in figures["pass_at_1"])
            lines.append(f"  {level:<10} pass@1 by round {by_round}; exact-copy "
                         + " ".join(_fmt(v) for v in figures["exact_copy"][1:]))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(chains: Sequence[Chain], rounds: int, samples: int) -> RefineReport:
    """Figures over all chains and per difficulty."""
    overall = _figures(chains, rounds)
    levels = defaultdict(list)
    for c in chains:
        levels[c.difficulty].append(c)
    by_level = {lvl: _figures(cs, rounds) for lvl, cs in levels.items()}
    return RefineReport(rounds, samples, overall["pass_at_1"], overall["exact_copy"], overall["fixed"],
                        overall["empty"], overall["refinements"], by_level, len({c.problem_id for c in chains}),
                        sum(c.excluded for c in chains))


def _figures(chains: Sequence[Chain], rounds: int) -> dict:
    per_problem = defaultdict(list)
    for c in chains:
        if not c.excluded:
            per_problem[c.problem_id].append(c.passed_round)
    pass_at_1 = []
    for r in range(rounds + 1):
        shares = [sum(p is not None and p <= r for p in passed) / len(passed) for passed in per_problem.values()]
        pass_at_1.append(sum(shares) / len(shares) if shares else float("nan"))
    copies, fixed, empty, made = [None], [None], [None], [0]
    for r in range(1, rounds + 1):
        attempts = [a for c in chains if not c.excluded for a in c.attempts if a.round == r]
        made.append(len(attempts))
        copies.append(sum(bool(a.exact_copy) for a in attempts) / len(attempts) if attempts else None)
        fixed.append(sum(a.verdict == "pass" for a in attempts) / len(attempts) if attempts else None)
        empty.append(sum(a.empty for a in attempts) / len(attempts) if attempts else None)
    return {"pass_at_1": pass_at_1, "exact_copy": copies, "fixed": fixed, "empty": empty, "refinements": made}


def rows(chains: Sequence[Chain]) -> list[dict]:
    """Per-problem JSON lines: every chain's every round (program, verdict, feedback)."""
    out: dict[str, dict] = {}
    for c in chains:
        row = out.setdefault(c.problem_id, {"problem_id": c.problem_id, "difficulty": c.difficulty, "chains": []})
        row["chains"].append({"passed_round": c.passed_round, "excluded": c.excluded,
                              "rounds": [asdict(a) for a in c.attempts]})
    return list(out.values())
