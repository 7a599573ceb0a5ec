"""The learner's side of the NCCL weight route: every rank takes part, rank 0 sends.

Why every rank: under ZeRO-3 no rank holds a whole parameter, so the full weights exist
only while the ranks gather them together (`deepspeed.zero.GatheredParameters`, a
collective).  `GatheredSource` gathers one module's own parameters at a time (a Linear's
weight, a norm's weight; a LoRA-wrapped Linear with its adapters), yields them, and
lets them go before the next module: no rank ever holds more than one module gathered,
and no rank builds a CPU copy of the model (the object-store route's consolidated state
dict does).  Rank 0 hands the source to a sender (vLLM's NCCL engine, actors/vllm_nccl.py),
which streams it into the rollout actors; the other ranks iterate the same source in the
same order so their gathers meet rank 0's.

The source follows vLLM's WeightSource protocol by shape (duck-typed, so this module
imports nothing of vLLM and its logic is tested on CPU): `metadata()` lists (name, wire
dtype, full shape) without gathering, and every `iter(source)` is a fresh pass whose
pairs match that list one for one.  Names are the Hugging Face ones vLLM loads; a LoRA
policy sends W + (alpha / r) B A under the base weight's name, merged by
`learner.lora.merged_state_dict`, the function the object-store route and the export use,
so every route delivers the same weights.  Tied embeddings are sent once, under the
input embedding's name (`named_parameters` order); vLLM skips `lm_head` for tied models
and the rollout actor re-ties it (actors/vllm_worker.py).

`PolicyBroadcaster` keeps rank 0's sender between broadcasts and re-forms the NCCL group
when the target's actors changed (a restarted actor's pid is new).  A broadcast of the
version it already sent is a *refresh* (a restarted actor catching up); it is refused if
the policy has taken an optimizer step since, because those weights no longer exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from actors.vllm_nccl import BroadcastTarget
from learner.lora import PREFIX, merged_state_dict, module_scale


@dataclass(frozen=True)
class WeightMeta:
    """One sent weight, declared before anything is gathered (vLLM's ParamMeta fields)."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def num_bytes(self) -> int:
        return _numel(self.shape) * torch.empty((), dtype=self.dtype).element_size()


@dataclass(frozen=True)
class _Unit:
    """Parameters gathered together: one module's own, or a LoRA layer's base and adapters."""

    names: tuple[str, ...]  # as named in the engine's module
    params: tuple[nn.Parameter, ...]
    lora: bool


class GatheredSource:
    """vLLM's WeightSource over a (possibly ZeRO-3 partitioned, possibly LoRA-wrapped)
    policy module.  `sender`: this rank's tensors are sent, so they are copied out of the
    gathered parameter (cast to `dtype`) and outlive its release; other ranks only take
    part in the gathers."""

    def __init__(self, module: nn.Module, *, sender: bool, dtype: torch.dtype | None = None):
        self.sender, self.dtype = sender, dtype
        self.scale = module_scale(module)
        self.zero3 = any(hasattr(p, "ds_id") for p in module.parameters())
        self.units = _units(module, lora=self.scale is not None)

    def metadata(self) -> list[WeightMeta]:
        return [meta for unit in self.units for meta in self._declared(unit)]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for unit in self.units:
            with _gathered(unit.params, self.zero3):
                yield from self._emit(unit)

    def _declared(self, unit: _Unit) -> list[WeightMeta]:
        return [WeightMeta(self._out_name(name), self.dtype or p.dtype, _full_shape(p))
                for name, p in zip(unit.names, unit.params) if ".lora_" not in name]

    def _emit(self, unit: _Unit) -> Iterator[tuple[str, torch.Tensor]]:
        if not self.sender:
            for name, p in zip(unit.names, unit.params):
                if ".lora_" not in name:
                    yield self._out_name(name), p.data
            return
        if unit.lora:
            device = unit.params[0].device
            merged = merged_state_dict(dict(zip(unit.names, (p.data for p in unit.params))), self.scale)
            for name, tensor in merged.items():
                yield name, tensor.to(device=device, dtype=self.dtype or tensor.dtype)
            return
        for name, p in zip(unit.names, unit.params):
            yield self._out_name(name), p.data.detach().to(dtype=self.dtype or p.dtype, copy=True)

    def _out_name(self, name: str) -> str:
        """The Hugging Face name (a peft model's prefix and `.base_layer` removed)."""
        return name.removeprefix(PREFIX).replace(".base_layer.", ".") if self.scale is not None else name


def _units(module: nn.Module, lora: bool) -> list[_Unit]:
    """Modules in `named_modules` order, each with the parameters it owns (shared ones
    only the first time, as `named_parameters` does); a LoRA layer takes its children's."""
    units, seen = [], set()
    for prefix, sub in module.named_modules():
        adapted = lora and hasattr(sub, "base_layer") and hasattr(sub, "lora_A")
        owned = sub.named_parameters(prefix=prefix, recurse=adapted)
        pairs = [(n, p) for n, p in owned if id(p) not in seen]
        seen.update(id(p) for _, p in pairs)
        if pairs:
            units.append(_Unit(tuple(n for n, _ in pairs), tuple(p for _, p in pairs), adapted))
    return units


def _gathered(params: tuple[nn.Parameter, ...], zero3: bool):
    if not zero3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(params), modifier_rank=None)


def _full_shape(p: nn.Parameter) -> tuple[int, ...]:
    return tuple(p.ds_shape) if hasattr(p, "ds_shape") else tuple(p.shape)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ---- senders: what rank 0 does with the source ---------------------------------------
class DryRunSender:
    """Gathers and reads every tensor as the NCCL route would, hashing it instead of
    sending it: what a CPU test can check, and a learner group's side of the route
    checked before any vLLM actor exists."""

    def __init__(self, target: BroadcastTarget, source: GatheredSource):
        self.source = source

    def send(self, version: int) -> dict[str, Any]:
        digests = {}
        for name, tensor in self.source:
            raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            digests[name] = hashlib.sha256(raw).hexdigest()
        return {"digests": digests}

    def close(self) -> None:
        """Nothing to release."""


def _nccl_sender(target: BroadcastTarget, source: GatheredSource):
    from actors.vllm_nccl import NcclWeightSender

    return NcclWeightSender(target, source)


SENDERS: dict[str, Callable[[BroadcastTarget, GatheredSource], Any]] = {"nccl": _nccl_sender,
                                                                        "dry_run": DryRunSender}


@dataclass(frozen=True)
class BroadcastStats:
    """One broadcast as rank 0 saw it: what was declared and sent, and how long it took."""

    version: int
    num_tensors: int
    num_bytes: int
    seconds: float
    regrouped: bool  # a new group was formed first (the first broadcast, or the actors changed)
    digests: dict[str, str] | None = None  # dry_run only: sha256 of each tensor's bytes


class PolicyBroadcaster:
    """One per learner rank, kept between broadcasts (the NCCL group outlives a sync)."""

    def __init__(self) -> None:
        self._sender = None
        self._source: GatheredSource | None = None
        self._key: tuple | None = None
        self._sent: tuple[int, int] | None = None  # (version, optimizer steps) of the last broadcast

    def broadcast(self, engine: Any, target: BroadcastTarget, rank: int) -> BroadcastStats:
        """Send the policy of `engine` to `target` (every rank calls this, in step)."""
        steps = int(getattr(engine, "global_steps", 0))
        self._check_version(target.version, steps)
        start = time.perf_counter()
        key = (target.transport, target.actor_pids, target.tensor_parallel_size, target.dtype)
        regrouped = key != self._key
        if regrouped:
            self._regroup(engine, target, rank, key)
        if rank == 0:
            extra = self._sender.send(target.version)
        else:
            extra = {}
            for _ in self._source:  # take part in every gather rank 0 makes
                pass
        self._sent = (target.version, steps)
        meta = self._source.metadata()
        return BroadcastStats(target.version, len(meta), sum(m.num_bytes for m in meta),
                              time.perf_counter() - start, regrouped, extra.get("digests"))

    def _check_version(self, version: int, steps: int) -> None:
        if self._sent is None:
            return
        sent_version, sent_steps = self._sent
        if version < sent_version:
            raise ValueError(f"weights version {version} is older than the last broadcast's ({sent_version})")
        if version == sent_version and steps != sent_steps:
            raise RuntimeError(f"cannot re-send version {version}: the policy has taken {steps - sent_steps} "
                               f"optimizer step(s) since it was broadcast, so those weights no longer exist")

    def _regroup(self, engine: Any, target: BroadcastTarget, rank: int, key: tuple) -> None:
        if target.transport not in SENDERS:
            raise ValueError(f"unknown weight transport {target.transport!r}; choose one of {', '.join(SENDERS)}")
        if self._sender is not None:
            self._sender.close()
        self._sender, self._key = None, None
        self._source = GatheredSource(engine.module, sender=rank == 0, dtype=getattr(torch, target.dtype))
        if rank == 0:
            self._sender = SENDERS[target.transport](target, self._source)
        self._key = key
