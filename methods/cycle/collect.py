"""Step 2: sample the Phase I model on training problems, judge, keep every program.

Every sample is written (collect.jsonl), passing or not: the faulty ones become
refinement inputs, the passing ones are candidate targets (data.target: own).  A sandbox
error is our failure, not the program's: such samples are dropped and counted, never
turned into "faulty program" examples.

`generate` and `judge` are the rollout pool's and the executor pool's (backends.py);
tests may pass any functions of the same shape.
"""

from __future__ import annotations

from typing import Callable, Sequence

from core.problem import Problem
from core.verdict import SANDBOX_ERROR
from curriculum.prompt import PLAIN, build_prompt
from executors.judge import Submission

from .data import Sample
from .feedback import Feedback
from .refine import Generate, Judge


def collect(problems: Sequence[Problem], tokenizer, generate: Generate, judge: Judge, samples: int, seed: int,
            log: Callable[[str], None] = lambda _: None) -> tuple[list[Sample], int]:
    """(the judged samples, how many sandbox errors were dropped)."""
    prompts = [build_prompt(p, tokenizer, fmt=PLAIN) for p in problems]
    outputs = generate([(pr.input_ids, samples, seed + k * samples) for k, pr in enumerate(prompts)])
    subs = [Submission(p, pr.prefix + text) for p, pr, texts in zip(problems, prompts, outputs) for text in texts]
    log(f"collect: {len(subs)} programs sampled on {len(problems)} problems; judging")
    kept, dropped = [], 0
    for sub, result in zip(subs, judge(subs)):
        if result.verdict == SANDBOX_ERROR:
            dropped += 1
            continue
        feedback = None if result.passed else Feedback.from_result(result).to_dict()
        kept.append(Sample(sub.problem.id, sub.program, result.verdict, result.passed, feedback))
    return kept, dropped
