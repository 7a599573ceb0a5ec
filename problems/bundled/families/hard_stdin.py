"""The hard tier's stdin/stdout families: ledger, buckets, parse.

Built for CCCS and FGO (see families/__init__.py): every canonical solution has at least
five conditional statements (so ceil(sqrt(E)) >= 3 curriculum stages), and its branches
are reached by some inputs only, so that a test run leaves the other branches unexecuted.
Same layout as the default tier's modules: a few short functions and one `Family(...)`
block each; the oracles compute the answer without the canonical source.
"""

from __future__ import annotations

import random
import re

from ..family import STDIN, Family, Params, int_line, parse_ints, rand_ints

# ledger: a running total driven by command lines (for + if/elif/elif/else).

LEDGER_CODE = """\
n = int(input())
total = {start}
for _ in range(n):
    word, value = input().split()
    if word == "{a}":
        total += int(value)
    elif word == "{b}":
        total -= int(value)
    elif word == "{c}":
        {third}
    else:
        total = {start}
print(total)
"""
LEDGER_THIRD = {  # command word: (statement, code)
    "mul": ("multiplies the total by it", "total *= int(value)"),
    "set": ("sets the total to it", "total = int(value)"),
    "max": ("keeps the larger of the total and it", "total = max(total, int(value))"),
}
LEDGER_OTHER = ("reset", "clear", "undo", "skip")


def _ledger_words(p: Params) -> dict:
    a, b = p["words"].split()
    return {"a": a, "b": b, "c": p["third"], "start": p["start"], "does": LEDGER_THIRD[p["third"]][0]}


def _ledger_solution(p: Params) -> str:
    w = _ledger_words(p)
    return LEDGER_CODE.format(a=w["a"], b=w["b"], c=w["c"], start=p["start"], third=LEDGER_THIRD[p["third"]][1])


def _ledger_oracle(p: Params, text: str) -> str:
    lines = text.splitlines()
    a, b = p["words"].split()
    total = p["start"]
    for line in lines[1:1 + int(lines[0])]:
        word, value = line.split()
        v = int(value)
        if word in (a, b):
            total = total + v if word == a else total - v
        elif word == p["third"]:
            total = {"mul": total * v, "set": v, "max": v if v > total else total}[p["third"]]
        else:
            total = p["start"]
    return f"{total}\n"


def _ledger_input(commands: list[tuple[str, int]]) -> str:
    return f"{len(commands)}\n" + "".join(f"{w} {v}\n" for w, v in commands)


def _ledger_draw(rng: random.Random, p: Params) -> str:
    a, b = p["words"].split()
    kinds = rng.sample([a, b, p["third"], rng.choice(LEDGER_OTHER)], rng.randint(1, 4))
    high = max(9, p["start"] + 6)  # so that "max" can raise any starting total
    return _ledger_input([(rng.choice(kinds), rng.randint(-5, high)) for _ in range(rng.randint(1, 6))])


def _ledger_edges(p: Params) -> list[str]:
    a, b = p["words"].split()
    # every command changes the total here, so a program that mishandles one fails
    return ["0\n", _ledger_input([(a, 4), (b, 1)]), _ledger_input([(a, 2), (p["third"], p["start"] + 7)]),
            _ledger_input([(b, 3), ("reset", 0), (a, 1)])]


LEDGER = Family(
    name="ledger",
    kind=STDIN,
    base_level=1,
    phrasings=(
        "A total starts at {start}. Read n, then n lines each with a command and an integer: "
        "{a} adds the integer, {b} subtracts it, {c} {does}, and any other command resets the "
        "total to {start}. Print the final total.",
        "Process commands. The first line is n; each of the next n lines is a word and a number. "
        "Starting from {start}: {a} means add, {b} means subtract, {c} {does}, any other word "
        "sets the total back to {start}. Output the total.",
        "Input: n, then n lines 'command value'. Keep a total, initially {start}; on {a} add "
        "value, on {b} subtract value, on {c} the command {does}, otherwise reset it to {start}. "
        "Print it at the end.",
        "Simulate a ledger that begins at {start}. Read the count n and n commands with values: "
        "{a} increases it by the value, {b} decreases it, {c} {does}; unknown commands reset it "
        "to {start}. Print the result.",
    ),
    grid={
        "words": ("add sub", "plus minus", "inc dec", "up down", "gain lose"),
        "third": tuple(LEDGER_THIRD),
        "start": (0, 1, 2, 3, 5, 10),
    },
    corners={"words": ("more less",), "start": (-7, 100)},
    words=_ledger_words,
    solution=_ledger_solution,
    edges=_ledger_edges,
    draw=_ledger_draw,
    oracle=_ledger_oracle,
    extra_level=lambda p: int(p["third"] == "max"),
)

# buckets: count values below / above two bounds, then a three-way verdict.

BUCKETS_CODE = """\
nums = [int(x) for x in input().split()]
low = 0
high = 0
for x in nums:
    if x < {lo}:
        low += 1
    elif x > {hi}:
        high += 1
if low > high:
    print("{w1}")
elif high > low:
    print("{w2}")
else:
    print("{w3}")
"""


def _buckets_words(p: Params) -> dict:
    w1, w2, w3 = p["labels"].split()
    return {"lo": p["lo"], "hi": p["hi"], "w1": w1, "w2": w2, "w3": w3}


def _buckets_oracle(p: Params, text: str) -> str:
    nums = parse_ints(text)
    low = len([x for x in nums if x < p["lo"]])
    high = len([x for x in nums if x > p["hi"]])
    w1, w2, w3 = p["labels"].split()
    return (w1 if low > high else w2 if high > low else w3) + "\n"


BUCKETS = Family(
    name="buckets",
    kind=STDIN,
    base_level=0,
    phrasings=(
        "Read integers from one line. Count those below {lo} and those above {hi}. Print {w1} "
        "if more are below, {w2} if more are above, and {w3} if the counts are equal.",
        "Given a line of integers, compare how many are smaller than {lo} with how many are "
        "greater than {hi}: output {w1} when the first count wins, {w2} when the second wins, "
        "otherwise {w3}.",
        "Input: one line of integers. Let low be the number of values x < {lo} and high the "
        "number of values x > {hi}. Output {w1} if low > high, {w2} if high > low, else {w3}.",
        "Tally the input numbers under {lo} and the ones over {hi}. If the under tally is larger "
        "print {w1}; if the over tally is larger print {w2}; on a tie print {w3}.",
    ),
    grid={
        "lo": (-4, -2, 0, 2, 4, 6),
        "hi": (0, 3, 5, 7, 9, 12),
        "labels": ("low high tie", "cold hot even", "left right draw", "small big same",
                   "down up level", "minus plus zero"),
    },
    corners={"lo": (-50,), "hi": (100,), "labels": ("few many equal",)},
    words=_buckets_words,
    solution=lambda p: BUCKETS_CODE.format(**_buckets_words(p)),
    edges=lambda p: ["\n", int_line([p["lo"] - 1]), int_line([p["hi"] + 1]), int_line([p["lo"], p["hi"]])],
    draw=lambda rng, p: int_line(rand_ints(rng, p["lo"] - 5, p["hi"] + 5)),
    oracle=_buckets_oracle,
    extra_level=lambda p: int(p["hi"] - p["lo"] <= 3),
    valid=lambda p: p["lo"] < p["hi"],
    rule="lo must be smaller than hi",
)

# parse: sum the integer tokens that pass a test; too many bad tokens is an error.

PARSE_CODE = """\
total = 0
bad = 0
for item in input().split():
    try:
        value = int(item)
    except ValueError:
        bad += 1
        continue
    if value {op} {k}:
        total += value
if bad > {m}:
    print("{err}")
else:
    print(total)
"""
PARSE_OPS = {">": "greater than", "<": "less than", ">=": "at least", "<=": "at most"}
PARSE_JUNK = ("abc", "x", "3.5", "7a", "ten", "n0", "?", "--1")
PARSE_CMP = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
             "<=": lambda a, b: a <= b}


def _parse_oracle(p: Params, text: str) -> str:
    tokens = text.split()
    numbers = [int(t) for t in tokens if re.fullmatch(r"[+-]?[0-9]+", t)]
    if len(tokens) - len(numbers) > p["m"]:
        return p["err"] + "\n"
    return f"{sum(v for v in numbers if PARSE_CMP[p['op']](v, p['k']))}\n"


def _parse_draw(rng: random.Random, p: Params) -> str:
    junk_rate = rng.choice((0.0, 0.2, 0.5))
    tokens = [rng.choice(PARSE_JUNK) if rng.random() < junk_rate else str(rng.randint(p["k"] - 6, p["k"] + 6))
              for _ in range(rng.randint(1, 7))]
    return " ".join(tokens) + "\n"


PARSE = Family(
    name="parse",
    kind=STDIN,
    base_level=1,
    phrasings=(
        "Read tokens from one line. Print the sum of the integer tokens that are {opw} {k}; but "
        "if more than {m} tokens are not integers, print {err} instead.",
        "Given a line of tokens, add up every token that is an integer {opw} {k}. When the "
        "number of non-integer tokens exceeds {m}, output {err} rather than the sum.",
        "Input: one line of tokens. Output: the total of integer tokens v with v {op} {k}, or "
        "the word {err} if over {m} tokens fail to parse as integers.",
        "Sum those tokens on the input line that parse as integers and are {opw} {k}, then "
        "print the sum; print {err} when more than {m} tokens cannot be parsed.",
    ),
    grid={
        "op": tuple(PARSE_OPS),
        "k": tuple(range(-2, 6)),
        "m": (0, 1, 2),
        "err": ("error", "invalid", "broken", "reject"),
    },
    corners={"k": (40, -30), "err": ("oops",)},
    words=lambda p: {**p, "opw": PARSE_OPS[p["op"]]},
    solution=lambda p: PARSE_CODE.format(**p),
    edges=lambda p: ["\n", f"{p['k'] - 1} {p['k']} {p['k'] + 1}\n", "abc x ? 7a\n"],  # each op adds some
    draw=_parse_draw,
    oracle=_parse_oracle,
    extra_level=lambda p: int(p["m"] > 0),
)

HARD_STDIN_FAMILIES = (LEDGER, BUCKETS, PARSE)
