"""CYCLE's settings (configs/cycle.yaml) and how they sit on top of an `execrl train` config.

A CYCLE run is a recipe over an ordinary execrl configuration (`base`, e.g. tiny-hard.yaml:
model, problem sets, rollout sampling, executors, the learner's engine): the base says
which model and problems, this file says what CYCLE does with them.  Command-line
overrides name CYCLE's keys directly (`data.pgm_fraction=0`) and the base's keys under
`base.` (`base.learner.micro_batch_size=8`).  `seed` sets the base's `seed` and
`data.seed` too, so one number fixes the SFT model, the bundled problems, sampling,
PGM's masks and the training order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cluster.config import CONFIG_DIR, TrainConfig, load_method_config
from core.settings import ConfigSection, rng


@dataclass
class CollectConfig(ConfigSection):
    """Step 2: sample the Phase I model on training problems and keep the faulty programs.

    problems             problem set to sample ("" = the base's data.rl, training problems
                         Phase I did not see: on its own SFT problems the tiny SFT model
                         passed 64 of 64 samples, so they yield no faulty programs);
                         never a held-out set (checked)
    max_problems         N of them (0: all), drawn by a generator seeded by the set's name
                         (bundled sets are ordered by family: the first N would cover few);
                         they are also added to the generation examples (data.py), so the
                         `sft-more` control sees the same problems
    samples_per_problem  programs sampled per problem (base rollout sampling: temperature,
                         top-p, max_new_tokens)
    """

    problems: str = ""
    max_problems: int = field(default=256, metadata=rng(0))
    samples_per_problem: int = field(default=4, metadata=rng(1))


@dataclass
class TemplateConfig(ConfigSection):
    """The refinement prompt's budget (methods/cycle/template.py documents the layout).

    program_tokens   the faulty program is cut to its first N tokens (a marker line says
                     how many were cut)
    feedback_tokens  the feedback block is cut to its first N tokens, likewise
    field_chars      each feedback field (input, expected, got, error) to N characters
    field_lines      ... and to its first N lines
    """

    program_tokens: int = field(default=192, metadata=rng(8))
    feedback_tokens: int = field(default=96, metadata=rng(8))
    field_chars: int = field(default=160, metadata=rng(8))
    field_lines: int = field(default=4, metadata=rng(1))


@dataclass
class DataConfig(ConfigSection):
    """Step 3: refinement examples and the mix trained on.

    target                 "reference": the problem's reference solution; "own": one of
                           the model's own passing samples for the problem (the reference
                           where it has none).  Default reference (README: why)
    max_faulty_per_problem distinct faulty programs kept per problem (seeded choice)
    pgm_fraction           past-generation masking: share of the faulty program's tokens
                           in the input replaced by the mask token (0 = no PGM)
    mask_token             the mask token's text; "" = the tokenizer's mask token, else its
                           unk token, else its pad token
    refine_share           share of every training batch made of refinement examples; the
                           rest are plain generation examples (data.py).  1 = no mixing;
                           0 = generation only (the control: same problems, no refinement)
    """

    target: Literal["reference", "own"] = "reference"
    max_faulty_per_problem: int = field(default=4, metadata=rng(1))
    pgm_fraction: float = field(default=0.05, metadata=rng(0, 0.9))
    mask_token: str = ""
    refine_share: float = field(default=0.5, metadata=rng(0, 1))
    template: TemplateConfig = field(default_factory=TemplateConfig)


@dataclass
class TrainStageConfig(ConfigSection):
    """Step 4: SFT on the mix, starting from the Phase I model (0 steps: the Phase I
    model itself, the "SFT without CYCLE" arm).  The engine settings (ZeRO stage,
    precision, micro-batch, grad clip) are the base's learner's."""

    steps: int = field(default=300, metadata=rng(0))
    lr: float = field(default=1e-3, metadata=rng(0, exclusive_min=True))
    batch_size: int = field(default=32, metadata=rng(1))
    warmup_steps: int = field(default=20, metadata=rng(0))


@dataclass
class EvalConfig(ConfigSection):
    """Step 5 and the evaluation: iterative self-refinement on held-out sets.

    sets          problem sets (bundled:<split>, humaneval, a file path); the base's
                  data.* names are refused as collection sets, never these
    max_problems  N problems of each set (0: all), drawn with a seed of the set's name
                  only: the same subset for every seed and variant
    samples       refinement chains per problem (each starts from its own one-shot sample)
    rounds        R: refinement rounds after the one-shot round 0
    """

    sets: list[str] = field(default_factory=lambda: ["bundled:hard-heldout"])
    max_problems: int = field(default=0, metadata=rng(0))
    samples: int = field(default=2, metadata=rng(1))
    rounds: int = field(default=3, metadata=rng(0))


@dataclass
class CycleConfig(ConfigSection):
    """configs/cycle.yaml.  `base`: the execrl config (a path, or a name in configs/);
    `sft_model`: a Phase I model to start from (None: execrl's SFT of the base model on
    the base's data.sft, cached under model.cache_dir as `execrl train` does)."""

    base: str = "tiny-hard.yaml"
    seed: int = 0
    sft_model: str | None = None
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainStageConfig = field(default_factory=TrainStageConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


CYCLE_CONFIG = CONFIG_DIR / "cycle.yaml"


def load_cycle_config(path: str | Path | None = None, overrides: list[str] = ()) -> tuple[CycleConfig, TrainConfig]:
    """(CYCLE's config, the base execrl config it runs on): cluster.config.load_method_config."""
    return load_method_config(CycleConfig, CYCLE_CONFIG, "CYCLE", path, overrides)
