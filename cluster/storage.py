"""Where a run writes on a multi-node cluster, checked before the first iteration.

    what                        written by                    read by
    output_dir (metrics, samples, result.json, hf/)   the driver       the user
    output_dir/checkpoints      learner rank 0's node (every rank)    the driver (export at the end,
                                                                       `--resume`), the learner (resume)
    model.cache_dir (SFT model) the SFT Ray task's node       the driver, the learner, the rollout actors

With the learner on Ray actors (learner.num_workers >= 1) the checkpoints are written on
the learner's node, and the driver then exports the trained policy from them; so the
checkpoint directory must be writable there and be the same directory the driver sees
(shared storage, e.g. NFS), unless the learner runs on the driver's node.  The check
writes a probe file from a task placed in the learner's own placement group and looks
for it from the driver; it refuses a job whose learner cannot write there, or whose
checkpoints the driver would not see, naming the directory and both nodes.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path


def probe_write(directory: str, name: str) -> dict:
    """Runs on the learner's node: create `directory`, write a probe file there."""
    host = socket.gethostname()
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / name).write_text(host)
    except OSError as exc:
        return {"host": host, "error": f"{type(exc).__name__}: {exc}"}
    return {"host": host, "error": None}


def check_checkpoint_storage(directory: Path, learner) -> str:
    """Refuse a learner group that cannot write `directory`, or whose writes the driver
    cannot see; returns what was checked (logged).  An in-process learner writes from
    the driver itself: nothing to check."""
    placement = getattr(learner, "placement", None)
    if placement is None:
        return f"checkpoints: {directory} (written by the driver's own process)"
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    name = f".execrl-probe-{uuid.uuid4().hex}"
    task = ray.remote(probe_write).options(num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(
        placement, placement_group_bundle_index=0))
    seen = ray.get(task.remote(str(directory), name))
    here = socket.gethostname()
    if seen["error"]:
        raise RuntimeError(f"the learner (node {seen['host']}) cannot write its checkpoints to {directory}: "
                           f"{seen['error']}; set output_dir to a directory every node can write")
    probe = directory / name
    if not probe.is_file():
        raise RuntimeError(f"the learner (node {seen['host']}) writes its checkpoints to {directory}, but the "
                           f"driver (node {here}) does not see them there: put output_dir on storage shared by "
                           f"the driver and the learner's node (the driver exports the trained policy from them)")
    os.unlink(probe)
    return f"checkpoints: {directory} (written on node {seen['host']}, seen by the driver on {here})"
