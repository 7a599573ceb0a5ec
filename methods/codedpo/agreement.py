"""How far the self-verified ranking agrees with the problems' real tests.

Where a problem has real tests (bundled, MBPP, HumanEval), every sampled program is also
judged on them (matrix stage).  Per problem:
- precision@1: the top-ranked program passes the real tests (1/0);
- chance: the share of its programs that pass (what a random pick's precision@1 is);
- correlation: Spearman's rank correlation between the ranking scores and the real
  pass/fail, where both vary (undefined otherwise: every program passes, or none, or
  the ranking ties them all).
Means over problems are reported with how many problems each mean covers, so users can
see when to trust the ranking.
"""

from __future__ import annotations

from typing import Sequence

from core.verdict import PASS

from .verify import top_program


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of the ranks; None when either side is constant."""
    if len(x) < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


def problem_agreement(scores: Sequence[float], real: Sequence[str]) -> dict:
    passed = [1.0 if v == PASS else 0.0 for v in real]
    best = top_program(scores)
    return {"precision_at_1": passed[best] if best is not None else None,
            "chance": sum(passed) / len(passed) if passed else None,
            "spearman": spearman(scores, passed)}


def summarise(rows: Sequence[dict]) -> dict:
    """Means over the problems where each figure is defined, with their counts."""
    out = {}
    for key in ("precision_at_1", "chance", "spearman"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_problems"] = len(values)
    return out
