"""Knobs of CCCS, StepCoder's curriculum of code-completion subtasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.settings import ConfigSection, rng


@dataclass
class CurriculumConfig(ConfigSection):
    """`enabled=False` trains every sample from position 0 (vanilla PPO).  A sample's start
    point moves one stage back toward the beginning once the moving pass rate of code
    generated from it, over the last `window` rollouts (the window must be full), exceeds
    `rho` (strictly: a rate equal to rho does not advance).

    `sample_around_stage` draws each start point from the current stage or, with
    probability `neighbour_prob`, one of its neighbouring stages (uniformly among those
    that exist), so a problem also sees slightly easier and harder subtasks; only results
    from the current stage count toward advancing."""

    enabled: bool = True
    rho: float = field(default=0.5, metadata=rng(0, 1))
    window: int = field(default=8, metadata=rng(1))
    sample_around_stage: bool = False
    neighbour_prob: float = field(default=0.5, metadata=rng(0, 1))
