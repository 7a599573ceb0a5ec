"""Teaching a small model to write tests (optional; off in the paper's setting).

The paper's models (instruct code models of 1-33B) already write tests when asked.  The
tiny CPU model SFT'd on solutions does not: asked for `assert run("...") == "..."`
lines, it writes code (measured on bundled:hard-rl, seed 0: 0 parseable tests of 256
assert lines, README).  With `test_sft.steps` > 0 the start model is first fine-tuned
on a mix of
- test-writing rows: the test prompt (tests_gen.py) of a problem from the base's
  data.sft split, then `tests_per_problem` of that problem's real tests in the same
  notation, one per line, then EOS;
- solution rows: the same split's canonical solutions (cluster/warmstart.py's pairs),
  `solution_share` of every batch, so that the model keeps writing programs.
Only data.sft problems are used: never the tasks' problems (whose tests the model must
write on its own) and never a held-out set.  The tests the model then writes for the
tasks are its own guesses (inputs and expected outputs), right or wrong: exactly what
self-verification is for.  The result is cached as `<out>/start-tests/model`.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from cluster.config import TrainConfig
from cluster.warmstart import _pair
from core.problem import AssertTest, CallTest, Problem, StdioTest
from learner.batches import SFTBatch
from learner.export import export_hf

from .config import CodeDPOConfig
from .tests_gen import line_of_test, prefilled_start, writing_prompt


def as_assert(problem: Problem, test) -> StdioTest | AssertTest | None:
    """A real test in the notation the model is asked to write (a call test becomes
    `assert f(args) == expected`); None for what has no one-line form."""
    if isinstance(test, CallTest) and problem.entry_point:
        args = ", ".join(repr(a) for a in test.args)
        return AssertTest(f"assert {problem.entry_point}({args}) == {test.expected!r}")
    if isinstance(test, StdioTest) or (isinstance(test, AssertTest) and "\n" not in test.code.strip()):
        return test
    return None


def test_rows(problems: list[Problem], tokenizer, cfg: CodeDPOConfig) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) per problem: the prompt, then its real tests as asserts."""
    rows = []
    for p in problems:
        tests = [as_assert(p, t) for t in p.tests][:cfg.test_sft.tests_per_problem]
        tests = [t for t in tests if t is not None]
        if not tests:
            continue
        prompt = writing_prompt(p, cfg.sample.function_prompt, cfg.sample.stdio_prompt)
        lines = [line_of_test(p, t) for t in tests]
        start = prefilled_start(prompt)
        if not lines[0].startswith(start):
            continue  # a function problem's real asserts that do not begin as the prompt does
        text = lines[0][len(start):] + "\n" + "".join(line + "\n" for line in lines[1:])
        rows.append((list(tokenizer(prompt).input_ids),
                     list(tokenizer(text, add_special_tokens=False).input_ids) + [tokenizer.eos_token_id]))
    return rows


def teach_tests(cfg: CodeDPOConfig, base: TrainConfig, model: str, problems: list[Problem], target: Path,
                tokenizer, log: Callable[[str], None] = print) -> dict:
    from learner.sft import SFTTrainer

    stage, fmt = cfg.test_sft, base.rollout.prompt_style()
    tests = test_rows(problems, tokenizer, cfg)
    solutions = [_pair(p, tokenizer, fmt) for p in problems if p.canonical_solution]
    if not tests:
        raise ValueError("test_sft: no problem of the base's data.sft has tests to teach test writing with")
    learner = replace(base.learner, sft=replace(base.learner.sft, steps=stage.steps, lr=stage.lr,
                                                batch_size=stage.batch_size, warmup_steps=0))
    trainer = SFTTrainer.from_pretrained(model, learner)
    rng, start = random.Random(cfg.seed), time.perf_counter()
    n_sol = round(stage.solution_share * stage.batch_size) if solutions else 0
    losses = []
    for step in range(stage.steps):
        rows = [rng.choice(tests) for _ in range(stage.batch_size - n_sol)] + [rng.choice(solutions)
                                                                                for _ in range(n_sol)]
        stats = trainer.step(SFTBatch.from_pairs([r[0] for r in rows], [r[1] for r in rows], tokenizer.pad_token_id))
        losses.append(stats.loss)
        if step % 50 == 0 or step == stage.steps - 1:
            log(f"test-writing sft step {step + 1}/{stage.steps} loss {stats.loss:.3f} "
                f"({time.perf_counter() - start:.0f}s)")
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(trainer.engine, staging, model)
    staging.rename(target)
    return {"test_rows": len(tests), "solution_rows": len(solutions), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "seconds": round(time.perf_counter() - start, 1)}
