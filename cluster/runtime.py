"""Starting or joining Ray, after everything cheap has been checked.

A job that dies after the model is loaded because a data path was misspelt wastes
minutes on a laptop and GPU-hours on a cluster: `preflight` checks config, data and
model paths first, then `connect` joins the cluster (or starts a local one).
"""

from __future__ import annotations

import os

import ray

from cluster.config import TrainConfig
from core.settings import ConfigError
from models.resolve import check_model_path
from problems.load import load_problems


def preflight(cfg: TrainConfig) -> dict:
    """Load every problem set named in the config; bad paths fail here, named."""
    data = cfg.data
    sets = {}
    for name in ("sft", "rl", "heldout"):
        spec = getattr(data, name)
        if name == "sft" and cfg.learner.sft.steps == 0:
            continue
        try:
            sets[name] = load_problems(_seeded(spec, data.seed), fmt=data.format).problems
        except FileNotFoundError as exc:
            raise ConfigError(f"data.{name}: {exc}") from None
    if cfg.model.path is not None:
        check_model_path(cfg.model.path)
    return sets


def _seeded(spec: str, seed: int) -> str:
    """`bundled:<split>` follows data.seed unless the spec names its own seed."""
    if spec.startswith("bundled:") and spec.count(":") == 1:
        return f"{spec}:{seed}"
    return spec


def connect(cfg: TrainConfig) -> str:
    """Join `cluster.address` / RAY_ADDRESS, or start a local Ray sized for this job, and
    say which (printed, and returned).

    The local start passes address="local": without it Ray joins whatever cluster its
    address file (/tmp/ray/ray_current_cluster) names, which outlives a `ray start
    --head` whose processes died, and then refuses our num_cpus with its own message."""
    if ray.is_initialized():
        return "ray: already connected in this process"
    address = cfg.cluster.address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
        said = f"ray: joined the cluster at {address}"
    else:
        cpus = max(2, os.cpu_count() or 2)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 resources={cfg.executor.resource: cfg.executor.num_actors})
        said = (f"ray: started a local instance ({cpus} CPUs, {cfg.executor.num_actors} '{cfg.executor.resource}' "
                "units); pass --address or set RAY_ADDRESS to join a cluster")
    print(said, flush=True)
    return said
