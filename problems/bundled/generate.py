"""Turn (family, params, phrasing, seed) into a `Problem`.

Any parameter combination a family accepts (grid or corner values) can be generated on
demand, with its reference solution and tests; the splits module only decides which
combinations go where.  Everything here is a pure function of its arguments: the test
inputs come from a random generator seeded by a string that names the whole request, so
the same request gives a byte-identical problem in any process.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from core.problem import CallTest, Problem, StdioTest

from .execute import expected_outputs
from .family import STDIN, Family
from .families import ALL_FAMILIES, HARD_FAMILIES

SOURCE = "bundled"

FAMILIES: dict[str, Family] = {family.name: family for family in ALL_FAMILIES}  # the default tier
HARD: dict[str, Family] = {family.name: family for family in HARD_FAMILIES}  # the hard tier
_ANY_TIER: dict[str, Family] = {**FAMILIES, **HARD}
assert len(_ANY_TIER) == len(FAMILIES) + len(HARD), "a family name is used in two tiers"


def family_names() -> list[str]:
    """The default tier's families (`HARD` holds the hard tier's)."""
    return list(FAMILIES)


def get_family(name: Any) -> Family:
    """A family of either tier by name."""
    if name not in _ANY_TIER:
        raise ValueError(f"unknown bundled family {name!r}; allowed: {', '.join(_ANY_TIER)}")
    return _ANY_TIER[name]


def generate_problem(family: str, params: dict[str, Any], phrasing: int, seed: int = 0) -> Problem:
    """One problem of `family` for `params`, stated with phrasing number `phrasing`.

    Raises ValueError naming the family and the bad parameter (with its allowed values).
    The problem's meta has "split": None; generate_split fills it in (and the id).
    """
    fam = get_family(family)
    params = fam.check(params, phrasing)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"bundled family {family!r}: seed must be an int, got {seed!r}")
    request = json.dumps([seed, fam.name, params, phrasing])
    inputs = fam.inputs(random.Random(request), params)
    source = fam.solution(params)
    outputs = expected_outputs(source, inputs, fam.entry_point)
    return Problem(
        id=f"{SOURCE}/{fam.name}/{hashlib.sha1(request.encode()).hexdigest()[:12]}",
        source=SOURCE,
        statement=fam.statement(params, phrasing),
        tests=tuple(_make_test(fam, i, o) for i, o in zip(inputs, outputs)),
        solutions=(source,),
        entry_point=fam.entry_point,
        difficulty=fam.level(params),
        meta={"family": fam.name, "params": params, "phrasing": phrasing, "split": None},
    )


def _make_test(fam: Family, given: Any, output: Any) -> StdioTest | CallTest:
    if fam.kind == STDIN:
        return StdioTest(input=given, output=output)
    return CallTest(args=tuple(given), expected=output)
