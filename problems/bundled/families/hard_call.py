"""The hard tier's function-call families: runs, walk, score.

Same rules as hard_stdin.py: at least five conditional statements per canonical solution,
branches that only some inputs reach, oracles that do not use the canonical source.
"""

from __future__ import annotations

import random

from ..family import CALL, Family, Params, rand_ints

# runs: the longest run of consecutive values passing a comparison, or a miss value.

RUNS_CODE = """\
def runs(nums):
    best = 0
    current = 0
    for x in nums:
        if x {op} {k}:
            current += 1
        else:
            current = 0
        if current > best:
            best = current
    if best < {m}:
        return {miss}
    return best
"""
RUNS_OPS = {">": "greater than", "<": "less than", "==": "equal to", "!=": "not equal to"}
RUNS_CMP = {">": lambda a, b: a > b, "<": lambda a, b: a < b, "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b}


def _runs_oracle(p: Params, args: tuple):
    flags = "".join("1" if RUNS_CMP[p["op"]](x, p["k"]) else "0" for x in args[0])
    best = max((len(r) for r in flags.split("0")), default=0)
    return p["miss"] if best < p["m"] else best


def _runs_hit(p: Params) -> int:
    """A value that passes the comparison."""
    return {">": p["k"] + 1, "<": p["k"] - 1, "==": p["k"], "!=": p["k"] + 1}[p["op"]]


def _runs_draw(rng: random.Random, p: Params) -> tuple:
    spread = 1 if p["op"] in ("==", "!=") else 4
    return (rand_ints(rng, p["k"] - spread, p["k"] + spread, 1, 9),)


RUNS = Family(
    name="runs",
    kind=CALL,
    entry_point="runs",
    base_level=0,
    phrasings=(
        "Write runs(nums) that returns the length of the longest stretch of consecutive numbers "
        "in nums that are all {opw} {k}; if that length is less than {m}, return {miss}.",
        "Define runs(nums): find the longest block of adjacent elements x with x {op} {k} and "
        "return its length, or {miss} when the longest block is shorter than {m}.",
        "runs(nums) scans a list of integers for the longest run of neighbours {opw} {k}. It "
        "returns the run's length, but {miss} if the length is below {m}.",
        "Implement runs(nums). Return how many numbers the longest unbroken sequence of values "
        "{opw} {k} holds; should it hold fewer than {m}, return {miss}.",
    ),
    grid={"op": tuple(RUNS_OPS), "k": tuple(range(-2, 7)), "m": (2, 3, 4), "miss": (-1, 0, None)},
    corners={"k": (50, -40), "m": (10,)},
    words=lambda p: {**p, "opw": RUNS_OPS[p["op"]]},
    solution=lambda p: RUNS_CODE.format(**p),
    edges=lambda p: [([],), ([_runs_hit(p)] * p["m"],), ([p["k"] - 1, p["k"], p["k"] + 1],)],
    draw=_runs_draw,
    oracle=_runs_oracle,
    extra_level=lambda p: int(p["miss"] is None),
)

# walk: follow a string of moves on a grid and report a coordinate summary.

WALK_CODE = """\
def walk(moves):
    x = 0
    y = 0
    for m in moves:
        if m == "{n}":
            y += {step}
        elif m == "{s}":
            y -= {step}
        elif m == "{e}":
            x += {step}
        elif m == "{w}":
            x -= {step}
{other}    return {result}
"""
WALK_OTHER = {  # how other characters are handled: (code, statement)
    "skip": ("", "Other characters are ignored."),
    "stop": ("        else:\n            break\n", "Any other character ends the walk."),
}
WALK_RESULT = {  # result: (code, statement)
    "distance": ("abs(x) + abs(y)", "the Manhattan distance |x| + |y| from the start"),
    "x": ("x", "the final x coordinate"),
    "y": ("y", "the final y coordinate"),
    "pair": ("[x, y]", "the final position as a list [x, y]"),
    "far": ("max(abs(x), abs(y))", "the larger of |x| and |y|"),
}


def _walk_words(p: Params) -> dict:
    n, s, e, w = p["keys"].split()
    return {"n": n, "s": s, "e": e, "w": w, "step": p["step"], "other": WALK_OTHER[p["other"]][1],
            "result": WALK_RESULT[p["result"]][1]}


def _walk_solution(p: Params) -> str:
    n, s, e, w = p["keys"].split()
    return WALK_CODE.format(n=n, s=s, e=e, w=w, step=p["step"], other=WALK_OTHER[p["other"]][0],
                            result=WALK_RESULT[p["result"]][0])


def _walk_oracle(p: Params, args: tuple):
    n, s, e, w = p["keys"].split()
    moves = {n: (0, 1), s: (0, -1), e: (1, 0), w: (-1, 0)}
    x = y = 0
    for ch in args[0]:
        if ch not in moves:
            if p["other"] == "stop":
                break
            continue
        x, y = x + p["step"] * moves[ch][0], y + p["step"] * moves[ch][1]
    return {"distance": abs(x) + abs(y), "x": x, "y": y, "pair": [x, y], "far": max(abs(x), abs(y))}[p["result"]]


def _walk_draw(rng: random.Random, p: Params) -> tuple:
    keys = p["keys"].split()
    pool = rng.sample(keys, rng.randint(1, 4)) + (["z"] if rng.random() < 0.3 else [])
    return ("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))),)


WALK = Family(
    name="walk",
    kind=CALL,
    entry_point="walk",
    base_level=1,
    phrasings=(
        "Write walk(moves) for a string of moves starting at (0, 0): {n} moves up, {s} down, {e} "
        "right and {w} left, each by {step}. {other} Return {result}.",
        "Define walk(moves). Start at x = 0, y = 0 and read the string: {n} adds {step} to y, {s} "
        "subtracts {step} from y, {e} adds {step} to x, {w} subtracts {step} from x. {other} "
        "Return {result}.",
        "walk(moves) follows the characters of moves from the origin, with {n} {s} {e} {w} "
        "meaning up, down, right, left by {step}. {other} It returns {result}.",
        "Implement walk(moves): a robot at (0, 0) steps {step} up on {n}, down on {s}, right on "
        "{e}, left on {w}. {other} Return {result}.",
    ),
    grid={
        "keys": ("N S E W", "U D R L", "W S D A", "I K L J"),
        "step": (1, 2, 3),
        "other": tuple(WALK_OTHER),
        "result": tuple(WALK_RESULT),
    },
    corners={"step": (10,), "keys": ("F B R L",)},
    words=_walk_words,
    solution=_walk_solution,
    edges=lambda p: [("",), ("".join(p["keys"].split()),), (p["keys"].split()[0] + "z" + p["keys"].split()[2],)],
    draw=_walk_draw,
    oracle=_walk_oracle,
    extra_level=lambda p: int(p["other"] == "stop") + int(p["result"] in ("distance", "far")),
)

# score: points per number by divisibility (for + if/elif/elif/else).

SCORE_CODE = """\
def score(nums):
    points = 0
    for x in nums:
        if x % {a} == 0 and x % {b} == 0:
            points += {both}
        elif x % {a} == 0:
            points += 1
        elif x % {b} == 0:
            points += 2
        else:
            points -= {other}
    return points
"""


def _score_oracle(p: Params, args: tuple):
    total = 0
    for x in args[0]:
        by_a, by_b = x % p["a"] == 0, x % p["b"] == 0
        total += p["both"] if by_a and by_b else 1 if by_a else 2 if by_b else -p["other"]
    return total


SCORE = Family(
    name="score",
    kind=CALL,
    entry_point="score",
    base_level=0,
    phrasings=(
        "Write score(nums): each number divisible by both {a} and {b} scores {both}, one "
        "divisible only by {a} scores 1, only by {b} scores 2, and any other number loses "
        "{other}. Return the total.",
        "Define score(nums) that adds up points: {both} for multiples of both {a} and {b}, 1 for "
        "multiples of {a} only, 2 for multiples of {b} only, minus {other} for the rest.",
        "score(nums) returns the sum over nums of {both} if x % {a} == 0 and x % {b} == 0, else 1 "
        "if x % {a} == 0, else 2 if x % {b} == 0, else -{other}.",
        "Implement score(nums). A value that {a} and {b} both divide is worth {both}; one only {a} "
        "divides is worth 1; one only {b} divides is worth 2; every other value costs {other}.",
    ),
    grid={"a": (2, 3, 4, 5), "b": (3, 4, 5, 6, 7), "both": (3, 4, 5, 10), "other": (1, 2)},
    corners={"b": (11,), "both": (100,)},
    words=lambda p: p,
    solution=lambda p: SCORE_CODE.format(**p),
    edges=lambda p: [([],), ([p["a"] * p["b"], 1],), ([p["a"], p["b"], p["a"] * p["b"] + 1],)],
    draw=lambda rng, p: (rand_ints(rng, -10, 3 * p["a"] * p["b"]),),
    oracle=_score_oracle,
    extra_level=lambda p: int(p["a"] * p["b"] > 20) + int(p["both"] == 10),
    valid=lambda p: p["a"] < p["b"] and p["b"] % p["a"] != 0,  # else "only by b" never happens
    rule="a must be smaller than b, and b not a multiple of a",
)

HARD_CALL_FAMILIES = (RUNS, WALK, SCORE)
