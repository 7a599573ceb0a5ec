"""CodeDPO's settings (configs/codedpo.yaml) and how they sit on an `execrl train` config.

As with CYCLE (methods/cycle/config.py): `base` is the execrl config (model, problem
sets, rollout sampling, executors, the learner's engine); this file says what CodeDPO
does with them.  Overrides name CodeDPO's keys directly (`verify.damping=0.5`) and the
base's keys under `base.`.  `seed` sets the base's `seed` and `data.seed` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cluster.config import CONFIG_DIR, TrainConfig, load_method_config
from core.settings import ConfigSection, rng

from .tests_gen import DEFAULT_FUNCTION_PROMPT, DEFAULT_STDIO_PROMPT


@dataclass
class TasksConfig(ConfigSection):
    """Stage 1: the problems (existing sets: the paper generates tasks from code snippets).

    problems      a problem set (bundled:<split>, mbpp, humaneval, an APPS or execrl
                  JSON lines file); "" = the base's data.rl; never a held-out set (checked)
    max_problems  first N (0: all)
    """

    problems: str = ""
    max_problems: int = field(default=64, metadata=rng(0))


@dataclass
class SampleConfig(ConfigSection):
    """Stage 2: k programs and m tests per problem from the model being trained.

    programs         k: programs sampled per problem (the base's rollout sampling)
    tests            m: tests kept per problem (the first m distinct parseable ones)
    test_samples     completions of the test-writing prompt per problem (each may hold
                     several assert lines)
    test_max_new_tokens  length of each test-writing completion
    function_prompt  the test-writing prompt of function problems ({statement} as
                     comment lines, {starter_code}, {entry_point}); it must end with the
                     start of the first test, which the model continues
    stdio_prompt     the same for stdin/stdout problems (tests: assert run("in") == "out")
    """

    programs: int = field(default=8, metadata=rng(1))
    tests: int = field(default=8, metadata=rng(1))
    test_samples: int = field(default=4, metadata=rng(1))
    test_max_new_tokens: int = field(default=96, metadata=rng(8))
    function_prompt: str = DEFAULT_FUNCTION_PROMPT
    stdio_prompt: str = DEFAULT_STDIO_PROMPT


@dataclass
class TestSFTConfig(ConfigSection):
    """Before sampling: teach the start model to write tests (teach.py; 0 steps: off, the
    paper's setting, whose models write tests already).  Rows from the base's data.sft
    problems only: their real tests in the test prompt's notation, mixed with their
    solutions.

    steps              optimizer steps (0: the start model samples as it is)
    lr                 learning rate
    batch_size         rows per step
    tests_per_problem  real tests shown per test-writing row
    solution_share     share of each batch that is solution rows (keeps programs coming)
    """

    steps: int = field(default=0, metadata=rng(0))
    lr: float = field(default=1e-3, metadata=rng(0, exclusive_min=True))
    batch_size: int = field(default=16, metadata=rng(1))
    tests_per_problem: int = field(default=3, metadata=rng(1))
    solution_share: float = field(default=0.5, metadata=rng(0, 1))


@dataclass
class VerifyConfig(ConfigSection):
    """Stage 4: ranking the programs (verify.py).

    ranking   selfverify (the paper) | pass-count | trust-all | random (the ablations)
    damping   d in S <- (1 - d) S + d sum(neighbours' S), 0 < d < 1
    tol       stop when no normalised score moves by more than this
    max_iter  iteration cap
    """

    ranking: Literal["selfverify", "pass-count", "trust-all", "random"] = "selfverify"
    damping: float = field(default=0.85, metadata=rng(0, 1, exclusive_min=True))
    tol: float = field(default=1e-6, metadata=rng(0, exclusive_min=True))
    max_iter: int = field(default=1000, metadata=rng(1))


@dataclass
class TimingConfig(ConfigSection):
    """Stage 5: programs passing the trusted tests, timed on one idle slot (timing.py).

    repeats   runs per program; the median summed CPU time is kept (0: no timing, so
              no efficiency pairs)
    """

    repeats: int = field(default=5, metadata=rng(0))


@dataclass
class PairsConfig(ConfigSection):
    """Stage 6: preference pairs (pairs.py documents the rule)."""

    chosen_min: float = field(default=0.9, metadata=rng(0, 1))
    rejected_max: float = field(default=0.5, metadata=rng(0, 1))
    correctness_per_problem: int = field(default=4, metadata=rng(0))
    min_speedup: float = field(default=1.1, metadata=rng(1))
    efficiency_per_problem: int = field(default=2, metadata=rng(0))
    efficiency_ratio: float = field(default=0.25, metadata=rng(0))


@dataclass
class TrainStageConfig(ConfigSection):
    """Stage 7: training on the learner from the model that sampled the data.

    method      dpo (the paper) | sft (control: SFT on each problem's top-ranked program)
    steps       optimizer steps (0: no training, the starting model is evaluated)
    lr          learning rate
    beta        DPO's beta (the implicit reward's scale; the reference is the start model)
    batch_size  pairs (DPO) or rows (SFT) per optimizer step
    """

    method: Literal["dpo", "sft"] = "dpo"
    steps: int = field(default=60, metadata=rng(0))
    lr: float = field(default=2e-4, metadata=rng(0, exclusive_min=True))
    beta: float = field(default=0.1, metadata=rng(0, exclusive_min=True))
    batch_size: int = field(default=8, metadata=rng(1))


@dataclass
class EvalConfig(ConfigSection):
    """The evaluation: pass@1 on held-out sets and, on problems solved before and after
    training, the speed-up of the trained model's programs (eval_speed.py).

    sets           problem sets (never the tasks' set: checked)
    max_problems   N per set, the same seeded subset for every seed and variant (0: all)
    samples        samples per problem for pass@1
    timing_repeats runs per timed program (median)
    """

    sets: list[str] = field(default_factory=lambda: ["bundled:hard-heldout"])
    max_problems: int = field(default=0, metadata=rng(0))
    samples: int = field(default=2, metadata=rng(1))
    timing_repeats: int = field(default=3, metadata=rng(1))


@dataclass
class CodeDPOConfig(ConfigSection):
    """configs/codedpo.yaml.  `sft_model`: the model to start from (None: execrl's SFT of
    the base model on the base's data.sft, cached under model.cache_dir)."""

    base: str = "tiny-hard.yaml"
    seed: int = 0
    sft_model: str | None = None
    tasks: TasksConfig = field(default_factory=TasksConfig)
    test_sft: TestSFTConfig = field(default_factory=TestSFTConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    train: TrainStageConfig = field(default_factory=TrainStageConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


CODEDPO_CONFIG = CONFIG_DIR / "codedpo.yaml"


def load_codedpo_config(path: str | Path | None = None, overrides: list[str] = ()) -> tuple[CodeDPOConfig, TrainConfig]:
    """(CodeDPO's config, the base execrl config it runs on): cluster.config.load_method_config."""
    return load_method_config(CodeDPOConfig, CODEDPO_CONFIG, "CodeDPO", path, overrides)
