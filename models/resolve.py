"""Turn a ModelConfig into a directory that `from_pretrained` can load.

With `path` unset the bundled tiny model is made on first use and cached, keyed by
everything that determines it, so a second `execrl train` starts at once and two runs
with different settings never share a model by accident.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from models.config import ModelConfig
from models.tiny import MANIFEST, init_model


class ModelPathError(FileNotFoundError):
    """A model path that does not hold a loadable model."""


def model_cache(cfg: ModelConfig) -> Path:
    """Where made models live (tiny initialisations, SFT warm starts)."""
    return Path(os.path.expanduser(cfg.cache_dir)) / "models"


def resolve_model(cfg: ModelConfig, seed: int = 0) -> str:
    """A local directory or hub id to pass to `from_pretrained`."""
    if cfg.path is not None:
        return check_model_path(cfg.path)
    cache = model_cache(cfg)
    name = f"{cfg.init_size}-{cfg.arch}-{'tied' if cfg.tied_embeddings else 'untied'}{'-chat' if cfg.chat else ''}-seed{seed}"
    target = cache / name
    if (target / MANIFEST).is_file():
        return str(target)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        init_model(staging, cfg.init_size, cfg.arch, cfg.tied_embeddings, seed, chat=cfg.chat)
        try:
            staging.rename(target)  # atomic: concurrent makers never see half a model
        except OSError:
            if not (target / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def check_model_path(path: str) -> str:
    """A local path must hold config.json; `org/name` with no such local dir is a hub id."""
    p = Path(os.path.expanduser(path))
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelPathError(f"model.path {path!r} exists but has no config.json (not a Hugging Face model directory)")
        return str(p)
    looks_like_hub_id = path.count("/") == 1 and not path.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ModelPathError(f"model.path {path!r} does not exist")
    return path
