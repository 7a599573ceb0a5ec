"""The reward of each judged sample when it is not StepCoder's alone (cluster/rewards.py):
terms computed from the judge's result, the discriminator's score for RLCF, the
weighted sum as the sample's reward, and the discriminator's training after each update.

With `reward.name: stepcoder` there is no Rewarder: a sample's reward is the judge's, as
it always was (and a resumed run's samples stay byte-identical).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from actors.discriminator import Candidate, DiscriminatorPool
from cluster.rewards import RewardConfig, combine, term_values
from cluster.samples import Sample
from core.problem import Problem
from core.verdict import ExecutionResult

CHECKPOINT_FILE = "discriminator.pt"


class Rewarder:
    def __init__(self, cfg: RewardConfig, problems: dict[str, Problem], model_dir: str, seed: int) -> None:
        self.cfg, self.problems = cfg, problems
        self.terms = cfg.term_weights()
        self.discriminator = None
        if cfg.needs_discriminator:
            self.discriminator = DiscriminatorPool(cfg.discriminator, cfg.discriminator.model or model_dir, seed)

    @classmethod
    def create(cls, cfg: RewardConfig, problems: dict[str, Problem], model_dir: str, seed: int) -> "Rewarder | None":
        return None if cfg.name == "stepcoder" else cls(cfg, problems, model_dir, seed)

    def candidate(self, problem_id: str, program: str) -> Candidate:
        problem = self.problems[problem_id]
        reference = problem.solutions[0] if problem.solutions else ""
        return Candidate(problem_id, problem.statement, reference, program)

    def assign(self, samples: Sequence[Sample], results: Sequence[ExecutionResult], programs: Sequence[str]) -> None:
        """Set each judged sample's reward (less its over-length penalty) and its terms;
        sandbox errors keep no reward."""
        judged = [k for k, s in enumerate(samples) if not s.sandbox_error]
        scores: dict[int, float] = {}
        if self.discriminator is not None and judged:
            values = self.discriminator.score([self.candidate(samples[k].problem_id, programs[k]) for k in judged])
            scores = dict(zip(judged, values))
        for k in judged:
            values = term_values(results[k], self.terms, self.cfg.static_weights, scores.get(k))
            samples[k].reward_terms = values
            samples[k].reward = combine(values, self.terms) - samples[k].overlong_penalty

    def after_update(self, step: int, samples: Sequence[Sample], programs: Sequence[str]) -> dict[str, float]:
        """Per-term means of the trained batch and, with a discriminator, its training on
        the batch (on the schedule) and its held-out accuracy: the metrics to log."""
        metrics = term_means(samples)
        if self.discriminator is None:
            return metrics
        judged = [(s, p) for s, p in zip(samples, programs) if not s.sandbox_error]
        references = [self.candidate(pid, self.problems[pid].solutions[0])
                      for pid in dict.fromkeys(s.problem_id for s, _ in judged) if self.problems[pid].solutions]
        negatives = [self.candidate(s.problem_id, p) for s, p in judged]
        train = (step + 1) % self.cfg.discriminator.train_every == 0
        stats = self.discriminator.observe_and_train(references, negatives, train)
        return {**metrics, **{f"discriminator/{k}": v for k, v in stats.items()}}

    def save(self, step_dir: Path) -> None:
        if self.discriminator is not None:
            self.discriminator.save(str(step_dir / CHECKPOINT_FILE))

    def load(self, step_dir: Path) -> None:
        if self.discriminator is None:
            return
        path = step_dir / CHECKPOINT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the checkpoint has no discriminator state (reward.name "
                                    f"{self.cfg.name!r} needs one); was it written by a run with another reward?")
        self.discriminator.load(str(path))

    def close(self) -> None:
        if self.discriminator is not None:
            self.discriminator.close()


def term_means(samples: Sequence[Sample]) -> dict[str, float]:
    """reward_terms/<term>: the mean of each term over the judged samples that have it."""
    sums: dict[str, list[float]] = {}
    for s in samples:
        for term, value in (s.reward_terms or {}).items():
            if not math.isnan(value):
                sums.setdefault(term, []).append(value)
    return {f"reward_terms/{t}": sum(v) / len(v) for t, v in sums.items()}
