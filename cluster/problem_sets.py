"""A problem set for an offline pipeline's stage (CYCLE's collection and evaluation,
CodeDPO's tasks and evaluation): loaded by its data spec, a load failure named by the key
that gave the spec, optionally cut to a subset."""

from __future__ import annotations

import random

from cluster.runtime import _seeded
from core.problem import Problem
from problems.load import load_problems


def load_set(spec: str, seed: int, fmt=None, limit: int = 0, what: str = "problems", sample: bool = False,
             salt: str = "") -> list[Problem]:
    """The set's problems; `limit` keeps the first N, or with `sample` N drawn by a
    generator seeded by `salt` and the set's name alone (the same problems for every seed
    and variant, so runs compare on one subset), in the set's order.  Sampled, not the
    first N: bundled sets are ordered by family (the first 256 of hard-rl are two of its
    six families)."""
    try:
        problems = load_problems(_seeded(spec, seed), fmt=fmt).problems
    except FileNotFoundError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if not limit or limit >= len(problems):
        return problems
    if not sample:
        return problems[:limit]
    keep = set(random.Random(f"{salt}:{spec}").sample(range(len(problems)), limit))
    return [p for i, p in enumerate(problems) if i in keep]


def file_stem(spec: str) -> str:
    """A file name for a set's results: the spec with `/` and `:` replaced, and without
    leading dots or underscores, so `../shared/data/mbpp/x.json` names a visible file
    (`shared_data_mbpp_x.json`), not a hidden one."""
    return spec.replace("/", "_").replace(":", "-").lstrip("._") or "set"
