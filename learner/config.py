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

    `advantage_estimator` picks how a sample's reward becomes per-token advantages
    (equations in learner/ppo_math.py): `gae` is PPO with a critic (GAE over the token
    rewards, whitened if `whiten_advantages`); the critic-free ones build no critic and
    no value loss, and score a sample against the other samples of its group (the
    samples of one prompt: one problem at one start point): `grpo` (group-normalised,
    `grpo_std_normalize` false for Dr. GRPO's mean-only baseline), `rloo`
    (leave-one-out mean), `reinforce_pp` (REINFORCE++: the raw reward, returns whitened
    over the batch).  grpo and rloo are normalised by their group, so
    `whiten_advantages` applies to gae only.

    DAPO's options: `clip_ratio_low`/`clip_ratio_high` (None: `clip_ratio`) clip the
    ratio asymmetrically; `loss_aggregation` averages the token losses per micro-batch
    (`token_mean`), per sequence then over sequences (`seq_mean_token_mean`), or sums
    per sequence then averages (`seq_mean_token_sum`); `kl_mode` puts beta * KL into
    the token rewards (`reward`, PPO's way), into the policy loss (`loss`, GRPO's way,
    `kl_estimator` k3 recommended) or nowhere (`none`, still logged; not `off`, which YAML reads as false);
    `dynamic_sampling` drops groups whose rewards are all equal (no signal under a group
    baseline) and draws replacement problems until the batch has
    problems_per_iteration informative groups, at most `dynamic_sampling_max_rounds`
    extra generation rounds; `overlong_penalty` is subtracted from the reward of a
    completion cut by rollout.max_new_tokens, ramping in linearly over the last
    `overlong_buffer` tokens (0: only a cut completion is penalised, in full).

    Memory, for large models (what `execrl plan` counts): `gradient_checkpointing`
    recomputes activations in the backward pass (policy and critic); `offload_optimizer`
    keeps Adam's states and the fp32 master weights on the CPU (ZeRO >= 1);
    `offload_params` keeps ZeRO-3's parameter shards on the CPU between uses;
    `offload_reference` does that for the frozen reference alone (ZeRO-3); `zero_init`
    loads models under ZeRO-3 already partitioned (transformers' HfDeepSpeedConfig +
    deepspeed.zero.Init), so no rank holds a full fp32 copy on the host; `lora_rank` > 0
    trains LoRA adapters (peft) on `lora_target_modules` instead of the full policy
    (learner/lora.py; rollouts and exports get merged weights).  `critic_path` starts
    the critic from another (e.g. smaller) model directory with the same tokenizer.
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
    advantage_estimator: Literal["gae", "grpo", "rloo", "reinforce_pp"] = "gae"
    grpo_std_normalize: bool = True
    clip_ratio_low: float | None = field(default=None, metadata=rng(0, exclusive_min=True))
    clip_ratio_high: float | None = field(default=None, metadata=rng(0, exclusive_min=True))
    loss_aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"] = "token_mean"
    kl_mode: Literal["reward", "loss", "none"] = "reward"
    dynamic_sampling: bool = False
    dynamic_sampling_max_rounds: int = field(default=2, metadata=rng(0))
    overlong_penalty: float = field(default=0.0, metadata=rng(0))
    overlong_buffer: int = field(default=0, metadata=rng(0))
    gradient_checkpointing: bool = False
    offload_optimizer: bool = False
    offload_params: bool = False
    offload_reference: bool = False
    zero_init: bool = True
    lora_rank: int = field(default=0, metadata=rng(0))
    lora_alpha: float = field(default=16.0, metadata=rng(0, exclusive_min=True))
    lora_dropout: float = field(default=0.0, metadata=rng(0, 1))
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    sft: SFTConfig = field(default_factory=SFTConfig)

    @property
    def uses_critic(self) -> bool:
        """Only GAE needs a value model; the critic-free estimators build none."""
        return self.advantage_estimator == "gae"

    @property
    def clip_range(self) -> tuple[float, float]:
        """(low, high): the ratio is clipped to [1 - low, 1 + high]."""
        low = self.clip_ratio if self.clip_ratio_low is None else self.clip_ratio_low
        high = self.clip_ratio if self.clip_ratio_high is None else self.clip_ratio_high
        return low, high
