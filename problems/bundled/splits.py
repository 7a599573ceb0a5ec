"""Assign each family's parameter space to the four learning splits.

The split design follows what the 2-CPU experiment in DESIGN.md measured: held-out failures
were unseen parameter combinations and unseen phrasings, and 128 memorisable RL problems
could not teach those.  So, per family and seeded:

- ~12% of the grid's combinations are held out and used by neither SFT nor RL;
- SFT covers the rest SPARSELY (a quarter of it, one training phrasing per combination),
  enough to learn the shapes of the solutions;
- the RL pool covers the rest DENSELY (every remaining combination, one or two training
  phrasings each), so that RL is what has to fill in the parameter space;
- "heldout" asks the held-out combinations with training phrasings;
- "transfer" asks them with a phrasing reserved per family and never used elsewhere, plus
  corner parameter values outside the grid.

A combination lives in exactly one of sft, rl and held-out, and a statement names every
parameter and differs between phrasings, so no statement text appears in two splits.

Tiers.  The same four splits exist for each tier of families: "sft", "rl", "heldout",
"transfer" over the default tier, and "hard-sft", "hard-rl", "hard-heldout",
"hard-transfer" over the hard tier (families/hard_*.py: five or more conditionals per
solution, for CCCS and FGO experiments; selected by config, e.g. configs/tiny-hard.yaml).
The hard tier's SFT set is sparser: a fixed HARD_SFT_PER_FAMILY combinations per family
instead of a quarter of the non-held-out grid, which is what puts the SFT'd tiny model's
held-out pass rate near 0.2-0.5.  A tier's families are never mixed into another tier's
splits.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, replace
from typing import Any, Mapping

from core.problem import Problem

from .family import Family
from .generate import FAMILIES, HARD, SOURCE, generate_problem

SPLITS = ("sft", "rl", "heldout", "transfer")  # the default tier's
HARD_PREFIX = "hard-"
HARD_SPLITS = tuple(HARD_PREFIX + s for s in SPLITS)
ALL_SPLITS = SPLITS + HARD_SPLITS
HELDOUT_FRACTION = 0.12
SFT_FRACTION = 0.25
HARD_SFT_PER_FAMILY = 16  # the hard tier's SFT problems per family (see TIERS)
CORNER_BASES = 2  # grid combinations each corner value is combined with


@dataclass(frozen=True)
class Tier:
    """A set of families and how its splits are cut: a fraction of each family's grid held
    out, then of the rest either a fraction (`sft_fraction`) or a fixed number of
    combinations per family (`sft_per_family`, when set) for SFT."""

    families: Mapping[str, Family]
    heldout_fraction: float = HELDOUT_FRACTION
    sft_fraction: float = SFT_FRACTION
    sft_per_family: int | None = None


# The hard tier's SFT size was tuned so that the SFT'd tiny model (configs/tiny-hard.yaml)
# passes roughly 20-50% of the held-out problems.  Measured held-out pass@1 (450 SFT steps,
# sampled, 4 per problem, seeds 0-2): 0.24-0.30 with 16 per family, 0.49-0.56 with 20.  A
# fraction of each grid (0.06: 0.12; 0.09: 0.31-0.44; 0.12: 0.54-0.64; 0.25: 0.79-0.84)
# starved the small families (ledger, score, walk passed 0-4% at 0.09) while the large ones
# passed 60-70%, hence a number per family.  README, "A harder bundled tier".
TIERS: dict[str, Tier] = {"": Tier(FAMILIES), HARD_PREFIX: Tier(HARD, sft_per_family=HARD_SFT_PER_FAMILY)}


def tier_of(split: str) -> tuple[Tier, str]:
    """(tier, base split) of a split name such as "heldout" or "hard-heldout"."""
    if split not in ALL_SPLITS:
        raise ValueError(f"unknown bundled split {split!r}; allowed: {', '.join(ALL_SPLITS)}")
    prefix = HARD_PREFIX if split.startswith(HARD_PREFIX) else ""
    return TIERS[prefix], split[len(prefix):]


@dataclass(frozen=True)
class Entry:
    """One problem to generate: a parameter combination and a phrasing index."""

    params: dict[str, Any]
    phrasing: int


def plan_family(family: Family, seed: int, tier: Tier = TIERS[""]) -> dict[str, list[Entry]]:
    """The entries of every (base) split for one family; a pure function of its arguments."""
    rng = random.Random(f"bundled-splits|{seed}|{family.name}")
    combos = family.combos()
    rng.shuffle(combos)
    n_held = max(1, round(tier.heldout_fraction * len(combos)))
    held, rest = combos[:n_held], combos[n_held:]
    n_sft = max(1, round(tier.sft_fraction * len(rest)))
    if tier.sft_per_family is not None:
        n_sft = min(tier.sft_per_family, len(rest) - 1)
    sft, rl = rest[:n_sft], rest[n_sft:]

    reserved = rng.randrange(len(family.phrasings))
    training = [i for i in range(len(family.phrasings)) if i != reserved]
    rng.shuffle(training)
    return {
        # Cycling the phrasings spreads them evenly over the sparse SFT set.
        "sft": [Entry(c, training[i % len(training)]) for i, c in enumerate(sft)],
        "rl": [Entry(c, p) for c in rl for p in sorted(rng.sample(training, rng.randint(1, 2)))],
        "heldout": [Entry(c, rng.choice(training)) for c in held],
        "transfer": [Entry(c, reserved) for c in held] + _corner_entries(family, rng),
    }


def _corner_entries(family: Family, rng: random.Random) -> list[Entry]:
    """Each corner value put into a few random grid combinations, with any phrasing.

    A corner value is outside the grid, so these combinations occur in no other split.
    """
    combos = family.combos()
    entries: list[Entry] = []
    seen: set[str] = set()
    for name, values in family.corners.items():
        for value in values:
            for base in rng.sample(combos, min(CORNER_BASES, len(combos))):
                params = {**base, name: value}
                if family.valid(params) and repr(params) not in seen:
                    seen.add(repr(params))
                    entries.append(Entry(params, rng.randrange(len(family.phrasings))))
    return entries


def generate_split(split: str, seed: int = 0) -> list[Problem]:
    """All problems of `split` (one of ALL_SPLITS) for `seed`, family by family; ids are
    bundled/<split>/<family>/<n>.

    Cached per (split, seed); the returned list is a fresh copy each time.
    """
    tier_of(split)  # a bad name fails here, naming the allowed ones
    return list(_cached_split(split, seed))


@functools.lru_cache(maxsize=16)
def _cached_split(split: str, seed: int) -> tuple[Problem, ...]:
    return tuple(build_split(split, seed))


def build_split(split: str, seed: int) -> list[Problem]:
    """Uncached generate_split (tests use it to check that regeneration is byte-identical)."""
    tier, base = tier_of(split)
    problems = []
    for family in tier.families.values():
        for n, entry in enumerate(plan_family(family, seed, tier)[base]):
            problem = generate_problem(family.name, entry.params, entry.phrasing, seed)
            problems.append(replace(
                problem,
                id=f"{SOURCE}/{split}/{family.name}/{n}",
                meta={**problem.meta, "split": split},
            ))
    return problems
