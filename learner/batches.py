"""Typed batches at the learner's boundary: what rollouts, SFT data and preference pairs
must look like when they reach the engines.

All tensors are [B, T] over the full right-padded sequence (prompt + completion) and
aligned to tokens (see learner/ppo_math.py).  The `from_*` builders take plain token
lists, so callers never compute padding or mask offsets themselves; `__post_init__`
checks shapes and mask containment, because a mask that is off by one trains silently
on the wrong tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import torch

Tensor = torch.Tensor


def _pad(rows: Sequence[Sequence[float]], width: int, value: float, dtype: torch.dtype) -> Tensor:
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=dtype)
    return out


def _check(name: str, t: Tensor, shape: torch.Size) -> None:
    if t.shape != shape:
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")


def _check_subset(inner: str, a: Tensor, outer: str, b: Tensor) -> None:
    if bool((a.bool() & ~b.bool()).any()):
        raise ValueError(f"{inner} marks tokens outside {outer}")


class _Rows:
    """Row selection and device moves shared by the batch dataclasses."""

    def select(self, index: Tensor | slice):
        """The sub-batch of rows `index` (a minibatch)."""
        return replace(self, **{f.name: _take(getattr(self, f.name), index) for f in fields(self)})

    def to(self, device: torch.device | str):
        return replace(self, **{f.name: _move(getattr(self, f.name), device) for f in fields(self)})

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def _take(value, index):
    if value is None or isinstance(value, (int, float)):  # absent, or one number for the whole batch
        return value
    return value.select(index) if isinstance(value, _Rows) else value[index]


def _move(value, device):
    return value if value is None or isinstance(value, (int, float)) else value.to(device)


@dataclass
class PPOBatch(_Rows):
    """One rollout batch.  `action_mask`: completion tokens the policy emitted (never the
    prompt or canonical prefix, never padding); `policy_mask`: action_mask AND executed
    (FGO); `old_logprobs`: the behaviour policy's log-probabilities aligned to tokens, or
    None to have the learner recompute them before any update (robust to rollout
    backends whose numerics differ from the learner's); `temperature`: the temperature
    the completions were sampled at.  The learner scores every token (old, new and
    reference log-probs, entropy) under softmax(logits / temperature): the policy that
    drew the tokens, so the importance ratio compares like with like.  Top-p is not
    applied there (the nucleus of the new policy differs from the old one's).
    `group_ids` [B]: which prompt each row was sampled from (the critic-free estimators
    compare a sample with its group; None: every row is its own group); `scores` [B]:
    the sequence scores the advantages start from, filled by `learner.ppo.scored` over
    the whole batch before a learner group splits it into per-rank shards (a shard may
    cut a group)."""

    input_ids: Tensor
    attention_mask: Tensor
    action_mask: Tensor
    policy_mask: Tensor
    rewards: Tensor
    old_logprobs: Tensor | None = None
    temperature: float = 1.0
    group_ids: Tensor | None = None
    scores: Tensor | None = None

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"PPOBatch.temperature must be > 0 (the temperature tokens were sampled at), "
                             f"got {self.temperature}")
        shape = self.input_ids.shape
        for name in ("attention_mask", "action_mask", "policy_mask", "old_logprobs"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name), shape)
        _check("rewards", self.rewards, shape[:1])
        for name in ("group_ids", "scores"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name), shape[:1])
        _check_subset("action_mask", self.action_mask, "attention_mask", self.attention_mask)
        _check_subset("policy_mask", self.policy_mask, "action_mask", self.action_mask)
        if bool(self.action_mask[:, 0].any()):
            raise ValueError("action_mask marks token 0, which has no state before it; prompts must be non-empty")

    @classmethod
    def from_sequences(cls, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                       rewards: Sequence[float], pad_id: int,
                       executed: Sequence[Sequence[bool]] | None = None,
                       old_logprobs: Sequence[Sequence[float]] | None = None,
                       temperature: float = 1.0, groups: Sequence[int] | None = None) -> "PPOBatch":
        """Right-padded batch from per-sample prompt tokens (statement + canonical prefix),
        completion tokens, program rewards, FGO's per-completion-token executed flags
        (None: all executed, i.e. FGO off), per-completion-token old log-probs, the
        sampling temperature and each sample's group (the prompt it was sampled from)."""
        if not (len(prompts) == len(completions) == len(rewards)):
            raise ValueError("prompts, completions and rewards must have the same length")
        width = max(len(p) + len(c) for p, c in zip(prompts, completions))
        ids = _pad([list(p) + list(c) for p, c in zip(prompts, completions)], width, pad_id, torch.long)
        attn = _pad([[1] * (len(p) + len(c)) for p, c in zip(prompts, completions)], width, 0, torch.long)
        action = _pad([[0] * len(p) + [1] * len(c) for p, c in zip(prompts, completions)], width, 0, torch.long)
        if executed is None:
            executed = [[True] * len(c) for c in completions]
        for i, (c, e) in enumerate(zip(completions, executed)):
            if len(e) != len(c):
                raise ValueError(f"sample {i}: {len(e)} executed flags for {len(c)} completion tokens")
        policy = _pad([[0] * len(p) + [int(x) for x in e] for p, e in zip(prompts, executed)], width, 0, torch.long)
        old = None
        if old_logprobs is not None:
            for i, (c, lp) in enumerate(zip(completions, old_logprobs)):
                if len(lp) != len(c):
                    raise ValueError(f"sample {i}: {len(lp)} old log-probs for {len(c)} completion tokens")
            old = _pad([[0.0] * len(p) + list(lp) for p, lp in zip(prompts, old_logprobs)], width, 0.0, torch.float32)
        group_ids = None if groups is None else torch.as_tensor(list(groups), dtype=torch.long)
        return cls(ids, attn, action, policy, torch.as_tensor(list(rewards), dtype=torch.float32), old,
                   float(temperature), group_ids)


@dataclass
class SFTBatch(_Rows):
    """Supervised sequences; `loss_mask` marks the target tokens (the prompt is masked out)."""

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor

    def __post_init__(self) -> None:
        _check("attention_mask", self.attention_mask, self.input_ids.shape)
        _check("loss_mask", self.loss_mask, self.input_ids.shape)
        _check_subset("loss_mask", self.loss_mask, "attention_mask", self.attention_mask)
        if bool(self.loss_mask[:, 0].any()):
            raise ValueError("loss_mask marks token 0, which nothing predicts; prompts must be non-empty")

    @classmethod
    def from_pairs(cls, prompts: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], pad_id: int,
                   width: int | None = None) -> "SFTBatch":
        """Prompt tokens (not trained on) followed by target tokens (trained on)."""
        width = width or max(len(p) + len(t) for p, t in zip(prompts, targets))
        ids = _pad([list(p) + list(t) for p, t in zip(prompts, targets)], width, pad_id, torch.long)
        attn = _pad([[1] * (len(p) + len(t)) for p, t in zip(prompts, targets)], width, 0, torch.long)
        loss = _pad([[0] * len(p) + [1] * len(t) for p, t in zip(prompts, targets)], width, 0, torch.long)
        return cls(ids, attn, loss)


@dataclass
class DPOBatch(_Rows):
    """Preference pairs (CodeDPO): the same prompt with a chosen and a rejected response;
    each half's loss_mask marks its response tokens, the ones whose log-probs are summed."""

    chosen: SFTBatch
    rejected: SFTBatch

    def __post_init__(self) -> None:
        if self.chosen.input_ids.shape != self.rejected.input_ids.shape:
            raise ValueError("chosen and rejected halves must have the same shape (use DPOBatch.from_triples)")

    @property
    def input_ids(self) -> Tensor:
        return self.chosen.input_ids

    @classmethod
    def from_triples(cls, prompts: Sequence[Sequence[int]], chosen: Sequence[Sequence[int]],
                     rejected: Sequence[Sequence[int]], pad_id: int) -> "DPOBatch":
        width = max(len(p) + max(len(c), len(r)) for p, c, r in zip(prompts, chosen, rejected))
        return cls(SFTBatch.from_pairs(prompts, chosen, pad_id, width),
                   SFTBatch.from_pairs(prompts, rejected, pad_id, width))
