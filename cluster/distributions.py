"""Per-iteration distributions of a batch, not just its means.

A mean reward of 0 can be every program at 0 or half at +1 and half at -1; a mean
judge time hides the one program that ran into the time limit.  Each iteration logs,
as plain numbers in metrics.jsonl (and W&B):

  dist/reward_{p10,p50,p90,std}          over judged samples (sandbox errors excluded)
  dist/completion_tokens_{p50,p90,max}   over all samples
  time/judge_{p50,p95,p99,max}           a program's judge time: the wall seconds of all
                                         its tests in the executors (queueing excluded)
  judge/timeouts, judge/timed_out_tests  programs judged timeout, tests that timed out
  curriculum/samples_at_stage_K          the batch's samples per curriculum stage

and `histograms` gives the raw values for W&B histograms (`hist/*`).  Judge times are
under `time/` with the other clock readings, which a resumed run does not reproduce.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

from cluster.observation import LETTERS
from core.verdict import TIMEOUT


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default);
    NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def batch_distributions(samples: Sequence) -> dict[str, float]:
    """The numbers above for one batch of `cluster.samples.Sample`s."""
    rewards = [s.reward for s in samples if not s.sandbox_error]
    lengths = [len(s.completion_ids) for s in samples]
    judge = judge_seconds(samples)
    mean = sum(rewards) / len(rewards) if rewards else 0.0
    out = {f"dist/reward_p{q}": _finite(percentile(rewards, q)) for q in (10, 50, 90)}
    out["dist/reward_std"] = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)) if rewards else 0.0
    out.update({f"dist/completion_tokens_p{q}": _finite(percentile(lengths, q)) for q in (50, 90)})
    out["dist/completion_tokens_max"] = float(max(lengths, default=0))
    out.update({f"time/judge_p{q}": _finite(percentile(judge, q)) for q in (50, 95, 99)})
    out["time/judge_max"] = max(judge, default=0.0)
    out["judge/timeouts"] = sum(s.verdict == TIMEOUT for s in samples)
    out["judge/timed_out_tests"] = sum(_timed_out_tests(s) for s in samples)
    out.update({f"curriculum/samples_at_stage_{k}": v for k, v in sorted(Counter(s.stage for s in samples).items())})
    return out


def histograms(samples: Sequence) -> dict[str, list[float]]:
    """Raw per-sample values for W&B histograms."""
    return {"hist/reward": [s.reward for s in samples if not s.sandbox_error],
            "hist/completion_tokens": [float(len(s.completion_ids)) for s in samples],
            "hist/judge_seconds": judge_seconds(samples),
            "hist/sample_stage": [float(s.stage) for s in samples]}


def stage_histogram(metrics: dict) -> tuple[list[int], list[int]] | None:
    """(counts, bin edges) of problems per current curriculum stage, from the iteration's
    `curriculum/problems_at_stage_K` numbers; None when the metrics have none."""
    prefix = "curriculum/problems_at_stage_"
    at = {int(k[len(prefix):]): int(v) for k, v in metrics.items() if k.startswith(prefix)}
    if not at:
        return None
    stages = range(max(at) + 1)
    return [at.get(k, 0) for k in stages], [*stages, max(at) + 1]


def judge_seconds(samples: Sequence) -> list[float]:
    return [s.observed.judge_s for s in samples if s.observed is not None]


def _timed_out_tests(sample) -> int:
    return sample.observed.test_verdicts.count(LETTERS[TIMEOUT]) if sample.observed is not None else 0


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else value
