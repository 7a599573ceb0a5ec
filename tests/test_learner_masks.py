"""Which mask each PPO term uses, checked through the real learner (tiny model, DeepSpeed on
CPU): the policy loss and the entropy bonus see only `policy_mask` (FGO), the value loss
and advantages every action token, and the prompt and canonical prefix nothing."""

from __future__ import annotations

import pytest
import torch

from learner.batches import PPOBatch
from learner.bench import synthetic_batch
from learner.config import LearnerConfig
from learner.ppo import PPOLearner, sequence_logprobs
from learner.ppo_math import logprobs_and_entropy, masked_mean

SMALL = dict(minibatch_size=4, micro_batch_size=4)


def params(engine) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().float() for k, v in engine.module.named_parameters()}


def moved(before: dict, engine) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in params(engine).items())


def with_policy_mask(batch: PPOBatch, policy_mask: torch.Tensor) -> PPOBatch:
    return PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask, policy_mask, batch.rewards)


def test_entropy_bonus_sees_only_executed_tokens(tiny_model_dir):
    """Nothing executed, an entropy bonus on, no KL and no advantage signal: the policy
    must not move at all (the entropy of unexecuted tokens is not optimised either)."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=5)
    batch = with_policy_mask(batch, torch.zeros_like(batch.policy_mask))
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(entropy_coef=0.5, lr=1e-2, **SMALL))
    before = params(learner.engines.policy)
    stats = learner.update(batch)
    assert not moved(before, learner.engines.policy)
    assert stats.entropy == 0.0 and stats.policy_tokens == 0


def test_logged_entropy_is_the_mean_over_policy_mask_tokens(tiny_model_dir):
    """One micro-batch, one epoch: the logged entropy is the initial policy's, averaged over
    exactly the policy_mask tokens (not all action tokens)."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=6)
    holes = batch.action_mask.clone()
    holes[:, 8:] = 0  # the completion's last tokens were never executed
    batch = with_policy_mask(batch, holes)
    assert not torch.equal(batch.policy_mask, batch.action_mask)
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(entropy_coef=0.01, ppo_epochs=1, **SMALL))
    with torch.no_grad():
        logits = learner.engines.policy(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        _, entropy = logprobs_and_entropy(logits, batch.input_ids, temperature=batch.temperature)
    on_policy_tokens = float(masked_mean(entropy, batch.policy_mask.float()))
    on_action_tokens = float(masked_mean(entropy, batch.action_mask.float()))
    assert abs(on_policy_tokens - on_action_tokens) > 1e-4  # the two masks give different answers
    stats = learner.update(batch)
    assert abs(stats.entropy - on_policy_tokens) < 1e-5


def test_value_loss_and_advantages_cover_every_action_token(tiny_model_dir):
    """Nothing executed: the critic still learns from every action token (its value loss
    is over action_mask), and advantages exist on unexecuted tokens too."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=7)
    batch = with_policy_mask(batch, torch.zeros_like(batch.policy_mask))
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(**SMALL))
    exp, _ = learner.make_experience(batch)
    assert torch.all((exp.advantages != 0) <= exp.action_mask.bool())
    assert bool((exp.advantages[exp.action_mask.bool()] != 0).all())
    before = params(learner.engines.critic)
    stats = learner.update(batch)
    assert moved(before, learner.engines.critic) and stats.value_loss > 0


def test_the_prompt_is_in_no_loss(tiny_model_dir):
    """Prompt (and canonical prefix) tokens are never actions: whatever old log-probs are
    handed in for them, the experience the update trains on is the same."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=8)
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(**SMALL))
    with torch.no_grad():
        old = sequence_logprobs(learner.engines.policy, batch.input_ids, batch.attention_mask)
    garbage = torch.where(batch.action_mask.bool(), old, torch.full_like(old, -1e4))
    exp_a, _ = learner.make_experience(PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask,
                                                batch.policy_mask, batch.rewards, old))
    exp_b, _ = learner.make_experience(PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask,
                                                batch.policy_mask, batch.rewards, garbage))
    for name in ("old_logprobs", "advantages", "returns"):
        assert torch.equal(getattr(exp_a, name), getattr(exp_b, name)), name


def test_kl_penalty_covers_every_action_token(tiny_model_dir):
    """Nothing executed: the KL to the reference is still charged on every emitted token."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=9)
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(kl_estimator="k1", **SMALL))
    with torch.no_grad():
        ref = sequence_logprobs(learner.engines.reference, batch.input_ids, batch.attention_mask)
    old = (ref - 0.5) * batch.action_mask  # the behaviour policy sits 0.5 nats below the reference on each token
    unexecuted = PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask,
                          torch.zeros_like(batch.policy_mask), batch.rewards, old)
    _, info = learner.make_experience(unexecuted)
    per_row = batch.action_mask.sum(1).float().mean()
    assert abs(info["kl_ref"] - (-0.5 * float(per_row))) < 1e-4


CRITIC_FREE = ("grpo", "rloo", "reinforce_pp")


def grouped(batch: PPOBatch, policy_mask: torch.Tensor | None = None) -> PPOBatch:
    """Two groups of two with differing rewards, so every estimator has a signal."""
    return PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask,
                    batch.policy_mask if policy_mask is None else policy_mask,
                    torch.tensor([1.0, -0.3, -1.0, 0.5]), group_ids=torch.tensor([0, 0, 1, 1]))


@pytest.mark.parametrize("estimator", CRITIC_FREE)
def test_critic_free_estimators_build_no_critic_and_train_the_policy(tiny_model_dir, estimator):
    batch = grouped(synthetic_batch(2048, 4, 6, 10, seed=11))
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(advantage_estimator=estimator, lr=1e-3,
                                                                       **SMALL))
    assert learner.engines.critic is None and set(learner.engines.trained()) == {"policy"}
    before = params(learner.engines.policy)
    stats = learner.update(batch)
    assert moved(before, learner.engines.policy)
    assert stats.value_loss == 0.0 and stats.vf_clipfrac == 0.0 and stats.score_mean > 0


@pytest.mark.parametrize("estimator", ["gae", *CRITIC_FREE])
def test_fgo_masks_the_policy_loss_of_every_estimator(tiny_model_dir, estimator):
    """Nothing executed, KL in the loss: no estimator moves the policy (its policy loss
    and its KL term both see only policy_mask)."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=12)
    batch = grouped(batch, torch.zeros_like(batch.policy_mask))
    cfg = LearnerConfig(advantage_estimator=estimator, kl_mode="loss", kl_estimator="k3", lr=1e-2, **SMALL)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    before = params(learner.engines.policy)
    learner.update(batch)
    assert not moved(before, learner.engines.policy)


def test_kl_in_the_loss_pulls_towards_the_reference_and_not_in_the_reward(tiny_model_dir):
    """kl_mode loss: advantages carry no KL (equal rewards, one group: all zero) while the
    KL term itself is logged and trains; kl_mode reward: the KL is in the advantages."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=13)
    flat = PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask, batch.policy_mask,
                    torch.zeros(4), group_ids=torch.zeros(4, dtype=torch.long))
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(advantage_estimator="grpo", kl_mode="loss",
                                                                       **SMALL))
    with torch.no_grad():
        ref = sequence_logprobs(learner.engines.reference, batch.input_ids, batch.attention_mask)
    off_ref = PPOBatch(flat.input_ids, flat.attention_mask, flat.action_mask, flat.policy_mask, flat.rewards,
                       (ref - 0.5) * batch.action_mask, group_ids=flat.group_ids)
    exp, _ = learner.make_experience(off_ref)
    assert float(exp.advantages.abs().sum()) == 0.0
    in_reward = PPOLearner(learner.engines, LearnerConfig(advantage_estimator="grpo", kl_mode="reward", **SMALL))
    exp_r, _ = in_reward.make_experience(off_ref)
    assert float(exp_r.advantages.abs().sum()) > 0
    stats = learner.update(flat)
    assert stats.kl_loss == 0.0  # the policy is the reference before the update: k3 is exactly 0


def test_a_group_keeps_its_scores_when_a_learner_group_splits_it():
    """Scores are computed over the whole batch before sharding: the same numbers whichever
    rows a shard gets."""
    from learner.ppo import scored

    batch = grouped(synthetic_batch(2048, 4, 6, 10, seed=14))
    whole = scored(batch, LearnerConfig(advantage_estimator="grpo"))
    shard = whole.select(slice(1, 3))  # cuts both groups
    assert torch.equal(shard.scores, whole.scores[1:3])
    assert torch.equal(scored(shard, LearnerConfig(advantage_estimator="grpo")).scores, whole.scores[1:3])
