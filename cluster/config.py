"""The whole job's configuration: every component's section plus run-level settings.

`execrl train --config configs/tiny.yaml learner.lr=1e-5` loads through here.  The
dataclass defaults ARE the bundled CPU default (configs/tiny.yaml spells them out), so
`execrl train` with no arguments and the shipped YAML agree by construction (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from actors.config import RolloutConfig
from cluster.rewards import RewardConfig
from core.settings import ConfigError, ConfigSection, load_yaml, rng
from curriculum.config import CurriculumConfig
from executors.config import ExecutorConfig
from learner.config import LearnerConfig
from models.config import ModelConfig


@dataclass
class DataConfig(ConfigSection):
    """Problem sources: a file path in any supported format, `humaneval`, or
    `bundled:<split>` for the procedurally generated set."""

    sft: str = "bundled:sft"
    rl: str = "bundled:rl"
    heldout: str = "bundled:heldout"
    transfer: str = "bundled:transfer"
    format: Literal["apps", "apps_plus", "humaneval", "mbpp", "execrl"] | None = None
    seed: int = 0


@dataclass
class WandbConfig(ConfigSection):
    """`offline` needs no account; `online` needs WANDB_API_KEY."""

    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "execrl"
    entity: str | None = None
    run_name: str | None = None


@dataclass
class ObserveConfig(ConfigSection):
    """What a run shows beyond scalar curves (README: Watching a run).

    table_every             the rollout table (rollouts.jsonl and a W&B table) at
                            iterations 0, N, 2N, ... and the last; 0: never
    table_rows              samples per table (reward-hacking examples first, then one
                            per problem)
    identical_min_problems  a program counts as `hacking/identical_across_problems`
                            when the batch holds it for this many problems that ask
                            for different things (cluster/hacking.py)
    """

    table_every: int = field(default=10, metadata=rng(0))
    table_rows: int = field(default=16, metadata=rng(1))
    identical_min_problems: int = field(default=3, metadata=rng(2))


@dataclass
class ClusterConfig(ConfigSection):
    """Where the job runs: `address=None` starts a local Ray instance.

    gpu_memory_gb  memory of one GPU in GiB (nvidia-smi's MiB / 1024: an "80 GB" A100 or
                   H100 is 80); the preflight refuses a job whose plan (`execrl plan`)
                   does not fit it.  None: read from this machine's GPU when it has one,
                   otherwise not checked
    gpus_per_node  the nodes' shape, for the plan's per-node figures and to check that
                   the learner's GPUs fit on one node
    """

    address: str | None = None
    gpu_memory_gb: float | None = field(default=None, metadata=rng(0, exclusive_min=True))
    gpus_per_node: int | None = field(default=None, metadata=rng(1))


@dataclass
class TrainConfig(ConfigSection):
    seed: int = 0
    iterations: int = field(default=40, metadata=rng(0))
    problems_per_iteration: int = field(default=16, metadata=rng(1))
    checkpoint_every: int = field(default=10, metadata=rng(0))
    eval_samples: int = field(default=4, metadata=rng(1))
    eval_problems: int = field(default=0, metadata=rng(0))  # 0: all held-out and 128 RL-pool problems; N: N of each
    # A held-out evaluation every N iterations during RL (0: only before and after), logged
    # to metrics.jsonl and W&B as eval/heldout_pass@1 at that step: the learning curve.
    eval_every: int = field(default=0, metadata=rng(0))
    # Evaluate the SFT model before RL (false: skip it, result.json's "before" figures are
    # null; an ablation takes them from its SFT-only run of the same seed instead).
    eval_before_rl: bool = True
    output_dir: str = "outputs/run"
    # Generate the next batch while the learner trains on this one (staleness 1, logged
    # as policy_lag); off by default: on 2 CPU cores the phases compete for the cores.
    one_step_off_policy: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    observe: ObserveConfig = field(default_factory=ObserveConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        """One dtype for the whole job: model.dtype sets the rollout backend's dtype
        (vLLM's or transformers') and the learner's DeepSpeed precision together, so
        the weights that sample are the weights that are scored."""
        self.rollout.dtype = self.model.dtype
        self.learner.precision = PRECISION_OF_DTYPE[self.model.dtype]
        if self.reward.name != "stepcoder" and self.reward.needs_static_checks:
            self.executor.static_checks = True  # the static term reads the executors' findings


PRECISION_OF_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """The CPU default when `path` is None, else the YAML file; then the overrides."""
    cfg = load_yaml(TrainConfig, path, list(overrides))
    check_consistency(cfg)
    return cfg


def check_consistency(cfg: TrainConfig) -> None:
    """Settings that are each valid but do not fit together."""
    cfg.reward.term_weights()  # reward.weights only with reward.name: custom, and then some term
    if cfg.reward.needs_discriminator and cfg.one_step_off_policy:
        raise ConfigError("the discriminator reward term needs one_step_off_policy: false: the prefetched batch "
                          "would be scored while the discriminator trains, so rewards would depend on timing")
    if cfg.learner.old_logprobs == "rollout" and cfg.rollout.top_p < 1.0:
        raise ConfigError(f"learner.old_logprobs: rollout needs rollout.top_p: 1.0 (it is {cfg.rollout.top_p}): "
                          "the rollout's log-probs are renormalised over the top-p nucleus, the learner's over "
                          "the whole vocabulary, so their ratio would not start at 1; use old_logprobs: recompute")


def load_method_config(cls: type, default: Path, method: str, path: str | Path | None = None,
                       overrides: list[str] = ()) -> tuple:
    """(a method's config, the base execrl config it runs on) for an offline pipeline
    (CYCLE, CodeDPO): `base.`-prefixed overrides go to the base (the file the method's
    `base` key names, a path or a config in configs/), the others to the method's keys.
    The method's seed sets the base's seed and data.seed; bad keys fail naming the key."""
    ours = [o for o in overrides if not o.startswith("base.")]
    theirs = [o[len("base."):] for o in overrides if o.startswith("base.")]
    cfg = load_yaml(cls, path if path is not None else default, ours)
    base_path = Path(cfg.base)
    if not base_path.is_file():
        base_path = CONFIG_DIR / cfg.base
    if not base_path.is_file():
        raise ConfigError(f"base: {cfg.base!r} is neither a file nor a config in {CONFIG_DIR}")
    for key in ("seed", "data.seed"):
        if any(t.startswith(key + "=") for t in theirs):
            raise ConfigError(f"override base.{key}: set {method}'s seed instead (it sets the base's seed and "
                              f"data.seed)")
    return cfg, load_config(base_path, [*theirs, f"seed={cfg.seed}", f"data.seed={cfg.seed}"])
