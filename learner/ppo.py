"""PPO on DeepSpeed engines: make experience once, then clipped updates for a few epochs.

Reads top to bottom like CleanRL's ppo.py; the equations are in learner/ppo_math.py,
which also tabulates which mask each loss and statistic uses.  One `update(batch)` is
one PPO iteration over one rollout batch (this rank's share of it):

1. experience (no gradients): old log-probs (the rollout's, or recomputed), reference
   log-probs, values (every log-prob at the batch's sampling temperature); per-token KL penalty + the program's reward on the last action
   token; GAE over action tokens; advantages whitened over this rank's action tokens.
2. `ppo_epochs` passes over the batch in a fresh random order, in micro-batches; the
   engines accumulate gradients and step every `minibatch_size` sequences (all ranks).
3. the adaptive KL controller (if on) sees the batch's KL, averaged over ranks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from learner.batches import PPOBatch, _Rows
from learner.checkpoint import Resumed, load_checkpoint, save_checkpoint, seed_rng
from learner.config import LearnerConfig
from learner.dist import all_reduce_mean, setup_distributed, world_size
from learner.engines import Engine, PPOEngines, build_ppo_engines, micro_batches
from learner.export import full_state_dict
from learner.ppo_math import (KLController, compute_kl, gae, logprobs_and_entropy, logprobs_from_logits,
                              masked_mean, policy_loss, token_rewards, value_loss, whiten)

Tensor = torch.Tensor


@dataclass
class Experience(_Rows):
    """A rollout batch with everything the updates need, all [B, T] and token-aligned."""

    input_ids: Tensor
    attention_mask: Tensor
    action_mask: Tensor  # value loss
    policy_mask: Tensor  # policy loss and entropy: action_mask AND executed (FGO), or action_mask
    old_logprobs: Tensor
    old_values: Tensor
    advantages: Tensor
    returns: Tensor
    temperature: float  # the sampling temperature every log-prob is scored under


@dataclass
class PPOStats:
    """Means over this rank's micro-batches (losses) or its batch (experience)."""

    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clipfrac: float
    vf_clipfrac: float
    kl_ref: float  # per-sequence KL(pi_old || pi_ref), summed over action tokens
    kl_beta: float  # the coefficient used for this batch's rewards
    reward: float
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
        policy, critic, reference = self.engines.policy, self.engines.critic, self.engines.reference
        policy.eval()
        critic.eval()
        old, ref, values = [], [], []
        for rows in micro_batches(len(batch), self.micro):
            ids, attn = batch.input_ids[rows], batch.attention_mask[rows]
            if batch.old_logprobs is None:
                old.append(sequence_logprobs(policy, ids, attn, batch.temperature))
            ref.append(sequence_logprobs(reference, ids, attn, batch.temperature))
            values.append(critic(ids, attn))
        action = batch.action_mask.float()
        old_logprobs = (batch.old_logprobs.float() if batch.old_logprobs is not None else torch.cat(old)) * action
        ref_logprobs, values = torch.cat(ref) * action, torch.cat(values) * action

        kl = compute_kl(old_logprobs, ref_logprobs, self.cfg.kl_estimator) * action
        rewards = token_rewards(batch.rewards, kl, action, self.kl_ctl.value)
        advantages, returns = gae(rewards, values, action, self.cfg.gamma, self.cfg.lam)
        if self.cfg.whiten_advantages:
            advantages = whiten(advantages, action)
        policy_mask = batch.policy_mask.float() if self.cfg.fgo else action
        exp = Experience(batch.input_ids, batch.attention_mask, action, policy_mask,
                         old_logprobs, values, advantages, returns, batch.temperature)
        info = {"kl_ref": float(kl.sum(1).mean()), "reward": float(batch.rewards.float().mean()),
                "value_mean": float(masked_mean(values, action)), "return_mean": float(masked_mean(returns, action))}
        return exp, info

    def train_micro_batch(self, mb: Experience) -> dict[str, float]:
        """Forward, backward and (at the accumulation boundary) step, policy then critic."""
        policy, critic, cfg = self.engines.policy, self.engines.critic, self.cfg
        policy.train()
        critic.train()

        logits = policy(input_ids=mb.input_ids, attention_mask=mb.attention_mask, use_cache=False).logits
        logprobs, token_entropy = logprobs_and_entropy(logits, mb.input_ids, entropy_grad=cfg.entropy_coef > 0,
                                                       temperature=mb.temperature)
        pg_loss, pg_stats = policy_loss(logprobs, mb.old_logprobs, mb.advantages, mb.policy_mask, cfg.clip_ratio)
        entropy = masked_mean(token_entropy, mb.policy_mask)
        policy.backward(pg_loss - cfg.entropy_coef * entropy)
        policy.step()

        values = critic(mb.input_ids, mb.attention_mask)
        vf_loss, vf_stats = value_loss(values, mb.old_values, mb.returns, mb.action_mask, cfg.value_clip)
        critic.backward(cfg.value_coef * vf_loss)
        critic.step()
        stats = {"policy_loss": pg_loss, "value_loss": vf_loss, "entropy": entropy, **pg_stats, **vf_stats}
        return {k: float(v.detach()) for k, v in stats.items()}

    def save_checkpoint(self, root: str | Path, step: int, client_state: dict[str, Any] | None = None) -> Path:
        """Policy and critic engines, the KL controller, RNGs and the caller's JSON state.
        The reference is not saved: it is the model directory, rebuilt from there."""
        engines = {"policy": self.engines.policy, "critic": self.engines.critic}
        return save_checkpoint(root, step, engines, client_state, self.state_dict())

    def load_checkpoint(self, root: str | Path, tag: str | None = None) -> Resumed:
        resumed = load_checkpoint(root, {"policy": self.engines.policy, "critic": self.engines.critic}, tag)
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

    def close(self) -> None:
        """Nothing to release in-process (a LearnerGroup stops its actors here)."""

    def state_dict(self) -> dict[str, Any]:
        """The learner's own state beyond the engines (JSON-safe, for checkpoints)."""
        return {"kl_ctl": self.kl_ctl.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kl_ctl.load_state_dict(state["kl_ctl"])

