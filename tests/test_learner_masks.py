"""Which mask each PPO term uses, checked through the real learner (tiny model, DeepSpeed on
CPU): the policy loss and the entropy bonus see only `policy_mask` (FGO), the value loss
and advantages every action token, and the prompt and canonical prefix nothing."""

from __future__ import annotations

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
