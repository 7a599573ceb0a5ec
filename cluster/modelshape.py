"""A model's size from its config.json alone: parameter counts without loading weights.

`execrl plan` and the preflight need the policy's, critic's and reference's sizes before
anything is loaded (on a laptop planning a cluster job the weights are not even there),
so the counts are computed from the architecture's shapes.  Supported: the Llama family
of decoders (`llama`, `mistral`, `qwen2`): embedding V x h; per layer q and o h x h,
k and v h x (kv_heads * head_dim), gate/up/down h x i, two RMSNorm weights h; a final
norm h; an output layer V x h unless tied.  Biases: `qwen2` has q, k and v biases;
`llama`'s `attention_bias` adds q, k, v and o biases and `mlp_bias` the MLP's.
tests/test_plan.py checks the counts against transformers' own models built on the
meta device.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import ConfigError
from models.config import ModelConfig
from models.sizes import SIZES

FAMILIES = ("llama", "mistral", "qwen2")
# Shapes of public models that can be planned without their files, by hub id.  Each is
# a config.json-shaped description under configs/models/ holding only published facts.
KNOWN_DIR = Path(__file__).resolve().parent.parent / "configs" / "models"


@dataclass(frozen=True)
class ModelShape:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied: bool
    max_positions: int
    attention_bias: bool = False  # llama: q, k, v and o
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, data: dict, where: str) -> "ModelShape":
        """From a config.json mapping; `where` names it in errors."""
        kind = data.get("model_type")
        if kind not in FAMILIES:
            raise ConfigError(f"{where}: model_type {kind!r} cannot be planned; supported: {', '.join(FAMILIES)}")
        try:
            h, heads = int(data["hidden_size"]), int(data["num_attention_heads"])
            return cls(kind, int(data["vocab_size"]), h, int(data["intermediate_size"]),
                       int(data["num_hidden_layers"]), heads, int(data.get("num_key_value_heads") or heads),
                       int(data.get("head_dim") or h // heads), bool(data.get("tie_word_embeddings", False)),
                       int(data.get("max_position_embeddings", 4096)),
                       bool(data.get("attention_bias", False)), bool(data.get("mlp_bias", False)))
        except KeyError as exc:
            raise ConfigError(f"{where}: missing {exc.args[0]!r}, needed to count parameters") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    def layer_params(self) -> int:
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        attention = h * q + 2 * h * kv + q * h
        if self.model_type == "qwen2":
            attention += q + 2 * kv
        elif self.attention_bias:
            attention += q + 2 * kv + h
        mlp = 3 * h * i + (2 * i + h if self.mlp_bias else 0)
        return attention + mlp + 2 * h

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def params(self) -> int:
        """The causal LM's parameters (tied embeddings counted once)."""
        head = 0 if self.tied else self.embedding_params()
        return self.embedding_params() + self.num_layers * self.layer_params() + self.hidden_size + head

    def critic_params(self) -> int:
        """learner/critic.py's ValueModel: the decoder without the output layer, plus a
        linear value head (h weights + 1 bias)."""
        head = 0 if self.tied else self.embedding_params()
        return self.params() - head + self.hidden_size + 1

    def largest_layer_params(self) -> int:
        """The largest single module's own parameters (DeepSpeed's `largest_layer_params`:
        ZeRO-3 gathers one module at a time)."""
        h, i = self.hidden_size, self.intermediate_size
        return max(self.embedding_params(), h * i + (i if self.mlp_bias else 0), h * self.q_dim + self.q_dim)


def load_shape(model: ModelConfig, model_config: str | None = None) -> tuple[ModelShape, str]:
    """The policy's shape and where it came from: `model_config` (a config.json path)
    when given; else model.path's config.json (a local directory or the Hugging Face
    cache, never a download); else configs/models/ by hub id; for model.path None the
    bundled tiny model's size (its config.json when it is already in the cache)."""
    if model_config:
        return _read(Path(model_config), "--model-config")
    if model.path is None:
        return _bundled_shape(model)
    local = Path(os.path.expanduser(model.path))
    if local.is_dir():
        return _read(local / "config.json", "model.path")
    cached = _hub_cache_config(model.path)
    if cached is not None:
        return _read(cached, f"model.path {model.path!r} (Hugging Face cache)")
    known = KNOWN_DIR / (model.path.replace("/", "--") + ".json")
    if known.is_file():
        return _read(known, f"model.path {model.path!r} (shipped description)")
    raise ConfigError(f"model.path {model.path!r}: no config.json on this machine (not a directory, not in the "
                      f"Hugging Face cache, not in {KNOWN_DIR}); pass --model-config FILE.json")


def _read(path: Path, what: str) -> tuple[ModelShape, str]:
    if not path.is_file():
        raise ConfigError(f"{what}: {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {str(path)!r} must hold a JSON object")
    return ModelShape.from_config(data, str(path)), str(path)


def _hub_cache_config(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def _bundled_shape(model: ModelConfig) -> tuple[ModelShape, str]:
    cache = Path(os.path.expanduser(model.cache_dir)) / "models"  # models.resolve.model_cache (which imports torch)
    for made in sorted(cache.glob(f"{model.init_size}-{model.arch}-*/config.json")):
        shape, where = _read(made, "bundled model")
        if shape.tied == model.tied_embeddings:
            return shape, where
    s = SIZES[model.init_size]
    shape = ModelShape(model.arch, s.vocab_size, s.hidden_size, s.intermediate_size, s.num_layers, s.num_heads,
                       s.num_kv_heads, s.hidden_size // s.num_heads, model.tied_embeddings, s.max_positions)
    return shape, f"bundled {model.init_size} {model.arch} (models/sizes.py)"
