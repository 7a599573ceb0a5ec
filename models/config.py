"""Which model to train, and how to make the bundled tiny one when none is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import ConfigSection


@dataclass
class ModelConfig(ConfigSection):
    """`path` is a Hugging Face model directory; when it is None execrl builds a tiny
    random-init model locally (`execrl model init`) and caches it under `cache_dir`, so
    the CPU default needs no download.

    `dtype` is the whole job's: the rollout backend loads the weights in it and the
    learner trains in it (DeepSpeed bf16/fp16, or fp32), so both score the same
    weights.  float32 on CPUs (bf16 matmuls are slow there, and it keeps rollout and
    learner log-probs within ~1e-5); bfloat16 on GPUs."""

    path: str | None = None
    init_size: Literal["tiny", "small"] = "tiny"
    arch: Literal["llama", "qwen2"] = "llama"
    tied_embeddings: bool = False
    chat: bool = False  # the tiny model's tokenizer gets a chat template (instruct-model prompts)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    cache_dir: str = "~/.cache/execrl"
