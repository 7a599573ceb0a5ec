"""The transformers backend: batched sampling with a KV cache, on CPU (default) or GPU.

Why our own decoding loop instead of `model.generate`: the log-probabilities must be
exactly those of the distribution each token was drawn from (core/rollout.py), every
completion needs its own random stream so a seeded request is reproducible whatever it
is batched with, and rows must leave the batch as soon as they stop.  The loop samples
through `actors.logprobs.processed_logprobs`, the same function the learner can use to
recompute the numbers, so the two cannot drift apart.

Shape of one batch: left-padded prompts are prefilled once per distinct request, the
cache is then fanned out to n rows per request (`batch_select_indices`), and each decode
step feeds one token per live row; finished rows are pruned from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from actors.backend import GenerationBackend, find_stop
from actors.logprobs import processed_logprobs
from core.rollout import LENGTH, STOP, Completion, GenerationRequest, GenerationResult


@dataclass
class _Row:
    """One completion being decoded."""

    request: GenerationRequest
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None
    stop_at: int = -1  # index in the decoded text where a stop string starts


class HFBackend(GenerationBackend):
    name = "transformers"

    def __init__(self, model_path: str, device: str | None = None, batch_size: int = 64,
                 dtype: str = "float32", seed: int = 0):
        super().__init__()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (eos[0] if eos else 0)
        self.batch_size = batch_size
        self._rng = torch.Generator().manual_seed(seed)

    # ---- weights -------------------------------------------------------------------
    @torch.no_grad()
    def _load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        # state_dict(keep_vars=True) names a tied output layer too, as the learner's does
        targets = self.model.state_dict(keep_vars=True)
        for name, tensor in weights:
            if name not in targets:
                raise KeyError(f"weight {name!r} does not exist in the rollout model")
            target = targets[name]
            if tuple(target.shape) != tuple(tensor.shape):
                raise ValueError(f"weight {name!r}: shape {tuple(tensor.shape)} != {tuple(target.shape)}")
            target.copy_(tensor.to(device=target.device, dtype=target.dtype))

    # ---- generation ----------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        rows = [self._new_row(r, i) for r in requests for i in range(r.n)]
        for start in range(0, len(rows), self.batch_size):
            self._decode(rows[start:start + self.batch_size])
        results, k = [], 0
        for r in requests:
            results.append(GenerationResult(r.request_id, tuple(self._completion(row) for row in rows[k:k + r.n])))
            k += r.n
        return results

    def _new_row(self, request: GenerationRequest, index: int) -> _Row:
        seed = request.sampling.seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,), generator=self._rng))
        return _Row(request, torch.Generator().manual_seed(seed + index))

    @torch.inference_mode()
    def _decode(self, rows: list[_Row]) -> None:
        prompts: dict[int, int] = {}  # id(request) -> prefill row
        for row in rows:
            prompts.setdefault(id(row.request), len(prompts))
        distinct = list({id(r.request): r.request for r in rows}.values())
        width = max(len(r.prompt_ids) for r in distinct)
        ids = torch.full((len(distinct), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(distinct), width), dtype=torch.long)
        for j, r in enumerate(distinct):
            ids[j, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            mask[j, width - len(r.prompt_ids):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        fan_out = torch.tensor([prompts[id(r.request)] for r in rows], device=self.device)
        cache.batch_select_indices(fan_out)
        logits, mask, next_pos = logits[fan_out], mask[fan_out], positions[fan_out, -1] + 1
        live = list(rows)
        while True:
            tokens = self._sample_step(logits, live)
            keep = [j for j, row in enumerate(live) if self._advance(row, int(tokens[j]))]
            if not keep:
                return
            if len(keep) < len(live):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                tokens, mask, next_pos = tokens[index.cpu()], mask[index], next_pos[index]
                live = [live[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
            logits = self.model(input_ids=tokens.to(self.device)[:, None], attention_mask=mask,
                                position_ids=next_pos[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
            next_pos = next_pos + 1

    def _sample_step(self, logits: torch.Tensor, live: list[_Row]) -> torch.Tensor:
        """One token per live row, records its logprob.  Sampling is by inverse CDF with
        one uniform per row drawn from the row's own generator: vectorised over the
        batch, yet each completion's random stream depends on nothing else."""
        logits = logits.float().cpu()
        tokens = torch.empty(len(live), dtype=torch.long)
        groups: dict[tuple[float, float], list[int]] = {}
        for j, row in enumerate(live):
            s = row.request.sampling
            groups.setdefault((s.temperature, s.top_p), []).append(j)
        for (temperature, top_p), members in groups.items():
            logp = processed_logprobs(logits[members], temperature, top_p)
            if temperature == 0:
                chosen = logp.argmax(-1)
            else:
                cdf = logp.exp().cumsum(-1)
                u = torch.stack([torch.rand((), generator=live[j].generator) for j in members])
                # right=True skips the flat steps of tokens outside the nucleus
                chosen = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
                chosen = chosen.clamp(max=logp.shape[-1] - 1)
            taken = logp.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).tolist()
            for k, j in enumerate(members):
                tokens[j] = chosen[k]
                live[j].logprobs.append(taken[k])
        return tokens

    def _advance(self, row: _Row, token: int) -> bool:
        """Append the sampled token; False when the row has finished."""
        row.tokens.append(token)
        s = row.request.sampling
        if token in self.eos_ids:
            row.finish = STOP
        elif s.stop:
            row.stop_at = self._stop_index(row.tokens, s.stop)
            if row.stop_at != -1:
                row.finish = STOP
        if row.finish is None and len(row.tokens) >= s.max_new_tokens:
            row.finish = LENGTH
        return row.finish is None

    def _stop_index(self, tokens: list[int], stops: tuple[str, ...]) -> int:
        """Where the first stop string starts in the decoded completion, or -1.

        Decoding the whole completion after every token made a completion of n tokens
        cost O(n^2) detokenisation.  A stop string first appears in the step that
        completes it, so it lies in the last few tokens: decode a tail window of tokens
        first, and the whole completion only when the tail holds a stop string (or is too
        short to be sure: tokens that decode to nothing)."""
        longest = max(len(stop) for stop in stops)
        window = 2 * longest + 32
        if len(tokens) > window:
            tail = self.tokenizer.decode(tokens[-window:], skip_special_tokens=True)
            if len(tail) >= window and find_stop(tail, stops) == -1:
                return -1
        return find_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stops)

    def _completion(self, row: _Row) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if row.stop_at != -1:
            text = text[:row.stop_at]
        return Completion(tuple(row.tokens), tuple(row.logprobs), row.finish, self.policy_version, text)
