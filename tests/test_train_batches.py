"""What the trainer hands on from a judged batch: each sample's own verdict, FGO masks that
reach the learner, no evidence-free masking, and sandbox errors kept out of the
curriculum, the pass rates, the PPO batch and pass@k (but counted)."""

from __future__ import annotations

import collections
import types

import pytest

from cluster.config import load_config
from cluster.evaluate import tally
from cluster.samples import Sample, judged_sample, sample_metrics, stage_results
from cluster.trainer import PPOIteration
from core.problem import Problem, StdioTest
from core.rollout import Completion
from core.verdict import PASS, SANDBOX_ERROR, WRONG_ANSWER, ExecutionResult
from curriculum.prompt import build_prompt
from curriculum.state import StageResult
from executors.judge import Submission
from problems.load import load_problems

DEAD_CODE = "\ndef never_called():\n    total = 0\n    return total\n"


@pytest.fixture(scope="module")
def executors(ray_session):
    from executors.pool import ExecutorPool

    pool = ExecutorPool(load_config(None, ["executor.num_actors=1"]).executor)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def sft_model(tiny_model_dir, tmp_path_factory):
    """The tiny model after a short SFT: its samples pass, fail and do not compile, so a
    sample paired with another's verdict shows."""
    from cluster.warmstart import train_sft
    from problems.bundled import generate_split

    cfg = load_config(None, ["learner.sft.steps=40", "learner.sft.batch_size=16"])
    target = tmp_path_factory.mktemp("sft") / "model"
    train_sft(cfg, str(tiny_model_dir), generate_split("sft")[:400], str(target), log=lambda *_: None)
    return target


def completion_of(tokenizer, text: str) -> Completion:
    ids = tuple(tokenizer(text, add_special_tokens=False).input_ids) + (tokenizer.eos_token_id,)
    return Completion(ids, (0.0,) * len(ids), "stop", 0, text)


def live_iteration(sft_model, executors, overrides: list[str], n_problems: int):
    """A PPOIteration over the first RL problems with a real rollout pool on the SFT model."""
    from transformers import AutoTokenizer

    from actors.rollout_pool import RolloutPool

    cfg = load_config(None, overrides)
    tokenizer = AutoTokenizer.from_pretrained(sft_model)
    problems = load_problems("bundled:rl:0").problems[:n_problems]
    rollout = RolloutPool(cfg.rollout, str(sft_model))
    return cfg, tokenizer, problems, rollout, PPOIteration.create(cfg, problems, tokenizer, rollout, executors, None)


@pytest.mark.slow
def test_each_sample_carries_the_verdict_of_its_own_program(ray_session, sft_model, executors):
    cfg, tokenizer, problems, rollout, iteration = live_iteration(
        sft_model, executors, ["problems_per_iteration=8", "rollout.samples_per_prompt=4",
                               "rollout.max_new_tokens=48", "rollout.batch_size=8"], 32)
    try:
        collected = iteration.collect(iteration.draw(0))
    finally:
        iteration.close()
        rollout.shutdown()
    samples, draw = collected.samples, collected.draw
    assert [s.problem_id for s in samples] == [pid for pid in draw.ids for _ in range(4)]  # draw order
    by_id = {p.id: p for p in problems}
    programs = [build_prompt(by_id[s.problem_id], tokenizer, draw.assignments[s.problem_id].start).prefix + s.text
                for s in samples]
    again = executors.judge([Submission(by_id[s.problem_id], program) for s, program in zip(samples, programs)])
    verdicts = [s.verdict for s in samples]
    assert len(set(verdicts)) >= 2, f"every sample got {verdicts[0]}: the pairing is not tested"
    for s, result in zip(samples, again):
        assert tokenizer.decode(s.completion_ids, skip_special_tokens=True).startswith(s.text)
        assert (s.verdict, s.reward) == (result.verdict, result.reward), s.problem_id
        assert s.stage == draw.assignments[s.problem_id].stage


@pytest.mark.slow
def test_fgo_masks_reach_the_learner(ray_session, tiny_model_dir, executors):
    """Programs with a function the tests never call: its body's tokens are masked, and
    the learner's policy loss counts exactly the tokens FGO kept."""
    from transformers import AutoTokenizer

    from learner.ppo import PPOLearner

    cfg = load_config(None, ["learner.minibatch_size=8", "learner.micro_batch_size=8"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    problems = load_problems("bundled:rl:0").problems[:8]
    iteration = PPOIteration.create(cfg, problems, tokenizer, None, None, None)
    iteration.learner = PPOLearner.from_pretrained(tiny_model_dir, cfg.learner)
    texts = [p.canonical_solution + DEAD_CODE for p in problems]
    results = executors.judge([Submission(p, text) for p, text in zip(problems, texts)])
    assignments = {a.problem_id: a for a in iteration.curriculum.sample([p.id for p in problems])}
    samples = [judged_sample(tokenizer, p, build_prompt(p, tokenizer), assignments[p.id], completion_of(tokenizer, t),
                             r, fgo=True) for p, t, r in zip(problems, texts, results)]
    assert all(s.verdict == PASS for s in samples)
    assert all(not all(s.keep) and any(s.keep) for s in samples)
    lost = ExecutionResult(problems[0].id, SANDBOX_ERROR, None)  # our failure: not trained on
    broken = judged_sample(tokenizer, problems[0], build_prompt(problems[0], tokenizer), assignments[problems[0].id],
                           completion_of(tokenizer, texts[0]), lost, fgo=True)
    batch, dropped = iteration._batch([broken] + samples)
    assert dropped == 1 and len(batch) == len(samples)
    for row, s in enumerate(samples):
        start = len(s.prompt_ids)
        assert batch.policy_mask[row, start:start + len(s.keep)].tolist() == [int(k) for k in s.keep]
    stats = iteration.learner.update(batch)
    assert stats.policy_tokens == sum(sum(s.keep) for s in samples) < stats.action_tokens


def test_unknown_coverage_keeps_every_token_and_is_counted(tiny_model_dir):
    """A test ran but its executed lines were lost: FGO keeps the whole completion."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    problem = load_problems("bundled:rl:0").problems[0]
    iteration = PPOIteration.create(load_config(None, []), [problem], tokenizer, None, None, None)
    assignment = iteration.curriculum.sample([problem.id])[0]
    completion = completion_of(tokenizer, problem.canonical_solution + DEAD_CODE)
    lines = len((problem.canonical_solution + DEAD_CODE).splitlines())
    lost = ExecutionResult(problem.id, WRONG_ANSWER, -0.3, executed_lines=(), executable_lines=tuple(range(1, lines)),
                           coverage_known=False)
    known = ExecutionResult(problem.id, WRONG_ANSWER, -0.3, executed_lines=(1,), executable_lines=tuple(range(1, lines)))
    prompt = build_prompt(problem, tokenizer)
    a = judged_sample(tokenizer, problem, prompt, assignment, completion, lost, fgo=True)
    b = judged_sample(tokenizer, problem, prompt, assignment, completion, known, fgo=True)
    assert all(a.keep) and a.coverage_unknown
    assert not all(b.keep) and not b.coverage_unknown
    metrics = sample_metrics([a, b, a])
    assert metrics["fgo/coverage_unknown_samples"] == 2
    with pytest.raises(RuntimeError, match="paired with a completion"):
        judged_sample(tokenizer, problem, prompt, assignment, completion,
                      ExecutionResult("other", PASS, 1.0), fgo=True)


def sample(pid: str, verdict: str, reward: float, stage: int = 0, level: str = "easy") -> Sample:
    return Sample((1, 2), (3, 4), "x", reward, [True, True], verdict, pid, stage, level, 0, (0.0, 0.0))


def test_sandbox_errors_are_not_the_programs_failures():
    samples = [sample("a", PASS, 1.0), sample("a", SANDBOX_ERROR, float("nan")), sample("b", WRONG_ANSWER, -0.3, 1),
               sample("b", SANDBOX_ERROR, float("nan"), 1, "hard")]
    assert stage_results(samples) == [StageResult("a", 0, True), StageResult("b", 1, False)]
    metrics = sample_metrics(samples)
    assert metrics["sandbox_errors"] == 2
    assert metrics["pass_rate"] == 0.5 and metrics["reward"] == pytest.approx(0.35)
    assert metrics["pass_rate/easy"] == 0.5 and "pass_rate/hard" not in metrics
    assert metrics["verdict/sandbox_error"] == 0.5  # the mix shows our failures beside the programs'
    restored = [Sample.from_json(s.to_json()) for s in samples]
    assert [s.verdict for s in restored] == [s.verdict for s in samples] and restored[1].reward != restored[1].reward


def test_sandbox_errors_are_left_out_of_pass_at_k_and_reported():
    tests = (StdioTest("1\n", "1\n"),)
    problems = [Problem(id="p", source="test", statement="s", tests=tests, difficulty="easy"),
                Problem(id="q", source="test", statement="s", tests=tests, difficulty="hard")]

    def result(pid, verdict):
        return ExecutionResult(pid, verdict, None if verdict == SANDBOX_ERROR else 0.0)

    results = ([result("p", PASS), result("p", SANDBOX_ERROR), result("p", WRONG_ANSWER), result("p", SANDBOX_ERROR)]
               + [result("q", PASS), result("q", SANDBOX_ERROR), result("q", SANDBOX_ERROR), result("q", SANDBOX_ERROR)])
    report = tally(problems, results, n=4, ks=[1, 2])
    rows = {r["problem_id"]: r for r in report.per_problem}
    assert (rows["p"]["n"], rows["p"]["correct"], rows["p"]["sandbox_errors"]) == (2, 1, 2)
    assert rows["p"]["pass@1"] == 0.5 and rows["q"]["pass@1"] == 1.0 and rows["q"]["pass@2"] is None
    assert report.pass_at == {1: 0.75, 2: 1.0} and report.unscored == {1: 0, 2: 1}
    assert report.sandbox_errors == 5 and report.to_dict()["sandbox_errors"] == 5
    line = report.summary("held-out").splitlines()[0]
    assert "5 samples excluded: sandbox errors" in line and "1 problem(s) without pass@2" in line
    clean = tally(problems, [result(pid, PASS) for pid in "pppqqqq" + "p"], n=4, ks=[1])
    assert "excluded" not in clean.summary() and clean.sandbox_errors == 0
    assert collections.Counter(r["n"] for r in clean.per_problem) == {4: 2}


def test_the_training_summary_line_counts_excluded_samples():
    from cluster.train import summary_line

    report = {"heldout_before": 0.5, "heldout_after": 0.625, "transfer_before": 0.25, "transfer_after": 0.5,
              "rl_pool_before": 0.75, "rl_pool_after": 1.0, "sandbox_errors": {"before": {"heldout": 2, "transfer": 0},
                                                                               "after": {"rl_pool": 1}}}
    line = summary_line(report, 4)
    assert "held-out pass@1 (sampled, 4/problem): SFT 0.500 -> RL 0.625" in line
    assert "transfer pass@1: 0.250 -> 0.500" in line and line.endswith("(3 samples excluded: sandbox errors)")
    report["sandbox_errors"] = {"before": {}, "after": {}}
    assert "excluded" not in summary_line(report, 4)


def test_dynamic_sampling_replaces_groups_without_signal_and_resumes_its_rounds(ray_session, sft_model, executors):
    """Greedy decoding: every group's samples are identical, so no group has a signal;
    dynamic sampling draws a replacement for each, round after round, up to its cap, and
    a batch drawn before a checkpoint comes back with the same rounds and samples."""
    import json

    cfg, tokenizer, problems, rollout, iteration = live_iteration(
        sft_model, executors, ["problems_per_iteration=4", "rollout.samples_per_prompt=2", "rollout.max_new_tokens=32",
                               "rollout.temperature=0", "learner.dynamic_sampling=true",
                               "learner.dynamic_sampling_max_rounds=2", "learner.minibatch_size=8",
                               "learner.micro_batch_size=8"], 40)
    try:
        draw = iteration.draw(0)
        state = json.loads(json.dumps(iteration.state_dict()))
        collected = iteration.collect(draw)
        assert [len(r) for r in draw.rounds] == [4, 4]  # a replacement per group, twice (the cap)
        ids = draw.all_ids
        assert len(set(ids)) == 12 and [s.problem_id for s in collected.samples] == [p for p in ids for _ in range(2)]
        metrics = iteration._dynamic_sampling_metrics(collected)
        assert metrics["dynamic_sampling/extra_problems"] == 8 and metrics["dynamic_sampling/rounds"] == 2
        assert metrics["dynamic_sampling/informative_groups"] == 0
        assert metrics["dynamic_sampling/filled_uninformative"] == 4  # the batch keeps its size
        iteration.learner = types.SimpleNamespace(rows_per_step=8)  # only the step size is read
        batch, _ = iteration._batch(collected.samples)
        assert len(batch) == 8 and batch.group_ids.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        resumed = PPOIteration.create(cfg, problems, tokenizer, rollout, executors, None)
        resumed.load_state_dict(json.loads(json.dumps(iteration.state_dict())))
        assert resumed._untrained[0].rounds == draw.rounds
        again = resumed.collect(resumed._untrained[0])
        assert [(s.problem_id, s.completion_ids) for s in again.samples] == \
               [(s.problem_id, s.completion_ids) for s in collected.samples]
        fresh = PPOIteration.create(cfg, problems, tokenizer, rollout, executors, None)
        fresh.load_state_dict(state)  # saved before any round: the rounds are drawn again, identically
        assert fresh.collect(fresh._untrained[0]).draw.rounds == draw.rounds
    finally:
        iteration.close()
        rollout.shutdown()


def test_dynamic_selection_puts_informative_groups_first():
    from cluster.trainer import dynamic_selection, informative_groups

    samples = [sample("a", PASS, 1.0), sample("a", PASS, 1.0), sample("b", PASS, 1.0), sample("b", WRONG_ANSWER, -0.3),
               sample("c", WRONG_ANSWER, -0.3), sample("c", SANDBOX_ERROR, float("nan")),
               sample("d", WRONG_ANSWER, -0.3), sample("d", PASS, 1.0)]
    assert informative_groups(samples) == ["b", "d"]  # c's sandbox error is no reward of the program
    chosen = dynamic_selection(samples, 3)
    assert [s.problem_id for s in chosen] == ["b", "b", "d", "d", "a", "a"]


def test_the_over_length_penalty_reaches_the_reward(tiny_model_dir):
    """The trainer prices each completion by DAPO's rule and the sample's reward carries
    it: a cut completion pays all of it, one in the buffer a share, and it is logged."""
    from transformers import AutoTokenizer

    cfg = load_config(None, ["rollout.max_new_tokens=32", "learner.overlong_penalty=0.5", "learner.overlong_buffer=8"])
    iteration = PPOIteration.create(cfg, load_problems("bundled:rl:0").problems[:4], None, None, None, None)
    cut = Completion((5,) * 32, (0.0,) * 32, "length", 0, "x = 1")
    near = Completion((5,) * 28, (0.0,) * 28, "stop", 0, "x = 1")
    short = Completion((5,) * 10, (0.0,) * 10, "stop", 0, "x = 1")
    assert [iteration._overlong(c) for c in (cut, near, short)] == [0.5, 0.5 * 4 / 8, 0.0]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    problem = iteration.problems[next(iter(iteration.problems))]
    assignment = iteration.curriculum.sample([problem.id])[0]
    result = ExecutionResult(problem.id, WRONG_ANSWER, -0.3)
    sample = judged_sample(tokenizer, problem, build_prompt(problem, tokenizer), assignment, cut, result, fgo=False,
                           penalty=iteration._overlong(cut))
    assert sample.reward == pytest.approx(-0.8) and sample.cut and sample.overlong_penalty == 0.5
    metrics = sample_metrics([sample])
    assert metrics["overlong/cut_fraction"] == 1.0 and metrics["overlong/penalty_mean"] == 0.5
