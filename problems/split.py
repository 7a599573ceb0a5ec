"""Train / held-out splits of a problem set, stratified by difficulty and fixed by a seed.

APPS+ ships as one file (7,413 problems: introductory 2,889, interview 3,592,
competition 572), so a held-out set has to be cut from it.  Cutting each difficulty
separately keeps the held-out mix equal to the whole set's (a plain shuffle can leave
the 572 competition problems over- or under-represented), and a seeded shuffle per
difficulty over the problems sorted by id makes the split depend only on the set and
the seed, not on the file's order: rerunning the command on a reordered copy writes the
same two sets.  Within each output file problems keep the input file's order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from core.problem import Problem


def heldout_count(size: int, fraction: float) -> int:
    """Problems of a difficulty stratum that go to held-out: size x fraction, rounded half up."""
    return int(size * fraction + 0.5)


def split_problems(problems: Sequence[Problem], heldout_fraction: float, seed: int) -> tuple[list[Problem], list[Problem]]:
    """(train, held-out), each in input order."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"--heldout-fraction must be between 0 and 1 (exclusive), got {heldout_fraction}")
    by_id: dict[str, Problem] = {}
    for p in problems:
        if p.id in by_id:
            raise ValueError(f"problem id {p.id!r} appears twice: a split needs unique ids")
        by_id[p.id] = p
    strata: dict[str, list[str]] = defaultdict(list)
    for pid in sorted(by_id):
        strata[by_id[pid].difficulty].append(pid)
    heldout: set[str] = set()
    for difficulty in sorted(strata):
        ids = strata[difficulty]
        random.Random(f"{seed}:{difficulty}").shuffle(ids)
        heldout.update(ids[: heldout_count(len(ids), heldout_fraction)])
    return [p for p in problems if p.id not in heldout], [p for p in problems if p.id in heldout]
