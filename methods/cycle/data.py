"""Step 3: refinement examples from collected samples, their token rows, and the mix.

An example joins a problem, one of the model's faulty programs on it, that program's
feedback, and a correct program as target.  Target (data.target):
- "reference" (default): the problem's reference solution.  Every training problem has
  one and it is verified; the model's own passes cover only the problems it already
  solves (for the tiny SFT model, a minority), so "own" would teach fixes mostly where
  one-shot generation already works.
- "own": one of the model's passing samples for the same problem (seeded choice), closer
  to what the model itself writes (the paper's distillation flavour); a problem without
  one falls back to its reference, counted as `target_fallback`.

Row: (prompt ids, target ids, PGM positions).  The prompt is the refinement template
(template.py) with PGM applied inside the faulty program's span; the target is the
correct program after the prefix, then EOS; the learner's SFT trains on the target
only (learner/sft.py masks the prompt).

Mixing (data.refine_share = s): every training batch of B rows holds round(s x B)
refinement rows and B - round(s x B) plain generation rows, each part drawn by a seeded
generator, so the ratio is exact per batch rather than on average.  Generation rows are
one-shot SFT pairs (cluster/warmstart.py's, prompt then reference solution) of Phase I's
problems (the base's data.sft) and of the collection's problems: the refinement targets
already teach the collection problems' references, so the generation side gets them too,
and s = 0 is the control that sees the same problems with no refinement data.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Sequence

from core.problem import Problem

from .config import DataConfig
from .feedback import Feedback
from .pgm import mask_span, mask_token_id
from .template import refine_prompt


@dataclass(frozen=True)
class Sample:
    """One collected program (collect.jsonl): the whole program the executors ran."""

    problem_id: str
    program: str
    verdict: str
    passed: bool
    feedback: dict | None = None  # Feedback.to_dict() for a faulty program

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Example:
    """One refinement example (data.jsonl)."""

    problem_id: str
    faulty: str
    feedback: dict
    target: str  # a whole correct program
    target_source: str  # reference | own | reference (fallback)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    prompt: list[int]
    target: list[int]
    masked: tuple[int, ...] = ()
    program_tokens: int = 0


def build_examples(samples: Sequence[Sample], problems: dict[str, Problem], cfg: DataConfig,
                   seed: int) -> tuple[list[Example], dict]:
    """Examples in problem order, and counts for the run's data.json."""
    rng = random.Random(f"cycle-data:{seed}")
    faulty, passing = defaultdict(list), defaultdict(list)
    for s in samples:
        if s.passed:
            passing[s.problem_id].append(s.program)
        elif s.feedback is not None and s.program not in [f.program for f in faulty[s.problem_id]]:
            faulty[s.problem_id].append(s)
    examples, sources = [], Counter()
    order = {pid: i for i, pid in enumerate(problems)}
    for pid in sorted(faulty, key=order.__getitem__):
        problem = problems[pid]
        chosen = rng.sample(faulty[pid], min(cfg.max_faulty_per_problem, len(faulty[pid])))
        for s in chosen:
            target, source = _target(problem, passing.get(pid, []), cfg.target, rng)
            if target is None:
                sources["no target"] += 1
                continue
            examples.append(Example(pid, s.program, s.feedback, target, source))
            sources[source] += 1
    counts = {"samples": len(samples), "faulty": sum(not s.passed for s in samples),
              "distinct_faulty": sum(len(v) for v in faulty.values()), "problems_with_faulty": len(faulty),
              "examples": len(examples), "target_sources": dict(sources),
              "faulty_verdicts": dict(Counter(e.feedback["verdict"] for e in examples))}
    return examples, counts


def _target(problem: Problem, passing: list[str], kind: str, rng: random.Random) -> tuple[str | None, str]:
    if kind == "own" and passing:
        return rng.choice(sorted(set(passing))), "own"
    source = "reference" if kind == "reference" else "reference (fallback)"
    return problem.canonical_solution, source


def refine_rows(examples: Sequence[Example], problems: dict[str, Problem], tokenizer, cfg: DataConfig,
                seed: int) -> list[Row]:
    """Token rows; PGM masks drawn from one generator seeded by `seed` (reproducible)."""
    rng = random.Random(f"cycle-pgm:{seed}")
    mask_id = mask_token_id(tokenizer, cfg.mask_token)
    rows = []
    for e in examples:
        problem = problems[e.problem_id]
        prompt = refine_prompt(problem, tokenizer, e.faulty, Feedback.from_dict(e.feedback), cfg.template)
        if not e.target.startswith(prompt.prefix):
            raise ValueError(f"{e.problem_id}: the target program does not begin with the starter code")
        ids, masked = mask_span(prompt.input_ids, prompt.program_span, cfg.pgm_fraction, mask_id, rng)
        target = list(tokenizer(e.target[len(prompt.prefix):], add_special_tokens=False).input_ids)
        rows.append(Row(ids, target + [tokenizer.eos_token_id], tuple(masked),
                        prompt.program_span[1] - prompt.program_span[0]))
    return rows


class MixedBatches:
    """Training batches of `batch_size` rows: round(share x batch_size) refinement rows,
    the rest generation rows (module docstring).  Rows are drawn without replacement
    within a batch (with it across batches) by a generator seeded by `seed`."""

    def __init__(self, refine: Sequence[Row], generation: Sequence[Row], share: float, batch_size: int,
                 seed: int) -> None:
        self.refine, self.generation = list(refine), list(generation)
        self.n_refine = round(share * batch_size)
        self.n_generation = batch_size - self.n_refine
        if self.n_refine and not self.refine:
            raise ValueError("no refinement examples to train on (the collection found no faulty program)")
        if self.n_generation and not self.generation:
            raise ValueError("data.refine_share < 1 needs generation examples (the base's data.sft is empty)")
        self.rng = random.Random(f"cycle-mix:{seed}")

    def next(self) -> list[Row]:
        return _draw(self.refine, self.n_refine, self.rng) + _draw(self.generation, self.n_generation, self.rng)


def _draw(rows: list[Row], count: int, rng: random.Random) -> list[Row]:
    """`count` rows, distinct while the pool allows (then the pool again)."""
    out: list[Row] = []
    while len(out) < count:
        out += rng.sample(rows, min(len(rows), count - len(out)))
    return out
