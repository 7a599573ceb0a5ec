"""Rewards as weighted terms: StepCoder's test reward, RLCF's grounding (static checks and
a discriminator), and execution terms for users who have tests.

A term is a small function of a judged program (its ExecutionResult and, for the
discriminator, a model's score) returning a number; `reward.name` picks a preset of
weights or, with `custom`, `reward.weights`.  Every term with a weight is logged per
iteration (`reward_terms/<term>`: the mean over the judged samples), so a run shows what
its reward was made of.

Terms:
  tests          StepCoder's reward from the verdict: +1 all tests pass, -0.3 a failing
                 test, -0.6 a runtime error, -1 a compile error (executor.reward)
  passes         1 when every test passes, else 0
  executes       1 when every test's input ran without raising or hitting a limit (a
                 wrong answer executed), else 0
  compiles       1 when the program compiles, else 0
  static         the static-check score in [0, 1]: 1 less each finding's class weight
                 (reward.static_weights, executors/static_checks.py)
  discriminator  the discriminator's P(reference-like) in [0, 1] (actors/discriminator.py)

Presets: `stepcoder` = tests; `rlcf` = static + discriminator (RLCF's grounding function
needs no tests: the compiler's checks and a model comparing with the reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from actors.discriminator import DiscriminatorConfig
from core.settings import ConfigError, ConfigSection, rng
from core.verdict import COMPILE_ERROR, PASS, WRONG_ANSWER, ExecutionResult
from executors.static_checks import StaticWeights, static_score

TERMS = ("tests", "passes", "executes", "compiles", "static", "discriminator")


@dataclass
class RewardWeights(ConfigSection):
    """Weight of each term (read only with reward.name: custom)."""

    tests: float = field(default=0.0, metadata=rng(0))
    passes: float = field(default=0.0, metadata=rng(0))
    executes: float = field(default=0.0, metadata=rng(0))
    compiles: float = field(default=0.0, metadata=rng(0))
    static: float = field(default=0.0, metadata=rng(0))
    discriminator: float = field(default=0.0, metadata=rng(0))


PRESETS = {"stepcoder": {"tests": 1.0}, "rlcf": {"static": 1.0, "discriminator": 1.0}}


@dataclass
class RewardConfig(ConfigSection):
    name: Literal["stepcoder", "rlcf", "custom"] = "stepcoder"
    weights: RewardWeights = field(default_factory=RewardWeights)
    static_weights: StaticWeights = field(default_factory=StaticWeights)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def term_weights(self) -> dict[str, float]:
        """The terms with a non-zero weight, by preset or (custom) by reward.weights."""
        if self.name != "custom":
            if self.weights != RewardWeights():
                raise ConfigError(f"reward.weights is read only with reward.name: custom (reward.name is "
                                  f"{self.name!r}, whose weights are {PRESETS[self.name]})")
            return dict(PRESETS[self.name])
        chosen = {f.name: getattr(self.weights, f.name) for f in fields(RewardWeights)}
        chosen = {k: v for k, v in chosen.items() if v}
        if not chosen:
            raise ConfigError("reward.name: custom needs at least one non-zero reward.weights.<term> "
                              f"(terms: {', '.join(TERMS)})")
        return chosen

    @property
    def needs_static_checks(self) -> bool:
        return "static" in self.term_weights()

    @property
    def needs_discriminator(self) -> bool:
        return "discriminator" in self.term_weights()


def term_values(result: ExecutionResult, terms: dict[str, float], static_weights: StaticWeights,
                discriminator: float | None = None) -> dict[str, float]:
    """Each weighted term's value for one judged program (not a sandbox error)."""
    values = {}
    for term in terms:
        if term == "tests":
            values[term] = float(result.reward)
        elif term == "passes":
            values[term] = float(result.verdict == PASS)
        elif term == "executes":
            values[term] = float(result.verdict in (PASS, WRONG_ANSWER))
        elif term == "compiles":
            values[term] = float(result.verdict != COMPILE_ERROR)
        elif term == "static":
            if result.findings is None:
                raise RuntimeError("the static term needs executor.static_checks: this result was not checked")
            values[term] = static_score(result.findings, static_weights)
        elif term == "discriminator":
            if discriminator is None:
                raise RuntimeError("the discriminator term needs the discriminator's score for every sample")
            values[term] = float(discriminator)
        else:
            raise ValueError(f"unknown reward term {term!r} (terms: {', '.join(TERMS)})")
    return values


def combine(values: dict[str, float], terms: dict[str, float]) -> float:
    """The reward: the weighted sum of the terms."""
    return sum(terms[t] * values[t] for t in terms)
