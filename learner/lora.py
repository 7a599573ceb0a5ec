"""LoRA on the policy (peft), and the merged weights everything downstream needs.

With `learner.lora_rank` > 0 the policy's base weights are frozen and low-rank adapters
on `lora_target_modules` are trained (the reference is the untouched base model; the
critic, if any, stays a full model).  Adam states then exist for the adapters only,
which is what makes a 6.7B policy fit beside its critic on fewer GPUs.

Rollout actors, `execrl export` and vLLM load plain Hugging Face weights, never an
adapter: `merged_state_dict` folds W + (alpha / r) * B @ A into each adapted weight and
returns the base model's own parameter names.  The same function serves the live
engine (weight sync) and a checkpoint's saved state dict (export), so what the rollout
samples with is what the export writes.  LoRA is refused under ZeRO-3 (its parameters
would have to be gathered adapter by adapter); ZeRO 0-2 cover its use.
"""

from __future__ import annotations

import torch
from torch import nn

from learner.config import LearnerConfig

ADAPTER = "default"  # peft's adapter name
PREFIX = "base_model.model."


def apply_lora(model: nn.Module, cfg: LearnerConfig) -> nn.Module:
    """The model wrapped with trainable LoRA adapters (base weights frozen)."""
    if cfg.zero_stage == 3:
        raise ValueError("learner.lora_rank > 0 needs learner.zero_stage 0, 1 or 2 (LoRA under ZeRO-3 is not supported)")
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def module_scale(module: nn.Module) -> float | None:
    """alpha / r of a peft-wrapped module's adapter (None for a plain model)."""
    config = getattr(module, "peft_config", {}).get(ADAPTER)
    return None if config is None else config.lora_alpha / config.r


def base_model(module: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (the module itself otherwise)."""
    return module.get_base_model() if hasattr(module, "get_base_model") else module


def is_lora_state(state: dict[str, torch.Tensor]) -> bool:
    return any(".lora_A." in name for name in state)


def merged_state_dict(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """A peft model's state dict (adapters and `base_layer` weights) as the base model's:
    every adapted weight becomes W + scale * B @ A, adapter tensors are dropped, and the
    `base_model.model.` / `.base_layer` parts of the names are removed."""
    merged: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if ".lora_" in name:
            continue
        base = name.removeprefix(PREFIX).replace(".base_layer.", ".")
        a_name = name.replace(".base_layer.weight", f".lora_A.{ADAPTER}.weight")
        if name.endswith(".base_layer.weight") and a_name in state:
            a, b = state[a_name].float(), state[name.replace(".base_layer.weight", f".lora_B.{ADAPTER}.weight")].float()
            tensor = (tensor.float() + scale * (b @ a)).to(tensor.dtype)
        merged[base] = tensor.detach().cpu()
    return merged
