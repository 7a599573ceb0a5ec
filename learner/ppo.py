"""PPO on DeepSpeed engines: make experience once, then clipped updates for a few epochs.

Reads top to bottom like CleanRL's ppo.py; the equations are in learner/ppo_math.py,
which also tabulates which mask each loss and statistic uses.  One `update(batch)` is
one PPO iteration over one rollout batch (this rank's share of it):

1. experience (no gradients): old log-probs (the rollout's, or recomputed), reference
   log-probs, values (every log-prob at the batch's sampling temperature); each
   sequence's score (the program's reward, or it against its group's for the
   critic-free estimators) on the last action token, with the per-token KL penalty when
   the KL is in the reward; advantages by the estimator (GAE with the critic, or the
   returns, whitened over this rank's action tokens for gae and reinforce_pp).
2. `ppo_epochs` passes over the batch in a fresh random order, in micro-batches; the
   engines accumulate gradients and step every `minibatch_size` sequences (all ranks).
3. the adaptive KL controller (if on) sees the batch's KL, averaged over ranks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from learner.batches import PPOBatch, _Rows
from learner.checkpoint import Resumed, load_checkpoint, save_checkpoint, seed_rng
from learner.config import LearnerConfig
from learner.dist import all_reduce_mean, setup_distributed, world_size
from learner.engines import Engine, PPOEngines, build_ppo_engines, micro_batches
from learner.export import full_state_dict
from learner.lora import module_scale
from learner.ppo_math import (KLController, aggregate, compute_kl, discounted_returns, gae, group_scores,
                              logprobs_and_entropy, logprobs_from_logits, masked_mean, policy_loss, token_rewards,
                              value_loss, whiten)

Tensor = torch.Tensor


@dataclass
class Experience(_Rows):
    """A rollout batch with everything the updates need, all [B, T] and token-aligned."""

    input_ids: Tensor
    attention_mask: Tensor
    action_mask: Tensor  # value loss
    policy_mask: Tensor  # policy loss and entropy: action_mask AND executed (FGO), or action_mask
    old_logprobs: Tensor
    ref_logprobs: Tensor  # the KL term of the loss (kl_mode loss)
    old_values: Tensor  # zeros without a critic
    advantages: Tensor
    returns: Tensor
    temperature: float  # the sampling temperature every log-prob is scored under


@dataclass
class PPOStats:
    """Means over this rank's micro-batches (losses) or its batch (experience)."""

    policy_loss: float
    value_loss: float  # 0 without a critic
    kl_loss: float  # beta * KL in the policy loss (kl_mode loss), else 0
    entropy: float
    approx_kl: float
    clipfrac: float
    vf_clipfrac: float
    kl_ref: float  # per-sequence KL(pi_old || pi_ref), summed over action tokens
    kl_beta: float  # the coefficient used for this batch's rewards
    reward: float
    score_mean: float  # mean |sequence score|: 0 when every group's rewards are equal (no signal)
    value_mean: float
    return_mean: float
    action_tokens: int
    policy_tokens: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def sequence_logprobs(engine: Engine, input_ids: Tensor, attention_mask: Tensor,
                      temperature: float = 1.0) -> Tensor:
    """[B, T] log-probs of the given tokens under a causal-LM engine (at `temperature`)."""
    logits = engine(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return logprobs_from_logits(logits, input_ids, temperature)


def scored(batch: PPOBatch, cfg: LearnerConfig) -> PPOBatch:
    """The batch with its sequence scores (`ppo_math.group_scores`), computed once over
    the whole batch: a learner group calls this before splitting it into shards, which
    may cut a group in two.  Without group ids every row is its own group."""
    if batch.scores is not None:
        return batch
    groups = batch.group_ids if batch.group_ids is not None else torch.arange(len(batch))
    return replace(batch, scores=group_scores(batch.rewards, groups, cfg.advantage_estimator, cfg.grpo_std_normalize))


class PPOLearner:
    def __init__(self, engines: PPOEngines, cfg: LearnerConfig):
        self.engines, self.cfg = engines, cfg
        self.kl_ctl = KLController(cfg.kl_beta, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.micro = engines.policy.train_micro_batch_size_per_gpu()
        self.rows_per_step = self.micro * engines.policy.gradient_accumulation_steps()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, cfg: LearnerConfig, seed: int = 0) -> "PPOLearner":
        """Seeded first: the critic's value head is initialised and every update's
        shuffle is drawn from the process's RNGs, so two runs with one seed train alike."""
        seed_rng(seed)
        return cls(build_ppo_engines(model_dir, cfg, setup_distributed()), cfg)

    @property
    def device(self) -> torch.device:
        return self.engines.policy.device

    def update(self, batch: PPOBatch) -> PPOStats:
        if len(batch) % self.rows_per_step:
            raise ValueError(f"this rank's batch has {len(batch)} sequences; it must be a multiple of "
                             f"{self.rows_per_step} (minibatch_size / world size) so every optimizer step is whole")
        exp, info = self.make_experience(batch.to(self.device))
        totals: dict[str, float] = defaultdict(float)
        n_micro = 0
        for _ in range(self.cfg.ppo_epochs):
            order = torch.randperm(len(exp))  # global torch RNG: checkpoints capture and restore it
            for rows in micro_batches(len(exp), self.micro):
                for key, value in self.train_micro_batch(exp.select(order[rows].to(self.device))).items():
                    totals[key] += value
                n_micro += 1
        beta_used = self.kl_ctl.value
        self.kl_ctl.update(all_reduce_mean(info["kl_ref"]), len(batch) * world_size())
        means = {k: v / n_micro for k, v in totals.items()}
        return PPOStats(**means, **info, kl_beta=beta_used,
                        action_tokens=int(exp.action_mask.sum()), policy_tokens=int(exp.policy_mask.sum()))

    @torch.no_grad()
    def make_experience(self, batch: PPOBatch) -> tuple[Experience, dict[str, float]]:
        cfg, critic = self.cfg, self.engines.critic
        batch = scored(batch, cfg)
        old_logprobs, ref_logprobs, values = self._score_tokens(batch)
        action = batch.action_mask.float()
        kl = compute_kl(old_logprobs, ref_logprobs, cfg.kl_estimator) * action
        beta = self.kl_ctl.value if cfg.kl_mode == "reward" else 0.0
        rewards = token_rewards(batch.scores, kl, action, beta)
        if critic is not None:
            advantages, returns = gae(rewards, values, action, cfg.gamma, cfg.lam)
        else:
            advantages = returns = discounted_returns(rewards, action, cfg.gamma)
        if (cfg.whiten_advantages and critic is not None) or cfg.advantage_estimator == "reinforce_pp":
            advantages = whiten(advantages, action)
        policy_mask = batch.policy_mask.float() if cfg.fgo else action
        exp = Experience(batch.input_ids, batch.attention_mask, action, policy_mask,
                         old_logprobs, ref_logprobs, values, advantages, returns, batch.temperature)
        info = {"kl_ref": float(kl.sum(1).mean()), "reward": float(batch.rewards.float().mean()),
                "score_mean": float(batch.scores.abs().mean()),
                "value_mean": float(masked_mean(values, action)), "return_mean": float(masked_mean(returns, action))}
        return exp, info

    def _score_tokens(self, batch: PPOBatch) -> tuple[Tensor, Tensor, Tensor]:
        """Old and reference log-probs and the critic's values (zeros without one), [B, T],
        0 outside the action tokens."""
        policy, critic, reference = self.engines.policy, self.engines.critic, self.engines.reference
        policy.eval()
        if critic is not None:
            critic.eval()
        old, ref, values = [], [], []
        for rows in micro_batches(len(batch), self.micro):
            ids, attn = batch.input_ids[rows], batch.attention_mask[rows]
            if batch.old_logprobs is None:
                old.append(sequence_logprobs(policy, ids, attn, batch.temperature))
            ref.append(sequence_logprobs(reference, ids, attn, batch.temperature))
            values.append(critic(ids, attn) if critic is not None else torch.zeros(ids.shape, device=ids.device))
        action = batch.action_mask.float()
        old_logprobs = (batch.old_logprobs.float() if batch.old_logprobs is not None else torch.cat(old)) * action
        return old_logprobs, torch.cat(ref) * action, torch.cat(values) * action

    def train_micro_batch(self, mb: Experience) -> dict[str, float]:
        """Forward, backward and (at the accumulation boundary) step, policy then critic."""
        policy, cfg = self.engines.policy, self.cfg
        policy.train()
        logits = policy(input_ids=mb.input_ids, attention_mask=mb.attention_mask, use_cache=False).logits
        logprobs, token_entropy = logprobs_and_entropy(logits, mb.input_ids, entropy_grad=cfg.entropy_coef > 0,
                                                       temperature=mb.temperature)
        pg_loss, pg_stats = policy_loss(logprobs, mb.old_logprobs, mb.advantages, mb.policy_mask, cfg.clip_range,
                                        cfg.loss_aggregation)
        kl_loss = torch.zeros((), device=logprobs.device)
        if cfg.kl_mode == "loss":
            kl = compute_kl(logprobs, mb.ref_logprobs, cfg.kl_estimator)
            kl_loss = self.kl_ctl.value * aggregate(kl, mb.policy_mask, cfg.loss_aggregation)
        entropy = masked_mean(token_entropy, mb.policy_mask)
        policy.backward(pg_loss + kl_loss - cfg.entropy_coef * entropy)
        policy.step()
        stats = {"policy_loss": pg_loss, "kl_loss": kl_loss, "entropy": entropy, **pg_stats, **self._train_critic(mb)}
        return {k: float(v.detach()) for k, v in stats.items()}

    def _train_critic(self, mb: Experience) -> dict[str, Tensor]:
        """The clipped value loss on the critic (zeros when the estimator has none)."""
        critic, cfg = self.engines.critic, self.cfg
        if critic is None:
            zero = torch.zeros(())
            return {"value_loss": zero, "vf_clipfrac": zero}
        critic.train()
        values = critic(mb.input_ids, mb.attention_mask)
        vf_loss, vf_stats = value_loss(values, mb.old_values, mb.returns, mb.action_mask, cfg.value_clip)
        critic.backward(cfg.value_coef * vf_loss)
        critic.step()
        return {"value_loss": vf_loss, **vf_stats}

    def save_checkpoint(self, root: str | Path, step: int, client_state: dict[str, Any] | None = None) -> Path:
        """Policy and critic engines, the KL controller, RNGs and the caller's JSON state.
        The reference is not saved: it is the model directory, rebuilt from there."""
        return save_checkpoint(root, step, self.engines.trained(), client_state, self.state_dict())

    def load_checkpoint(self, root: str | Path, tag: str | None = None) -> Resumed:
        resumed = load_checkpoint(root, self.engines.trained(), tag)
        self.load_state_dict(resumed.learner_state)
        return resumed

    def policy_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The policy's full weights for the rollout actors (None on ranks other than 0)."""
        return full_state_dict(self.engines.policy)

    def publish_policy(self, version: int, max_bytes: int):
        """The policy's weights put into Ray's object store in chunks, as the handle the
        rollout actors load (`actors.weights`); None on ranks other than 0.  A Ray
        learner group calls this on its ranks, so rank 0 publishes straight from its own
        process instead of shipping a full copy through the driver first."""
        from actors.weights import publish

        state = self.policy_state_dict()  # collective under ZeRO-3: every rank calls it
        return None if state is None else publish(state, version, max_bytes)

    def broadcast_policy(self, target):
        """The policy's weights broadcast to the rollout actors of `target`
        (actors.vllm_nccl.BroadcastTarget) by NCCL: every rank calls this, gathering
        module by module under ZeRO-3; rank 0 sends (learner/broadcast.py).  The NCCL
        group is kept on the learner between calls; returns `BroadcastStats`."""
        from learner.broadcast import PolicyBroadcaster
        from learner.dist import rank

        broadcaster = self.__dict__.setdefault("_broadcaster", PolicyBroadcaster())
        return broadcaster.broadcast(self.engines.policy, target, rank())

    def close(self) -> None:
        """Nothing to release in-process (a LearnerGroup stops its actors here)."""

    def state_dict(self) -> dict[str, Any]:
        """The learner's own state beyond the engines (JSON-safe, for checkpoints)."""
        return {"kl_ctl": self.kl_ctl.state_dict(), "lora_scale": module_scale(self.engines.policy.module)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kl_ctl.load_state_dict(state["kl_ctl"])

