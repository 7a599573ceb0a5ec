"""`execrl train` and `execrl eval` end to end on the bundled default, shrunk to seconds."""

import json

import pytest

from cluster.cli import main
from cluster.config import load_config
from cluster.train import run_training

SMALL = ["learner.sft.steps=20", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=2", "eval_problems=6",
         "rollout.max_new_tokens=64", "wandb.mode=offline", "checkpoint_every=1"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("model-cache"))


# Metrics that depend on the clock or on how busy the machine is.
TIMING = ("time/", "tokens_per_second", "overlap", "executor_queue_depth")


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_train_runs_logs_checkpoints_and_resumes(ray_session, tmp_path, cache_dir):
    run = tmp_path / "run"
    overrides = SMALL + [f"model.cache_dir={cache_dir}", f"output_dir={run}"]
    logged = []
    report = run_training(load_config(None, overrides + ["iterations=2"]), log=logged.append)
    assert {"heldout_before", "heldout_after", "transfer_before", "transfer_after", "rl_pool_before",
            "rl_pool_after"} <= set(report)
    assert all(0.0 <= report[k] <= 1.0 for k in report if k.endswith(("_before", "_after")))
    assert report["sandbox_errors"]["before"].keys() == {"heldout", "transfer", "rl_pool"}
    assert any(line.startswith("transfer before RL:") for line in logged)  # the same evaluation as held-out
    assert "transfer" in logged[-1] and "held-out" in logged[-1]
    saved = json.loads((run / "eval_before_rl.json").read_text())
    assert saved["transfer"] == report["transfer_before"] and saved["reports"]["transfer"]["problems"] == 6
    rows = rows_of(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1]
    for key in ("reward", "pass_rate", "masked_token_fraction", "curriculum/fraction_at_position_0",
                "learner/policy_loss", "learner/value_loss", "learner/kl_ref", "learner/entropy",
                "tokens_per_second", "time/generate", "time/learn", "time/sync", "executor_queue_depth",
                "sandbox_errors", "fgo/coverage_unknown_samples"):
        assert key in rows[0], key
    assert sum(v for k, v in rows[0].items() if k.startswith("verdict/")) == pytest.approx(1.0)
    assert rows[0]["executor_queue_depth_max"] >= 1  # sampled while the batch streamed
    assert (run / "checkpoints" / "latest").exists() and list((run / "wandb").iterdir())
    assert all(r["policy_lag"] == 0 for r in rows)  # on-policy
    # Resume: the run continues at the saved iteration, not from the start, and reports
    # the SFT model's evaluation from the first start (not its resumed policy's).
    logged = []
    resumed = run_training(load_config(None, overrides + ["iterations=3"]), resume=str(run), log=logged.append)
    rows = rows_of(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert resumed["heldout_before"] == report["heldout_before"]
    assert resumed["rl_pool_before"] == report["rl_pool_before"]
    assert resumed["transfer_before"] == report["transfer_before"]
    assert any("before RL (from" in line for line in logged)
    # ...and its next iteration is the one an uninterrupted run computes at that step:
    # the same completions, verdicts and rewards, losses, curriculum and data order.
    straight = tmp_path / "straight"
    run_training(load_config(None, SMALL + [f"model.cache_dir={cache_dir}", f"output_dir={straight}",
                                            "iterations=3"]), log=lambda *_: None)
    expected, got = rows_of(straight / "metrics.jsonl")[2], rows[2]
    assert got["learner/policy_loss"] != 0 and got["learner/action_tokens"] > 0
    for key, value in expected.items():
        if not key.startswith(TIMING):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    samples = [r for r in rows_of(run / "samples.jsonl") if r["step"] == 2]
    assert samples and samples == [r for r in rows_of(straight / "samples.jsonl") if r["step"] == 2]
    state = [json.loads((d / "checkpoints" / "step_000003" / "client_state.json").read_text())["client_state"]
             for d in (run, straight)]
    assert state[0]["curriculum"] == state[1]["curriculum"] and state[0]["order"] == state[1]["order"]


@pytest.mark.slow
def test_one_step_off_policy_with_the_learner_in_a_ray_actor(ray_session, tmp_path, cache_dir):
    # Batches train one update stale, with the sampler's log-probs as PPO's old ones (so
    # the ratio sees the staleness); the learner runs as a placement-grouped Ray actor.
    run = tmp_path / "run"
    overrides = SMALL + [f"model.cache_dir={cache_dir}", f"output_dir={run}", "iterations=3",
                         "one_step_off_policy=true", "learner.num_workers=1",
                         "learner.old_logprobs=rollout", "rollout.top_p=1.0"]
    run_training(load_config(None, overrides), log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [r["policy_lag"] for r in rows] == [0, 1, 1]
    assert "time/wait_for_next_batch" in rows[0] and "time/wait_for_next_batch" not in rows[2]


def test_a_batch_drawn_before_a_checkpoint_is_redrawn_identically_on_resume():
    from cluster.trainer import PPOIteration
    from problems.load import load_problems

    cfg = load_config(None, ["one_step_off_policy=true"])
    problems = load_problems("bundled:rl").problems[:40]

    def iteration():
        return PPOIteration.create(cfg, problems, None, None, None, None)

    first = iteration()
    drawn = [first.draw(3), first.draw(4)]  # interrupted at step 3 with step 4 prefetching
    state = json.loads(json.dumps(first.state_dict()))  # it travels in a checkpoint's JSON
    second = iteration()
    second.load_state_dict(state)
    assert [d.step for d in second._untrained] == [3, 4]
    for old, new in zip(drawn, second._untrained):
        assert new.ids == old.ids
        assert {pid: (a.stage, a.start) for pid, a in new.assignments.items()} == \
               {pid: (a.stage, a.start) for pid, a in old.assignments.items()}
    assert second.draw(5).ids == first.draw(5).ids  # the data order continues exactly
    assert iteration().state_dict()["untrained_draws"] == []


def test_data_order_batches_hold_distinct_problems_across_epochs():
    from cluster.trainer import DataOrder

    ids = [f"p{i}" for i in range(20)]
    for seed in range(50):
        order = DataOrder(ids, seed)
        for _ in range(10):  # 160 draws: epochs wrap inside batches
            batch = order.next(16)
            assert len(batch) == len(set(batch)) == 16
    with pytest.raises(ValueError, match="needs at least 21 distinct problems"):
        DataOrder(ids, 0).next(21)


def test_bad_data_path_fails_before_anything_starts(tmp_path, capsys):
    assert main(["train", "data.rl=/nonexistent/rl.jsonl", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "data.rl" in err and "/nonexistent/rl.jsonl" in err
    assert not (tmp_path / "config.yaml").exists()


def test_bad_override_fails_with_the_key(capsys):
    assert main(["train", "learner.lrr=1"]) == 2
    assert "unknown config key 'learner.lrr'" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_cli_reports_pass_at_k(ray_session, tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "per_problem.jsonl"
    code = main(["eval", "--model", str(tiny_model_dir), "--problems", "bundled:heldout", "-n", "2", "-k", "1,2",
                 "--out", str(out), "rollout.max_new_tokens=32"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "pass@2" in printed
    assert "compile@1" in printed and "execute@2" in printed and "static-clean@1" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 182 and {"problem_id", "pass@1", "pass@2", "difficulty"} <= set(rows[0])
    assert all(r["n"] >= r["compile"] >= r["execute"] >= r["correct"] and r["static_clean"] <= r["compile"]
               for r in rows)


def test_pass_at_k_estimator():
    from cluster.evaluate import pass_at_k

    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - (3 * 2) / (5 * 4))
    with pytest.raises(ValueError, match="pass@5 needs at least 5"):
        pass_at_k(4, 1, 5)


def test_sft_runs_on_a_ray_task_when_the_learner_is_on_actors(ray_session, tmp_path, tiny_model_dir):
    """With learner.num_workers >= 1 the warm start must not train in the driver (on a GPU
    cluster the driver has no GPU): it runs as a Ray task and its result is cached."""
    import os
    import re

    from cluster.warmstart import warm_start
    from problems.bundled import generate_split

    cfg = load_config(None, ["learner.num_workers=1", "learner.sft.steps=3", "learner.sft.batch_size=4",
                             f"model.cache_dir={tmp_path / 'cache'}"])
    problems = generate_split("sft")[:12]
    lines: list[str] = []
    model_dir = warm_start(cfg, str(tiny_model_dir), problems, lines.append)
    ran = [re.search(r"SFT runs in a Ray task \(pid (\d+)", line) for line in lines]
    pids = [int(m.group(1)) for m in ran if m]
    assert pids and pids[0] != os.getpid(), lines
    assert any("sft step 3/3" in line for line in lines)
    assert (tmp_path / "cache").exists() and os.path.isfile(os.path.join(model_dir, "config.json"))
    again: list[str] = []
    assert warm_start(cfg, str(tiny_model_dir), problems, again.append) == model_dir
    assert again == [f"SFT model found in cache: {model_dir}"]
    # the same base model spelled as a relative path is the same cache entry (no second SFT)
    relative = os.path.relpath(tiny_model_dir)
    assert relative != str(tiny_model_dir) and warm_start(cfg, relative, problems, again.append) == model_dir
