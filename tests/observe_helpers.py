"""Real judged samples for the observability tests: a bundled problem, a curriculum start
point, a prompt, a completion tokenised by a real tokenizer, the real sandboxed judge's
result and FGO's mask, all through `cluster.samples.judged_sample` as the trainer does."""

from __future__ import annotations

import json

import pytest

from cluster.config import load_config
from cluster.distributions import batch_distributions
from cluster.hacking import hacking_counts
from cluster.metrics import MetricsLogger
from cluster.samples import Sample, judged_sample, sample_metrics, stage_results
from core.rollout import Completion
from curriculum.prompt import build_prompt
from curriculum.state import CurriculumState

# bundled/rl/count/0: "print how many of the integers on one line equal 8"; its stage 0
# starts at the `for` on line 3 (prefix: lines 1-2), its stage 1 is the whole program.
PROBLEM = "bundled/rl/count/0"
OTHER = "bundled/rl/count/1"
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
                 reward: float = 0.0, prefix: str = "", problem_key: str = "") -> Sample:
    """A Sample with an observation but no judge behind it (for the pure batch functions)."""
    from cluster.observation import Observation

    observed = Observation(num_stages=2, start_line=1, start_kind="program", prefix=prefix, prefix_first_line=1,
                           masked_spans=(), executed_lines=(), tests_passed=0, tests_total=1, test_verdicts="W",
                           test_times=(0.01,), judge_s=0.01, failing=None, error=None, hacks=hacks,
                           problem_key=problem_key)
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


def write_run(run_dir, judge, tokenizer, checkpoint: bool = True) -> CurriculumState:
    """Four iterations of two problems: PROBLEM passes at stage 0 and moves to stage 1
    (position 0) after step 1, where a hack follows; OTHER keeps failing."""
    problems = [bundled_problem(PROBLEM), bundled_problem(OTHER)]
    cfg = load_config(None, ["iterations=4", "observe.table_every=2", "wandb.mode=disabled", "curriculum.window=4"])
    curriculum = CurriculumState.from_problems(problems, cfg.curriculum)
    logger = MetricsLogger(cfg, run_dir)
    other_wrong = "\nfor x in nums:\n    print(x)\n"
    for step in range(4):
        stage = curriculum.current_stage(PROBLEM)
        texts = [RIGHT + DEAD, RIGHT] if stage == 0 else [HACK, RIGHT.replace("\nfor", "nums = [int(x) for x in "
                                                                                   "input().split()]\ncount = 0\nfor")]
        batch = [judged(judge, tokenizer, problems[0], stage, t, version=step) for t in texts]
        batch += [judged(judge, tokenizer, problems[1], 0, t, version=step) for t in (WRONG, other_wrong)]
        curriculum.report(stage_results(batch), step)
        logger.log_samples(step, batch)
        summary = curriculum.summary()
        logger.log(step, {**sample_metrics(batch), **batch_distributions(batch), **hacking_counts(batch, 3),
                          "curriculum/fraction_at_position_0": summary["fraction_at_position_0"]})
    logger.close()
    if checkpoint:
        path = run_dir / "checkpoints" / "step_000004"
        path.mkdir(parents=True)
        (path / "client_state.json").write_text(json.dumps({"step": 4, "client_state": {
            "curriculum": curriculum.state_dict()}, "learner_state": {}}))
        (run_dir / "checkpoints" / "latest").write_text("step_000004\n")
    return curriculum
