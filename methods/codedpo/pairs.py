"""Preference pairs: correctness pairs and efficiency pairs, balanced by one rule.

Per problem (programs deduplicated by text first: a pair of identical programs teaches
nothing):
- correctness: chosen = a top-ranked program (normalised score >= `chosen_min`, the
  highest first), rejected = a program whose normalised score is <= `rejected_max`,
  lowest first; up to `correctness_per_problem` pairs, each chosen and each rejected
  program used round-robin so that one program does not fill every pair.
- efficiency: among the programs that passed every trusted test in every timing repeat
  (timing.py), chosen = faster, rejected = slower, where slower / faster >=
  `min_speedup`; fastest against slowest first, up to `efficiency_per_problem`.
Balance (the documented rule): over the whole set, efficiency pairs are at most
`efficiency_ratio` x correctness pairs (the paper's data is 93K correctness to 21K
efficiency pairs, about 0.23); when over, the efficiency pairs with the smallest speed-up
ratios are dropped first.  Scores are divided by the problem's best program score
(verify.rank_scores), so `chosen_min` and `rejected_max` mean the same on every problem.

Each pair is written (pairs.jsonl) with the scores and timings that chose it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from .timing import Timing


@dataclass(frozen=True)
class PairRule:
    chosen_min: float = 0.9
    rejected_max: float = 0.5
    correctness_per_problem: int = 4
    min_speedup: float = 1.1
    efficiency_per_problem: int = 2
    efficiency_ratio: float = 0.25


@dataclass(frozen=True)
class Pair:
    problem_id: str
    kind: str  # correctness | efficiency
    chosen: str
    rejected: str
    chosen_index: int
    rejected_index: int
    chosen_score: float
    rejected_score: float
    chosen_time_s: float | None = None
    rejected_time_s: float | None = None

    @property
    def speedup(self) -> float | None:
        if self.chosen_time_s and self.rejected_time_s:
            return self.rejected_time_s / self.chosen_time_s
        return None

    def to_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def distinct(programs: Sequence[str]) -> list[int]:
    """Index of each program's first occurrence (stripped text)."""
    seen, keep = set(), []
    for i, p in enumerate(programs):
        key = p.strip()
        if key and key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def correctness_pairs(problem_id: str, programs: Sequence[str], scores: Sequence[float], rule: PairRule) -> list[Pair]:
    keep = distinct(programs)
    chosen = sorted((i for i in keep if scores[i] >= rule.chosen_min), key=lambda i: (-scores[i], i))
    rejected = sorted((i for i in keep if scores[i] <= rule.rejected_max), key=lambda i: (scores[i], i))
    # Diagonal order over (chosen rank, rejected rank): (0,0), (0,1), (1,0), (0,2), (1,1), ...
    # so the best program meets the worst first and no single program fills every pair.
    order = [(a, s - a) for s in range(len(chosen) + len(rejected)) for a in range(len(chosen))
             if 0 <= s - a < len(rejected)]
    pairs = []
    for a, b in order[:rule.correctness_per_problem]:
        c, r = chosen[a], rejected[b]
        if c != r:
            pairs.append(Pair(problem_id, "correctness", programs[c], programs[r], c, r, scores[c], scores[r]))
    return pairs


def efficiency_pairs(problem_id: str, programs: Sequence[str], scores: Sequence[float],
                     timings: Sequence[Timing | None], rule: PairRule) -> list[Pair]:
    keep = set(distinct(programs))
    timed = sorted((i for i, t in enumerate(timings) if i in keep and t is not None and t.median_s),
                   key=lambda i: (timings[i].median_s, i))
    pairs = []
    candidates = [(timed[a], timed[b]) for a in range(len(timed)) for b in range(len(timed) - 1, a, -1)]
    candidates.sort(key=lambda ab: -(timings[ab[1]].median_s / timings[ab[0]].median_s))
    for fast, slow in candidates:
        if len(pairs) >= rule.efficiency_per_problem:
            break
        if timings[slow].median_s / timings[fast].median_s < rule.min_speedup:
            continue
        pairs.append(Pair(problem_id, "efficiency", programs[fast], programs[slow], fast, slow, scores[fast],
                          scores[slow], timings[fast].median_s, timings[slow].median_s))
    return pairs


def balance(correctness: list[Pair], efficiency: list[Pair], ratio: float) -> tuple[list[Pair], int]:
    """(efficiency pairs kept, dropped): at most ratio x len(correctness), the largest
    speed-ups kept."""
    cap = int(ratio * len(correctness))
    if len(efficiency) <= cap:
        return efficiency, 0
    ranked = sorted(range(len(efficiency)), key=lambda i: (-(efficiency[i].speedup or 0.0), i))
    keep = sorted(ranked[:cap])
    return [efficiency[i] for i in keep], len(efficiency) - cap
