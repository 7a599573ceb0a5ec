"""Every advantage estimator trains end to end with CCCS and FGO (`execrl train`, shrunk),
and what it logs says which estimator and which DAPO options ran."""

import json

import pytest

from cluster.config import load_config
from cluster.train import run_training

SMALL = ["learner.sft.steps=20", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=1", "eval_problems=2",
         "rollout.max_new_tokens=48", "wandb.mode=disabled", "iterations=2", "checkpoint_every=2"]
VARIANTS = {
    "grpo": ["learner.advantage_estimator=grpo", "learner.kl_mode=loss", "learner.kl_estimator=k3",
             "learner.clip_ratio_low=0.2", "learner.clip_ratio_high=0.28",
             "learner.loss_aggregation=seq_mean_token_mean", "learner.dynamic_sampling=true",
             "learner.overlong_penalty=0.5", "learner.overlong_buffer=8"],
    "rloo": ["learner.advantage_estimator=rloo"],
    "reinforce_pp": ["learner.advantage_estimator=reinforce_pp", "learner.kl_mode=none"],
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("model-cache"))


@pytest.mark.slow
@pytest.mark.parametrize("estimator", sorted(VARIANTS))
def test_each_estimator_trains_with_cccs_and_fgo(ray_session, tmp_path, cache_dir, estimator):
    run = tmp_path / "run"
    cfg = load_config(None, SMALL + VARIANTS[estimator] + [f"model.cache_dir={cache_dir}", f"output_dir={run}"])
    assert cfg.curriculum.enabled and cfg.learner.fgo
    run_training(cfg, log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "reward" in r]  # iterations (evaluation lines have their own keys)
    assert [r["step"] for r in rows] == [0, 1]
    for r in rows:
        assert r["learner/value_loss"] == 0.0 and r["learner/value_mean"] == 0.0  # no critic
        assert r["learner/policy_tokens"] <= r["learner/action_tokens"]
        assert 0.0 <= r["masked_token_fraction"] < 1.0 and "curriculum/fraction_at_position_0" in r
        assert r["generated_samples"] >= 16 and r["generated_tokens"] > 0
    step = run / "checkpoints" / "step_000002"
    assert (step / "policy").is_dir() and not (step / "critic").exists()
    if estimator == "grpo":
        assert all("dynamic_sampling/rounds" in r for r in rows)
        assert all(r["generated_samples"] == 16 + 4 * r["dynamic_sampling/extra_problems"] for r in rows)
        assert any(r["learner/kl_loss"] != 0.0 for r in rows) and all(r["learner/kl_beta"] > 0 for r in rows)
        cut = [r for r in rows if r["overlong/cut_fraction"] > 0]
        assert all(r["overlong/penalty_mean"] > 0 for r in cut)
    else:
        assert all("dynamic_sampling/rounds" not in r and r["learner/kl_loss"] == 0.0 for r in rows)
