"""Policy weights on their way from the learner to the rollout actors, through Ray's
object store: the route that works everywhere (CPU, GPU, any backend).

The learner's state dict is cut into chunks of at most `max_bytes` (a single tensor
larger than that is its own chunk) and each chunk is one object, so neither the object
store nor any process ever holds a second full copy of a large model at once: a receiver
fetches, loads and drops one chunk at a time.  Tensors travel as raw bytes in numpy
arrays (Ray hands numpy buffers over without copying them, and bytes work for bfloat16,
which numpy lacks) with their dtype and shape beside them.

`WeightsHandle` is small (a version and a list of ObjectRefs): it rides along with every
generation task, so an actor that Ray restarted after a crash brings itself back to the
newest weights before it samples anything.

Room: every chunk of a version stays in the object store until the pool lets go of the
version's handle, so one sync needs the whole policy's bytes in the store of the node
that writes it (the learner's: the driver, or a learner group's rank 0).  Ray's store
lives in /dev/shm by default (it falls back to its temp directory when /dev/shm is too
small at start), and /dev/shm is shared with everything else on the node.  `publish`
measures both before it writes anything and refuses, naming the bytes needed and free
and what to change, instead of letting Ray spill to disk or a write fail half-way
(`WeightSyncDoesNotFit`).  The rollout pool makes the same check when it starts, from
the model's files (`checkpoint_bytes`), so a job that can never sync fails before its
first iteration.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

SHM = "/dev/shm"
RELEASE_WAIT_S = 3.0  # a dropped version's chunks leave the store a moment after its handle goes

Chunk = list[tuple[str, str, tuple[int, ...], np.ndarray]]  # (name, dtype, shape, bytes)


@dataclass(frozen=True)
class WeightsHandle:
    """Version `version` of the policy, as chunk ObjectRefs in the object store."""

    version: int
    chunks: tuple[Any, ...]
    num_tensors: int
    num_bytes: int


def iter_chunks(state: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]],
                max_bytes: int) -> Iterator[Chunk]:
    """Named tensors grouped into chunks of at most max_bytes (oversized tensors alone)."""
    items = state.items() if isinstance(state, Mapping) else state
    chunk: Chunk = []
    size = 0
    for name, tensor in items:
        encoded = encode(name, tensor)
        nbytes = encoded[3].nbytes
        if chunk and size + nbytes > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(encoded)
        size += nbytes
    if chunk:
        yield chunk


def encode(name: str, tensor: torch.Tensor) -> tuple[str, str, tuple[int, ...], np.ndarray]:
    t = tensor.detach().to("cpu").contiguous()
    raw = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else np.zeros(0, np.uint8)
    return name, str(t.dtype).removeprefix("torch."), tuple(t.shape), raw


def decode(chunk: Chunk) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs of one chunk; tensors own their memory (safe to load)."""
    for name, dtype, shape, raw in chunk:
        if raw.nbytes == 0:
            yield name, torch.empty(shape, dtype=getattr(torch, dtype))
            continue
        buf = torch.from_numpy(np.array(raw, dtype=np.uint8, copy=True))
        yield name, buf.view(getattr(torch, dtype)).reshape(shape)


def publish(state: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]], version: int,
            max_bytes: int = 64 * 2**20) -> WeightsHandle:
    """Put the weights into the object store, one chunk at a time; needs `ray.init`.
    A state dict whose bytes do not fit this node's store is refused before anything
    is written (`WeightSyncDoesNotFit`)."""
    import ray

    if isinstance(state, Mapping):
        ensure_fits(state_bytes(state), max_bytes, "one copy of the policy")
    refs, tensors, nbytes = [], 0, 0
    for chunk in iter_chunks(state, max_bytes):
        refs.append(ray.put(chunk))
        tensors += len(chunk)
        nbytes += sum(c[3].nbytes for c in chunk)
    return WeightsHandle(version, tuple(refs), tensors, nbytes)


def fetch(handle: WeightsHandle) -> Iterator[tuple[str, torch.Tensor]]:
    """Stream the named tensors of a handle, fetching one chunk at a time."""
    import ray

    for ref in handle.chunks:
        chunk = ray.get(ref)
        yield from decode(chunk)
        del chunk


# ---- room in the object store -----------------------------------------------------------
class WeightSyncDoesNotFit(RuntimeError):
    """A weight sync through the object store needs more room than the node has."""


@dataclass(frozen=True)
class StoreSpace:
    """Room for weights in one node's Ray object store, in bytes.

    capacity   the store's size on the node (Ray's object_store_memory)
    free       capacity minus what the store holds now
    shm_free   free bytes of /dev/shm when the store lives there, else None (Ray puts
               it in /dev/shm unless /dev/shm was smaller than the store at start)
    """

    capacity: int
    free: int
    shm_free: int | None = None

    @property
    def usable(self) -> int:
        return self.free if self.shm_free is None else min(self.free, self.shm_free)


def state_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes a state dict takes in the store (every entry encoded, tied ones twice)."""
    return sum(t.numel() * t.element_size() for t in state.values())


def checkpoint_bytes(model_path: str | Path, dtype: str) -> int | None:
    """Bytes of the model's weights in `dtype`, read from its safetensors headers (no
    tensor is loaded); None without safetensors files.  A lower bound of a sync: a tied
    output layer is stored once in the files but published under both names."""
    from safetensors import safe_open

    files = sorted(Path(model_path).glob("*.safetensors"))
    if not files:
        return None
    numel = 0
    for path in files:
        with safe_open(str(path), "pt") as f:
            numel += sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    return numel * torch.empty((), dtype=getattr(torch, dtype)).element_size()


def store_space(node_id: str | None = None) -> StoreSpace:
    """The object store of `node_id` (default: this process's node); needs `ray.init`.
    /dev/shm is measured only for this node (another node's is not readable here)."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    node_id = node_id or here
    capacity = _node_capacity(node_id)
    free = int(_node_available(node_id, capacity))
    shm = None
    if node_id == here and os.path.isdir(SHM) and shutil.disk_usage(SHM).total >= capacity:
        shm = shutil.disk_usage(SHM).free
    return StoreSpace(capacity, free, shm)


def _node_capacity(node_id: str) -> int:
    import ray

    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            return int(node["Resources"].get("object_store_memory", 0))
    raise RuntimeError(f"Ray node {node_id} is not in the cluster")


def _node_available(node_id: str, capacity: int) -> float:
    """What the store on the node has left (Ray's per-node resource view; it follows
    puts and frees within a moment).  Falls back to the cluster's total on one node."""
    import ray

    try:
        from ray._private.state import available_resources_per_node

        return available_resources_per_node()[node_id].get("object_store_memory", 0)
    except Exception:  # a Ray without that developer API: exact on one node, generous beyond
        return min(capacity, ray.available_resources().get("object_store_memory", capacity))


def ensure_fits(num_bytes: int, chunk_bytes: int, what: str, space_of=store_space) -> StoreSpace:
    """Refuse a sync that this node's store cannot hold; waits a moment first when it
    does not fit, since the version the pool just let go of may still be leaving."""
    space = space_of()
    deadline = time.monotonic() + RELEASE_WAIT_S
    while num_bytes > space.usable and time.monotonic() < deadline:
        time.sleep(0.25)
        space = space_of()
    check_fits(num_bytes, space, chunk_bytes, what)
    return space


def check_fits(num_bytes: int, space: StoreSpace, chunk_bytes: int, what: str) -> None:
    """Raise `WeightSyncDoesNotFit` when `num_bytes` exceed the usable room of `space`."""
    if num_bytes <= space.usable:
        return
    mib = 2**20
    shm = (f"; /dev/shm, where the store lives, has {space.shm_free:,} bytes free"
           if space.shm_free is not None else "")
    raise WeightSyncDoesNotFit(
        f"the object-store weight sync needs {num_bytes:,} bytes ({num_bytes / mib:,.1f} MiB: {what}) in Ray's object "
        f"store, but only {space.usable:,} bytes ({space.usable / mib:,.1f} MiB) are free "
        f"({space.free:,} of the store's {space.capacity:,} bytes{shm}).  Give Ray more object store memory "
        f"(`ray start --object-store-memory BYTES` on the learner's node, or ray.init(object_store_memory=...); "
        f"in a container /dev/shm must be at least that large, e.g. docker --shm-size), free /dev/shm, or sync "
        f"by NCCL on GPUs (rollout.weight_sync: nccl with rollout.backend: vllm).  rollout.weight_chunk_mb "
        f"(now {chunk_bytes // mib}) sizes each object, not the sum: a version's chunks all stay in the store "
        f"until the next version replaces them.")


def roomiest_store() -> StoreSpace:
    """Where a sync has the most room: this node's store (with /dev/shm) on a one-node
    cluster, else the largest store of any live node.  What the pool checks at start,
    before it knows which node will write the weights (the learner's: the driver's, or
    a learner group's rank 0's, which `publish` checks exactly at every sync)."""
    import ray

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1:
        return store_space()
    return max((store_space(node) for node in nodes), key=lambda s: s.usable)
