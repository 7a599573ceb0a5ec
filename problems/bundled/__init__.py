"""Bundled problems: procedurally generated families that a ~1M-parameter model can learn.

Written from scratch for execrl.  Each family (families/) is a problem template with a
discrete parameter grid and several statement phrasings; any parameter combination can be
generated with its canonical solution and tests (generate.py), whose expected outputs come
from executing that solution (execute.py).  splits.py divides each family's grid into the
learning splits: sparse SFT, dense RL, held-out combinations, and a transfer split with an
unseen phrasing and out-of-grid corner values.

    generate_split("rl", seed=0)                     -> list[Problem]
    generate_split("hard-rl", seed=0)                -> the hard tier's RL pool
    generate_problem("count", {"op": ">", "k": 3, "parity": "any"}, phrasing=0)
"""

from .family import CALL, LEVELS, STDIN, Family
from .generate import FAMILIES, HARD, family_names, generate_problem
from .splits import ALL_SPLITS, HARD_SPLITS, SPLITS, generate_split

__all__ = [
    "ALL_SPLITS",
    "CALL",
    "FAMILIES",
    "HARD",
    "HARD_SPLITS",
    "LEVELS",
    "SPLITS",
    "STDIN",
    "Family",
    "family_names",
    "generate_problem",
    "generate_split",
]
