"""Starting or joining Ray, after everything cheap has been checked.

A job that dies after the model is loaded because a data path was misspelt wastes
minutes on a laptop and GPU-hours on a cluster: `preflight` checks config, data and
model paths first, then `connect` joins the cluster (or starts a local one).
"""

from __future__ import annotations

import os

import ray

from cluster.config import TrainConfig
from cluster.modelshape import load_shape
from cluster.plan import GIB, Plan, make_plan
from core.settings import ConfigError
from models.resolve import check_model_path
from problems.load import load_problems


def preflight(cfg: TrainConfig) -> dict:
    """Load every problem set named in the config; bad paths fail here, named."""
    data = cfg.data
    sets = {}
    for name in ("sft", "rl", "heldout", "transfer"):
        spec = getattr(data, name)
        if name == "sft" and cfg.learner.sft.steps == 0:
            continue
        if name == "transfer" and not spec:  # empty: no transfer evaluation
            sets[name] = []
            continue
        try:
            sets[name] = load_problems(_seeded(spec, data.seed), fmt=data.format).problems
        except FileNotFoundError as exc:
            raise ConfigError(f"data.{name}: {exc}") from None
    if cfg.model.path is not None:
        check_model_path(cfg.model.path)
    check_memory_plan(cfg)
    return sets


def check_memory_plan(cfg: TrainConfig, log=print) -> Plan | None:
    """Refuse a GPU job whose memory plan (`execrl plan`) does not fit its GPUs, naming
    the largest consumer and the changes that would make it fit.  A CPU job is never
    refused; without cluster.gpu_memory_gb (and no GPU here to read it from) nothing is
    checked, and the plan says so.  Returns the plan (None: the model's shape is unknown)."""
    memory, _ = cfg.cluster.gpu_memory_gb, cfg.cluster.gpus_per_node  # read on every run
    gpu_job = (cfg.learner.num_workers >= 1 and cfg.learner.gpus_per_worker > 0) or cfg.rollout.gpus_per_actor > 0
    if memory is None and gpu_job:
        memory = _local_gpu_memory_gib()
    try:
        shape, source = load_shape(cfg.model)
    except ConfigError:
        if gpu_job and memory is not None:
            raise
        return None  # a CPU job, or nothing to check against: the shape is not needed
    plan = make_plan(cfg, shape, source, gpu_memory_gib=memory)
    if plan.fits is False:
        fixes = [s["change"] for s in plan.suggestions if s["fits"]]
        hint = f"; it would fit with: {'; '.join(fixes)}" if fixes else "; none of the changes tried fits (execrl plan lists them): add learner GPUs"
        raise ConfigError("the job does not fit its GPUs: " + "; ".join(plan.problems) + hint
                          + " (execrl plan --config ... shows the whole plan)")
    if gpu_job and plan.fits is None:
        log("memory plan not checked: set cluster.gpu_memory_gb (execrl plan shows what the job needs)")
    return plan


def _local_gpu_memory_gib() -> float | None:
    """This machine's first GPU's memory, when it has one (the driver often has none)."""
    import torch  # noqa: PLC0415 - the training job imports it anyway

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GIB


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
