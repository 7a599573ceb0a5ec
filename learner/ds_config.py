"""The one place a DeepSpeed config dict is built from LearnerConfig.

Every engine (policy, critic, reference; PPO, SFT, DPO) gets its config from here, so
ZeRO stage, precision, micro-batch, gradient accumulation and clipping can only differ
between CPU and GPU runs through LearnerConfig.
"""

from __future__ import annotations

from typing import Any

from learner.config import LearnerConfig


def grad_accum_steps(batch_size: int, micro_batch_size: int, world_size: int) -> int:
    """Micro-batches per optimizer step on each rank; refuses sizes that do not divide."""
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise ValueError(f"batch size {batch_size} must be a multiple of micro_batch_size ({micro_batch_size}) "
                         f"x world size ({world_size}) = {per_step}")
    return batch_size // per_step


def deepspeed_config(cfg: LearnerConfig, world_size: int, batch_size: int, *, train: bool = True) -> dict[str, Any]:
    """DeepSpeed config for an engine that steps every `batch_size` sequences (all ranks).

    A frozen engine (`train=False`, the reference model) has no optimizer state, so only
    ZeRO-3's parameter partitioning can help it: it keeps stage 3 and uses 0 otherwise.
    """
    micro = max(1, min(cfg.micro_batch_size, batch_size // world_size)) if train else cfg.micro_batch_size
    accum = grad_accum_steps(batch_size, micro, world_size) if train else 1
    stage = cfg.zero_stage if train or cfg.zero_stage == 3 else 0
    check_offload(cfg)
    offload_optimizer = train and cfg.offload_optimizer
    offload_params = stage == 3 and (cfg.offload_params if train else cfg.offload_params or cfg.offload_reference)
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "train_batch_size": micro * accum * world_size,
        "gradient_clipping": cfg.grad_clip if train else 0.0,
        "zero_optimization": {
            "stage": stage,
            # ZeRO-3 export: lets the engine consolidate full weights on rank 0.
            "stage3_gather_16bit_weights_on_model_save": stage == 3,
            "offload_optimizer": {"device": "cpu" if offload_optimizer else "none"},
            "offload_param": {"device": "cpu" if offload_params else "none"},
        },
        # offloaded or not, the optimizer is our torch AdamW (see below), not DeepSpeed's CPU Adam
        "zero_force_ds_cpu_optimizer": False,
        "bf16": {"enabled": cfg.precision == "bf16"},
        "fp16": {"enabled": cfg.precision == "fp16", "initial_scale_power": 16},
        # We pass a torch AdamW: DeepSpeed's fused/CPU Adam JIT-compile for minutes on CPU.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    return config


def check_offload(cfg: LearnerConfig) -> None:
    """Offload needs the ZeRO stage that has something to offload."""
    if cfg.offload_optimizer and cfg.zero_stage == 0:
        raise ValueError("learner.offload_optimizer needs learner.zero_stage >= 1 (stage 0 keeps no ZeRO optimizer)")
    for key in ("offload_params", "offload_reference"):
        if getattr(cfg, key) and cfg.zero_stage != 3:
            raise ValueError(f"learner.{key} needs learner.zero_stage 3 (only ZeRO-3 partitions parameters)")
