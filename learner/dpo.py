"""DPO on preference pairs (CodeDPO's self-verified chosen/rejected code).

loss = -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])

where log pi(y|x) is the sum of the response tokens' log-probabilities (Rafailov et al.
2023, eq. 7); the prompt's tokens are in neither sum.  The reference is the frozen model
DPO starts from, run as its own DeepSpeed engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from learner.batches import DPOBatch
from learner.config import LearnerConfig
from learner.dist import setup_distributed
from learner.engines import Engine, frozen_engine, load_policy, micro_batches, train_engine
from learner.ppo_math import logprobs_from_logits

Tensor = torch.Tensor


def response_logprob_sums(logits: Tensor, input_ids: Tensor, loss_mask: Tensor) -> Tensor:
    """[B]: sum of log pi(token) over each row's response tokens."""
    return (logprobs_from_logits(logits, input_ids) * loss_mask).sum(-1)


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean DPO loss over pairs, plus the implicit rewards beta * (log pi - log ref)."""
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    with torch.no_grad():
        stats = {"reward_chosen": chosen_reward.mean(), "reward_rejected": rejected_reward.mean(),
                 "accuracy": (chosen_reward > rejected_reward).float().mean()}
    return loss, stats


@dataclass
class DPOStats:
    loss: float
    reward_chosen: float
    reward_rejected: float
    accuracy: float


class DPOTrainer:
    def __init__(self, policy: Engine, reference: Engine, beta: float):
        self.policy, self.reference, self.beta = policy, reference, beta
        self.micro = policy.train_micro_batch_size_per_gpu()
        self.rows_per_step = self.micro * policy.gradient_accumulation_steps()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, cfg: LearnerConfig, beta: float = 0.1, lr: float = 1e-4,
                        batch_size: int = 16) -> "DPOTrainer":
        """`cfg` gives the engines' shape (ZeRO, precision, micro-batch); beta, lr and
        batch_size (preference pairs per optimizer step) are DPO's own: arguments, set by
        the pipeline that trains DPO (CodeDPO's configuration, methods/codedpo/)."""
        if beta <= 0 or lr <= 0 or batch_size < 1:
            raise ValueError(f"DPO needs beta > 0, lr > 0 and batch_size >= 1 (got {beta}, {lr}, {batch_size})")
        dist = setup_distributed()
        policy = train_engine(load_policy(model_dir), cfg, dist, lr=lr, batch_size=batch_size)
        return cls(policy, frozen_engine(load_policy(model_dir), cfg, dist), beta)

    def _logps(self, engine: Engine, batch: DPOBatch) -> tuple[Tensor, Tensor]:
        """Chosen and rejected halves in one forward pass (2B rows)."""
        ids = torch.cat([batch.chosen.input_ids, batch.rejected.input_ids])
        attn = torch.cat([batch.chosen.attention_mask, batch.rejected.attention_mask])
        mask = torch.cat([batch.chosen.loss_mask, batch.rejected.loss_mask]).float()
        logits = engine(input_ids=ids, attention_mask=attn, use_cache=False).logits
        return response_logprob_sums(logits, ids, mask).chunk(2)

    def step(self, batch: DPOBatch) -> DPOStats:
        """Optimizer step(s) over this rank's pairs: a multiple of dpo.batch_size / world size."""
        if len(batch) % self.rows_per_step:
            raise ValueError(f"this rank's DPO batch has {len(batch)} pairs; it must be a multiple of {self.rows_per_step}")
        batch = batch.to(self.policy.device)
        self.policy.train()
        totals = {"loss": 0.0, "reward_chosen": 0.0, "reward_rejected": 0.0, "accuracy": 0.0}
        slices = micro_batches(len(batch), self.micro)
        for rows in slices:
            mb = batch.select(rows)
            with torch.no_grad():
                ref_chosen, ref_rejected = self._logps(self.reference, mb)
            policy_chosen, policy_rejected = self._logps(self.policy, mb)
            loss, stats = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta)
            self.policy.backward(loss)
            self.policy.step()
            for key, value in {"loss": loss, **stats}.items():
                totals[key] += float(value.detach()) / len(slices)
        return DPOStats(**totals)
