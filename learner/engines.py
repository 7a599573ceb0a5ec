"""DeepSpeed engines for the policy, the critic and the frozen reference model.

The trainers (ppo.py, sft.py, dpo.py) only use the `Engine` protocol below: call the
engine, `backward(loss)`, `step()`.  DeepSpeed's engine scales the loss by the gradient
accumulation steps, all-reduces gradients across ranks, clips and steps the optimizer at
the accumulation boundary; learner/bench.py supplies a plain-torch engine with the same
protocol to measure what DeepSpeed costs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from learner.dist import DistInfo, setup_distributed  # first: sets DS_ACCELERATOR before deepspeed loads

import deepspeed
import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from learner.config import LearnerConfig
from learner.critic import ValueModel
from learner.ds_config import deepspeed_config


class Engine(Protocol):
    module: nn.Module
    device: torch.device

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def backward(self, loss: torch.Tensor) -> Any: ...
    def step(self) -> None: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...
    def train_micro_batch_size_per_gpu(self) -> int: ...
    def gradient_accumulation_steps(self) -> int: ...


@dataclass
class PPOEngines:
    policy: Engine
    critic: Engine | None  # None for the critic-free estimators (learner.advantage_estimator)
    reference: Engine

    def trained(self) -> dict[str, Engine]:
        """The engines a checkpoint saves (the reference is the model directory)."""
        return {name: e for name, e in (("policy", self.policy), ("critic", self.critic)) if e is not None}


def load_policy(path: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The causal LM at `path`, loaded in fp32 (DeepSpeed casts for bf16/fp16 and keeps
    fp32 master weights itself), or in the training dtype when loaded partitioned."""
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@contextmanager
def partitioned_loading(cfg: LearnerConfig, dist: DistInfo, train: bool = True) -> Iterator[torch.dtype]:
    """Under ZeRO-3 with `zero_init`, models loaded inside come out already partitioned
    (transformers reads the live HfDeepSpeedConfig and loads under deepspeed.zero.Init):
    no rank ever holds a full fp32 copy on the host.  Yields the dtype to load in: the
    training precision's when active (zero.Init partitions in that dtype, and a model
    loaded in another would mix both in its flat buffers), fp32 otherwise."""
    active = cfg.zero_init and cfg.zero_stage == 3
    if not active:
        yield torch.float32
        return
    from transformers.integrations import HfDeepSpeedConfig

    keep = HfDeepSpeedConfig(deepspeed_config(cfg, dist.world_size, cfg.minibatch_size, train=train))
    try:
        yield PRECISION_DTYPES[cfg.precision]
    finally:
        del keep  # transformers holds a weak reference: loading outside sees plain models again


def prepared(module: nn.Module, cfg: LearnerConfig, policy: bool = False) -> nn.Module:
    """Gradient checkpointing (learner.gradient_checkpointing) and, on the policy, LoRA."""
    if cfg.gradient_checkpointing:
        target = module.backbone if isinstance(module, ValueModel) else module
        target.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        target.config.use_cache = False
    if policy and cfg.lora_rank > 0:
        from learner.lora import apply_lora

        module = apply_lora(module, cfg)
    return module


def train_engine(module: nn.Module, cfg: LearnerConfig, dist: DistInfo, *, lr: float, batch_size: int,
                 warmup_steps: int = 0) -> deepspeed.DeepSpeedEngine:
    """A trainable engine with a torch AdamW client optimizer, stepping every `batch_size`
    sequences (counted across ranks), with an optional linear warmup of the learning rate.

    The warmup is a torch LambdaLR rather than DeepSpeed's WarmupLR, whose first steps
    run at warmup_min_lr (0): here step k uses lr * (k + 1) / warmup_steps.  DeepSpeed
    steps it and checkpoints its state like any scheduler."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    scheduler = None
    if warmup_steps > 0:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    config = deepspeed_config(cfg, dist.world_size, batch_size)
    engine, *_ = deepspeed.initialize(model=module, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    return engine


def frozen_engine(module: nn.Module, cfg: LearnerConfig, dist: DistInfo) -> deepspeed.DeepSpeedEngine:
    """An inference-only engine (the reference model): no optimizer, no gradients."""
    module.requires_grad_(False)
    engine, *_ = deepspeed.initialize(model=module, config=deepspeed_config(cfg, dist.world_size, 1, train=False))
    engine.eval()
    return engine


def build_ppo_engines(model_dir: str | Path, cfg: LearnerConfig, dist: DistInfo | None = None) -> PPOEngines:
    """Policy and reference from `model_dir`; critic from `cfg.critic_path` or `model_dir`,
    only when the estimator uses one (a critic-free step holds two models, not three)."""
    dist = dist or setup_distributed()
    with partitioned_loading(cfg, dist) as dtype:
        policy_module = prepared(load_policy(model_dir, dtype), cfg, policy=True)
    policy = train_engine(policy_module, cfg, dist, lr=cfg.lr, batch_size=cfg.minibatch_size)
    critic = None
    if cfg.uses_critic:
        with partitioned_loading(cfg, dist) as dtype:
            critic_module = prepared(ValueModel.from_pretrained(cfg.critic_path or model_dir, dtype), cfg)
        critic = train_engine(critic_module, cfg, dist, lr=cfg.critic_lr, batch_size=cfg.minibatch_size)
    with partitioned_loading(cfg, dist, train=False) as dtype:
        reference_module = load_policy(model_dir, dtype)
    reference = frozen_engine(reference_module, cfg, dist)
    return PPOEngines(policy, critic, reference)


def micro_batches(n_rows: int, micro_batch_size: int) -> list[slice]:
    """Consecutive row slices of at most `micro_batch_size` rows."""
    return [slice(i, min(i + micro_batch_size, n_rows)) for i in range(0, n_rows, micro_batch_size)]
