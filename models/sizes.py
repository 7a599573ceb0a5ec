"""The tiny models' shapes and file names, without torch or transformers.

Kept apart from models/tiny.py so that the command line can list sizes and
architectures (`execrl model init --help`) without importing the model libraries,
which take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSize:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_positions: int


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(2048, 128, 384, 2, 4, 4, 1024),
    "small": ModelSize(4096, 256, 768, 6, 8, 4, 2048),
}
ARCHS = ("llama", "qwen2")
MANIFEST = "execrl_model.json"
