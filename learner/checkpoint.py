"""Resumable checkpoints: DeepSpeed engine states plus the caller's JSON state and RNGs.

Layout (one directory per step, `latest` names the newest):

    root/latest                      "step_000010"
    root/step_000010/policy/         DeepSpeed checkpoint (weights, optimizer, scheduler)
    root/step_000010/critic/         ...one per engine passed in
    root/step_000010/client_state.json   step, the caller's dicts, the learner's own state
    root/step_000010/rng_rank0.json  python/numpy/torch RNG states, one file per rank

Why JSON next to DeepSpeed's own `client_state`: DeepSpeed stores client state only in
rank 0's model file, but every rank has its own RNG streams; and JSON keeps curriculum
state and data order readable with `cat`.  Resuming restores all of it, so the next
loss after a resume equals the one an uninterrupted run computes (tested).
"""

from __future__ import annotations

import base64
import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from learner.dist import barrier, rank
from learner.engines import Engine

LATEST = "latest"


@dataclass
class Resumed:
    step: int
    client_state: dict[str, Any]
    learner_state: dict[str, Any]
    path: Path


def capture_rng() -> dict[str, Any]:
    """This process's python, numpy and torch (CPU and CUDA) RNG states, JSON-safe."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {"python": [version, list(state), gauss],
           "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
           "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        out["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return out


def seed_rng(seed: int) -> None:
    """Seed this process's python, numpy and torch RNGs (the streams `capture_rng` saves)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def restore_rng(state: Mapping[str, Any]) -> None:
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_bytes_tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_bytes_tensor(s) for s in state["cuda"]])


def _bytes_tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def save_checkpoint(root: str | Path, step: int, engines: Mapping[str, Engine],
                    client_state: Mapping[str, Any] | None = None,
                    learner_state: Mapping[str, Any] | None = None) -> Path:
    """Save every engine and the states under root/step_{step:06d}; all ranks must call it."""
    root, tag = Path(root), f"step_{step:06d}"
    state = {"step": step, "client_state": dict(client_state or {}), "learner_state": dict(learner_state or {})}
    try:
        text = json.dumps(state, indent=1)
    except TypeError as exc:
        raise ValueError(f"checkpoint client state must be JSON-safe: {exc}") from None
    for name, engine in engines.items():
        engine.save_checkpoint(str(root / tag), tag=name, client_state={"step": step}, save_latest=False)
    (root / tag).mkdir(parents=True, exist_ok=True)
    (root / tag / f"rng_rank{rank()}.json").write_text(json.dumps(capture_rng()))
    if rank() == 0:
        (root / tag / "client_state.json").write_text(text + "\n")
    barrier()
    if rank() == 0:
        (root / LATEST).write_text(tag + "\n")
    barrier()
    return root / tag


def load_checkpoint(root: str | Path, engines: Mapping[str, Engine], tag: str | None = None,
                    load_optimizer: bool = True) -> Resumed:
    """Restore engines (weights, optimizer, scheduler), this rank's RNGs and the states."""
    root = Path(root)
    if tag is None:
        if not (root / LATEST).is_file():
            raise FileNotFoundError(f"no checkpoint in {root} (missing {root / LATEST})")
        tag = (root / LATEST).read_text().strip()
    path = root / tag
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    for name, engine in engines.items():
        loaded, _ = engine.load_checkpoint(str(path), tag=name, load_optimizer_states=load_optimizer,
                                           load_lr_scheduler_states=load_optimizer)
        if loaded is None:
            raise FileNotFoundError(f"checkpoint {path} has no engine {name!r}")
    rng_file = path / f"rng_rank{rank()}.json"
    if rng_file.is_file():
        restore_rng(json.loads(rng_file.read_text()))
    else:
        warnings.warn(f"{rng_file} missing (saved with fewer ranks?): RNG streams not restored", stacklevel=2)
    state = json.loads((path / "client_state.json").read_text())
    return Resumed(state["step"], state["client_state"], state["learner_state"], path)
