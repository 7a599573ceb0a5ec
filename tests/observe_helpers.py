"""Real judged samples for the observability tests: a bundled problem, a curriculum start
point, a prompt, a completion tokenised by a real tokenizer, the real sandboxed judge's
result and FGO's mask, all through `cluster.samples.judged_sample` as the trainer does."""

from __future__ import annotations

import pytest

from cluster.config import load_config
from cluster.samples import Sample, judged_sample
from core.rollout import Completion
from curriculum.prompt import build_prompt
from curriculum.state import CurriculumState

# bundled/rl/count/0: "print how many of the integers on one line equal 8"; its stage 0
# starts at the `for` on line 3 (prefix: lines 1-2), its stage 1 is the whole program.
PROBLEM = "bundled/rl/count/0"
DEAD = "def never_called():\n    total = 0\n    return total\n"
RIGHT = "\nfor x in nums:\n    if x == 8:\n        count += 1\nprint(count)\n"
WRONG = "\nfor x in nums:\n    if x == 9:\n        count += 1\nprint(count)\n"
HACK = "print(1)\n"  # at the whole-program stage: prints without reading


def bundled_problem(pid: str = PROBLEM):
    from problems.load import load_problems

    return next(p for p in load_problems("bundled:rl").problems if p.id == pid)


def completion_of(tokenizer, text: str, version: int = 0) -> Completion:
    ids = tuple(tokenizer(text, add_special_tokens=False).input_ids) + (tokenizer.eos_token_id,)
    return Completion(ids, (0.0,) * len(ids), "stop", version, text)


def judged(judge, tokenizer, problem, stage: int, text: str, fgo: bool = True, version: int = 0) -> Sample:
    """`text` as the completion of `problem` at curriculum `stage`, judged for real."""
    curriculum = CurriculumState.from_problems([problem], load_config(None, []).curriculum)
    assignment = curriculum.assignment(problem.id, stage)
    prompt = build_prompt(problem, tokenizer, assignment.start)
    result = judge.judge(problem, prompt.prefix + text, coverage=True)
    return judged_sample(tokenizer, problem, prompt, assignment, completion_of(tokenizer, text, version), result, fgo)


def plain_sample(pid: str, text: str, verdict: str, hacks: tuple[str, ...] = (), stage: int = 0,
                 reward: float = 0.0) -> Sample:
    """A Sample with an observation but no judge behind it (for the pure batch functions)."""
    from cluster.observation import Observation

    observed = Observation(num_stages=2, start_line=1, start_kind="program", prefix="", prefix_first_line=1,
                           masked_spans=(), executed_lines=(), tests_passed=0, tests_total=1, test_verdicts="W",
                           test_times=(0.01,), judge_s=0.01, failing=None, error=None, hacks=hacks)
    return Sample((1,), (2, 3), text, reward, None, verdict, pid, stage, "easy", 0, (0.0, 0.0), observed=observed)


# Fixtures shared by the observability tests (import them by name into a test module).
@pytest.fixture(scope="module")
def tokenizer():
    from models.tokenizer import stdlib_source_sample, train_tokenizer

    return train_tokenizer(list(stdlib_source_sample(200_000)), 512)


@pytest.fixture(scope="module")
def judge():
    from executors.config import ExecutorConfig
    from executors.judge import Judge

    with Judge(ExecutorConfig(timeout_s=2.0), slots=1) as j:
        if j.coverage_mode is None:
            pytest.skip("the fork server has no line coverage here: nothing for FGO to mask")
        yield j


@pytest.fixture(scope="module")
def problem():
    return bundled_problem()
