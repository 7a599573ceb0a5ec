"""Self-verification: score programs and tests from a pass matrix, PageRank-style.

The matrix has one row per program and one column per generated test; cell (i, j) is
True when program i passes test j.  Every program and every test starts at score 1 and
each iteration applies, simultaneously (both updates read the previous iteration's
scores),

    S(c_i) <- (1 - d) * S(c_i) + d * sum_{j: c_i passes t_j} S(t_j)
    S(t_j) <- (1 - d) * S(t_j) + d * sum_{i: c_i passes t_j} S(c_i)

A program grows with the scores of the tests it passes, a test with the scores of the
programs that pass it (the paper's description: tests passed by more code are more
reliable, code passing more reliable tests is more likely correct).  Scores are not
normalised to a distribution: a program passing two fresh tests goes from 1 to
(1 - d) + 2d, e.g. 1.75 at d = 0.75.  The paper's exact equation could not be
retrieved here (README, "CodeDPO"), so this is the update its words describe.

Why the damping: in matrix form the step is x <- ((1 - d) I + d B) x with B the
bipartite adjacency [[0, A], [A^T, 0]].  B's spectrum is symmetric (+-sigma), so the
undamped iteration (d = 1) flips between two patterns forever; with d < 1 the leading
eigenvalue (1 - d) + d sigma_max strictly dominates |(1 - d) - d sigma_max| and the
iteration converges in direction to the leading singular vectors of A (HITS-like).
The raw scores grow geometrically, so convergence is judged on the scores divided by
their joint maximum: stop when no normalised score moves by more than `tol`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Sequence

Matrix = Sequence[Sequence[bool]]
RANKINGS = ("selfverify", "pass-count", "trust-all", "random")
RESCALE_ABOVE = 1e100  # keep raw scores finite over many iterations (both vectors by one factor)


@dataclass(frozen=True)
class Verification:
    """Scores after the last iteration (raw, except that after a very long run they may
    have been divided by a common factor to stay finite: `log_rescale` is its natural
    log, 0 when never) and their normalised form (/ joint max)."""

    program_scores: tuple[float, ...]
    test_scores: tuple[float, ...]
    iterations: int
    converged: bool
    log_rescale: float = 0.0
    history: tuple[tuple[float, ...], ...] = field(default=(), compare=False)  # program scores per iteration

    @property
    def normalised_programs(self) -> tuple[float, ...]:
        return _normalise(self.program_scores, self.test_scores)[0]

    @property
    def normalised_tests(self) -> tuple[float, ...]:
        return _normalise(self.program_scores, self.test_scores)[1]

    def to_dict(self) -> dict:
        return {"program_scores": list(self.program_scores), "test_scores": list(self.test_scores),
                "normalised_programs": list(self.normalised_programs),
                "normalised_tests": list(self.normalised_tests), "iterations": self.iterations,
                "converged": self.converged, "log_rescale": self.log_rescale}


def check_matrix(matrix: Matrix, what: str = "matrix") -> tuple[int, int]:
    """(programs, tests); a ValueError naming the input when rows are ragged or cells
    are not booleans (0/1 are accepted)."""
    rows = [list(r) for r in matrix]
    if not rows:
        return 0, 0
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{what}: row {i} has {len(row)} cells, row 0 has {width} (rows are programs, "
                             f"columns tests)")
        for j, cell in enumerate(row):
            if cell not in (True, False, 0, 1):
                raise ValueError(f"{what}: cell [{i}][{j}] is {cell!r}; cells must be true/false or 1/0")
    return len(rows), width


def self_verify(matrix: Matrix, d: float = 0.85, tol: float = 1e-6, max_iter: int = 100,
                keep_history: bool = False) -> Verification:
    """Iterate the update above until the normalised scores move less than `tol`, or
    `max_iter` iterations."""
    if not 0 < d < 1:
        raise ValueError(f"verify.damping: {d} must lie strictly between 0 and 1")
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"verify: tol {tol} must be > 0 and max_iter {max_iter} >= 1")
    k, m = check_matrix(matrix)
    a = [[bool(c) for c in row] for row in matrix]
    progs, tests = [1.0] * k, [1.0] * m
    history, log_scale, converged, it = [tuple(progs)], 0.0, False, 0
    for it in range(1, max_iter + 1):
        new_p = [(1 - d) * progs[i] + d * sum(tests[j] for j in range(m) if a[i][j]) for i in range(k)]
        new_t = [(1 - d) * tests[j] + d * sum(progs[i] for i in range(k) if a[i][j]) for j in range(m)]
        top = max(new_p + new_t, default=0.0)
        if top > RESCALE_ABOVE:
            new_p, new_t, log_scale = [x / top for x in new_p], [x / top for x in new_t], log_scale + math.log(top)
        moved = _moved(_normalise(progs, tests), _normalise(new_p, new_t))
        progs, tests = new_p, new_t
        if keep_history:
            history.append(tuple(progs))
        if moved < tol:
            converged = True
            break
    return Verification(tuple(progs), tuple(tests), it, converged, log_scale, tuple(history) if keep_history else ())


def rank_scores(matrix: Matrix, ranking: str = "selfverify", d: float = 0.85, tol: float = 1e-6,
                max_iter: int = 100, seed: int = 0) -> tuple[list[float], Verification | None]:
    """Per-program scores in [0, 1] under a ranking (higher is better; the best program
    is 1 except under random) and, for selfverify, the verification.  The alternatives are the paper's ablations:
      pass-count  the number of generated tests passed (every test trusted equally),
                  divided by the largest count
      trust-all   1 when the program passes every generated test, else 0
      random      a seeded random score (pairs carry no signal: the control)"""
    k, m = check_matrix(matrix)
    if ranking == "selfverify":
        v = self_verify(matrix, d, tol, max_iter)
        top = max(v.program_scores, default=0.0)  # the programs' own maximum: the best program is 1
        return [s / top if top > 0 else 0.0 for s in v.program_scores], v
    if ranking == "pass-count":
        counts = [float(sum(bool(c) for c in row)) for row in matrix]
        return [c / max(counts) if max(counts, default=0) > 0 else 0.0 for c in counts], None
    if ranking == "trust-all":
        return [1.0 if m and all(bool(c) for c in row) else 0.0 for row in matrix], None
    if ranking == "random":
        rng = random.Random(seed)
        return [rng.random() for _ in range(k)], None
    raise ValueError(f"verify.ranking: {ranking!r}; choose one of {', '.join(RANKINGS)}")


def top_program(scores: Sequence[float]) -> int | None:
    """The best program's index (the first of equals); None without programs."""
    if not scores:
        return None
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def trusted_tests(matrix: Matrix, scores: Sequence[float]) -> list[int]:
    """The tests the top-scoring program passes: the set programs are timed on."""
    best = top_program(scores)
    if best is None:
        return []
    return [j for j, cell in enumerate(matrix[best]) if cell]


def _normalise(progs: Sequence[float], tests: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    top = max([*progs, *tests], default=0.0)
    if top <= 0:
        return tuple(progs), tuple(tests)
    return tuple(x / top for x in progs), tuple(x / top for x in tests)


def _moved(old, new) -> float:
    return max((abs(a - b) for a, b in zip([*old[0], *old[1]], [*new[0], *new[1]])), default=0.0)
