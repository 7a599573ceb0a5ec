"""Knobs of the DeepSpeed learner: PPO (paper settings on clusters) and the SFT warm start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.settings import ConfigSection, follows, rng


@dataclass
class SFTConfig(ConfigSection):
    """Supervised warm start on canonical solutions (the paper's SFT stage)."""

    steps: int = field(default=450, metadata=rng(0))
    lr: float = field(default=3e-3, metadata=rng(0, exclusive_min=True))
    batch_size: int = field(default=32, metadata=rng(1))
    warmup_steps: int = field(default=20, metadata=rng(0))


@dataclass
class LearnerConfig(ConfigSection):
    """PPO's knobs; `fgo` masks code the tests never executed out of the policy loss.

    Batch sizes count sequences across all ranks: an optimizer step sees `minibatch_size`
    sequences, fed as micro-batches of `micro_batch_size` per rank, so gradient
    accumulation is minibatch_size / (micro_batch_size * world size).  `critic_path`
    None starts the critic from the policy's model directory.  `num_workers` 0 keeps the
    learner in the driver process (the laptop default); N >= 1 runs N DeepSpeed ranks as
    Ray actors reserved together on one node by a placement group (learner/group.py),
    each with `cpus_per_worker` CPUs and `gpus_per_worker` GPUs.

    `old_logprobs` says where PPO's "old" log-probabilities come from: `recompute` (the
    learner's own forward pass before the update, at the sampling temperature: exact on
    policy, and immune to rollout numerics) or `rollout` (what the sampler returned: the
    behaviour policy itself, so one step off policy the ratio corrects the staleness;
    needs rollout.top_p 1, since a nucleus-renormalised log-prob is not comparable with
    the learner's full-softmax one).
    """

    zero_stage: int = field(default=0, metadata=rng(0, 3))
    precision: Literal["fp32", "bf16", "fp16"] = field(default="fp32", metadata=follows("model.dtype"))
    num_workers: int = field(default=0, metadata=rng(0))  # 0: in the driver; N: N ranks as Ray actors
    cpus_per_worker: float = field(default=1.0, metadata=rng(0))
    gpus_per_worker: float = field(default=0.0, metadata=rng(0))
    lr: float = field(default=5e-5, metadata=rng(0, exclusive_min=True))
    critic_lr: float = field(default=1e-3, metadata=rng(0, exclusive_min=True))
    kl_beta: float = field(default=0.1, metadata=rng(0))
    adaptive_kl: bool = False
    kl_target: float = field(default=0.02, metadata=rng(0, exclusive_min=True))
    kl_horizon: int = field(default=10_000, metadata=rng(1))
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    gamma: float = field(default=1.0, metadata=rng(0, 1))
    lam: float = field(default=0.95, metadata=rng(0, 1))
    clip_ratio: float = field(default=0.2, metadata=rng(0, exclusive_min=True))
    value_clip: float = field(default=0.2, metadata=rng(0, exclusive_min=True))
    value_coef: float = field(default=0.5, metadata=rng(0))
    entropy_coef: float = field(default=0.0, metadata=rng(0))
    whiten_advantages: bool = True
    ppo_epochs: int = field(default=1, metadata=rng(1))
    minibatch_size: int = field(default=64, metadata=rng(1))
    micro_batch_size: int = field(default=16, metadata=rng(1))
    grad_clip: float = field(default=1.0, metadata=rng(0))  # 0 turns clipping off
    weight_decay: float = field(default=0.0, metadata=rng(0))
    critic_path: str | None = None
    fgo: bool = True
    old_logprobs: Literal["recompute", "rollout"] = "recompute"
    sft: SFTConfig = field(default_factory=SFTConfig)
