"""Export a policy engine to Hugging Face format (what vLLM, transformers and the rollout
actors load), from any ZeRO stage.

Under ZeRO-3 each rank holds a shard of every parameter and the module's own tensors are
empty placeholders: a plain `save_pretrained` writes empty tensors.  The engine's
consolidated 16-bit state dict gathers one layer at a time onto rank 0 (keeping tied
weights tied); it needs `stage3_gather_16bit_weights_on_model_save`, which
learner/ds_config.py turns on for stage 3.  (Its name is historical: it returns the
parameters in their training dtype, fp32 when precision is fp32.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from learner.dist import barrier, rank
from learner.engines import Engine
from learner.lora import base_model, merged_state_dict, module_scale


def full_state_dict(engine: Engine) -> dict[str, torch.Tensor] | None:
    """The unsharded state dict on rank 0 (None on other ranks); all ranks must call it.
    A LoRA policy's comes merged, under the base model's names (learner/lora.py)."""
    if engine.zero_optimization_partition_weights():
        return engine._zero3_consolidated_16bit_state_dict()
    if rank() != 0:
        return None
    state = {k: v.detach().cpu() for k, v in engine.module.state_dict().items()}
    scale = module_scale(engine.module)
    return state if scale is None else merged_state_dict(state, scale)


def export_hf(engine: Engine, out_dir: str | Path, tokenizer_dir: str | Path | None = None) -> Path:
    """`save_pretrained` of the policy (and a copy of the tokenizer) into `out_dir`."""
    out = Path(out_dir)
    state = full_state_dict(engine)
    if state is not None:
        out.mkdir(parents=True, exist_ok=True)
        base_model(engine.module).save_pretrained(out, state_dict=state)
        if tokenizer_dir is not None:
            AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    barrier()
    return out
