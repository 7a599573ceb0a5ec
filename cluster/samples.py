"""A judged rollout sample, what the curriculum and the metrics take from a batch of them,
and their JSON form for checkpoints.

Kept apart from the iteration driver (cluster/trainer.py) because three rules live here
that every consumer must apply the same way:

  * a sandbox error is our failure, never the program's: such samples carry no reward,
    are not trained on, are not reported to the curriculum and are not counted in pass
    rates; they are counted on their own (`sandbox_errors`);
  * FGO masks only with evidence: a program whose coverage the executor did not collect
    or lost (`ExecutionResult.coverage_known` False) keeps every token, and is counted
    (`fgo/coverage_unknown_samples`);
  * a batch collected before a checkpoint (the prefetched one, one step off policy) must
    come back bit for bit, so a resumed run trains on what the uninterrupted one did.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Sequence

from core.rollout import LENGTH
from core.verdict import COMPILE_ERROR, PASS, SANDBOX_ERROR
from cluster.observation import Observation, observe
from curriculum.fgo import COVERAGE_UNKNOWN, fgo_mask
from curriculum.state import StageResult


@dataclass
class Sample:
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    text: str  # the completion as the executors ran it (after the canonical prefix)
    reward: float  # NaN for a sandbox error
    keep: list[bool] | None  # FGO's per-completion-token flags (None: FGO off, or a sandbox error)
    verdict: str
    problem_id: str
    stage: int
    difficulty: str
    policy_version: int  # updates the weights that sampled it had seen (counted across resumes)
    logprobs: tuple[float, ...]  # the sampler's, per completion token (learner.old_logprobs: rollout)
    coverage_unknown: bool = False  # FGO kept every token for want of coverage
    cut: bool = False  # stopped by rollout.max_new_tokens (finish reason "length")
    overlong_penalty: float = 0.0  # already subtracted from `reward` (learner.overlong_penalty)
    outside_code: int = 0  # completion tokens after the code that ran (closing fence, EOS): kept by FGO
    observed: Observation | None = None  # what the rollout table and `execrl inspect` show (cluster/observation.py)
    reward_terms: dict[str, float] | None = None  # the terms `reward` sums (cluster/grounding.py); None: StepCoder's alone

    @property
    def sandbox_error(self) -> bool:
        return self.verdict == SANDBOX_ERROR

    def to_json(self) -> dict:
        out = asdict(self)
        out["reward"] = None if math.isnan(self.reward) else self.reward
        return out

    @classmethod
    def from_json(cls, row: dict) -> "Sample":
        row = dict(row)
        for name in ("prompt_ids", "completion_ids", "logprobs"):
            row[name] = tuple(row[name])
        row["reward"] = float("nan") if row["reward"] is None else float(row["reward"])
        if isinstance(row.get("observed"), dict):
            row["observed"] = Observation.from_json(row["observed"])
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


def judged_sample(tokenizer, problem, prompt, assignment, completion, result, fgo: bool,
                  version_offset: int = 0, penalty: float = 0.0) -> Sample:
    """The sample of `completion` judged as `result`: reward (less `penalty`, the
    over-length penalty), verdict and, with FGO, the mask."""
    if result.problem_id != problem.id:
        raise RuntimeError(f"a result for problem {result.problem_id!r} was paired with a completion of {problem.id!r}")
    keep, unknown, outside, mask = None, False, 0, None
    if fgo and result.verdict != SANDBOX_ERROR:
        mask = fgo_mask(tokenizer, completion.token_ids, prompt.prefix, result.executed_lines,
                        result.executable_lines, compiled=result.verdict != COMPILE_ERROR,
                        coverage_known=result.coverage_known, code=completion.text)
        keep, unknown, outside = list(mask.keep), mask.reason == COVERAGE_UNKNOWN, mask.outside_code
    reward = float("nan") if result.reward is None else float(result.reward) - penalty
    return Sample(tuple(prompt.input_ids), tuple(completion.token_ids), completion.text, reward, keep, result.verdict,
                  problem.id, assignment.stage, problem.difficulty, completion.policy_version + version_offset,
                  tuple(completion.logprobs), unknown, completion.finish_reason == LENGTH,
                  penalty if result.reward is not None else 0.0, outside,
                  observe(problem, prompt, assignment, completion.text, result, mask))


def stage_results(samples: Iterable[Sample]) -> list[StageResult]:
    """What the curriculum learns from a batch: pass/fail per sample at its stage, sandbox
    errors left out (they say nothing about the program)."""
    return [StageResult(s.problem_id, s.stage, s.verdict == PASS) for s in samples if not s.sandbox_error]


def sample_metrics(samples: Sequence[Sample]) -> dict[str, float]:
    """Reward, pass rates and verdict mix of a batch.  Reward and pass rates are over the
    judged samples (sandbox errors excluded); the verdict mix is over all, so the share
    of sandbox errors shows beside the program verdicts, and their count is its own key."""
    judged = [s for s in samples if not s.sandbox_error]
    verdicts = Counter(s.verdict for s in samples)
    by_level: dict[str, list[bool]] = {}
    for s in judged:
        by_level.setdefault(s.difficulty, []).append(s.verdict == PASS)
    masked = [1 - sum(s.keep) / len(s.keep) for s in samples if s.keep]
    return {
        "reward": sum(s.reward for s in judged) / max(1, len(judged)),
        "pass_rate": sum(s.verdict == PASS for s in judged) / max(1, len(judged)),
        **{f"pass_rate/{lvl}": sum(v) / len(v) for lvl, v in by_level.items()},
        **{f"verdict/{v}": c / len(samples) for v, c in verdicts.items()},
        "sandbox_errors": len(samples) - len(judged),
        "masked_token_fraction": sum(masked) / len(masked) if masked else 0.0,
        "fgo/coverage_unknown_samples": sum(s.coverage_unknown for s in samples),
        "fgo/outside_code_tokens": sum(s.outside_code for s in samples),
        "generated_samples": len(samples),
        "generated_tokens": sum(len(s.completion_ids) for s in samples),
        "overlong/cut_fraction": sum(s.cut for s in samples) / max(1, len(samples)),
        "overlong/penalty_mean": sum(s.overlong_penalty for s in judged) / max(1, len(judged)),
    }
