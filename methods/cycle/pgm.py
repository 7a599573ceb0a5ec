"""Past-generation masking (PGM): hide part of the faulty program in a training prompt.

CYCLE's observation is that a model shown its earlier attempt tends to copy it back.
PGM replaces a fraction of the faulty program's tokens in the *input* with a mask token,
so a refinement example can no longer be solved by copying and the model must lean on
the problem and the feedback; the target (the correct program) is never touched, and
inference never masks (the model sees its whole attempt).

Exactly round(fraction x program tokens) positions are masked, drawn without replacement
from the program's span only, by a `random.Random` the caller seeds: the same seed gives
the same masks, and the masked share is the asked one up to one token's rounding.

Default fraction 0.05 (configs/cycle.yaml): it is the rate the CYCLE paper reports for
its PGM (we could not re-read the paper from this machine; treat the figure as recalled,
and the ablation `cycle-no-pgm` as the measurement that matters here).  A small rate
keeps the attempt readable (its approach and the failing line stay visible) while
breaking long exact runs of tokens that a copy would need.

The mask token is the tokenizer's own mask token, else its unk token, else its pad token
(execrl's tiny tokenizer has only `<|pad|>`, which never occurs in text, so it reads as
"a token was here").  Batches attend to every prompt token (learner/batches.py builds the
attention mask from lengths), so a pad id used as mask is seen, not dropped.
"""

from __future__ import annotations

import random
from typing import Sequence


def mask_token_id(tokenizer, text: str = "") -> int:
    """The id PGM writes: `text`'s single token when given, else the tokenizer's mask,
    unk or pad token (the first it has)."""
    if text:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"data.mask_token {text!r} is {len(ids)} tokens for this tokenizer; it must be one")
        return int(ids[0])
    for name in ("mask_token_id", "unk_token_id", "pad_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("the tokenizer has no mask, unk or pad token: set data.mask_token to a one-token text")


def mask_span(ids: Sequence[int], span: tuple[int, int], fraction: float, mask_id: int,
              rng: random.Random) -> tuple[list[int], list[int]]:
    """(ids with round(fraction x span length) positions inside `span` set to `mask_id`,
    the masked positions, sorted)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"PGM fraction {fraction} must be in [0, 1)")
    lo, hi = span
    if not 0 <= lo <= hi <= len(ids):
        raise ValueError(f"span {span} is not inside a sequence of {len(ids)} tokens")
    count = round(fraction * (hi - lo))
    positions = sorted(rng.sample(range(lo, hi), count)) if count else []
    out = list(ids)
    for i in positions:
        out[i] = mask_id
    return out, positions
