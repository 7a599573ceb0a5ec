"""Knobs of the sandboxed executor pool and of StepCoder's reward scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.settings import ConfigSection, rng


@dataclass
class RewardScale(ConfigSection):
    """StepCoder's reward: +1 when every test passes, -0.3 for a failing test, -0.6 for a
    runtime error, -1 for a program that does not compile."""

    all_pass: float = 1.0
    failed_test: float = -0.3
    runtime_error: float = -0.6
    compile_error: float = -1.0


@dataclass
class ExecutorConfig(ConfigSection):
    """Executors scale independently of GPUs: each actor asks for one unit of the custom
    Ray resource `resource`, which CPU-only worker nodes advertise.

    timeout_s            CPU time (user + system) each test may use: a CPU-time limit keeps
                         verdicts independent of how busy the machine is
    wall_timeout_s       wall-clock backstop per test, for programs that sleep or block;
                         0 means max(10 s, 5 x the test's CPU limit); a timeout verdict too
    allow_missing_layers sandbox layers the plan wanted that a fork server may run without
                         (e.g. [seccomp] where the servers' interpreter lacks pyseccomp);
                         any other planned layer a server did not apply stops the Judge
    python               interpreter of the fork servers ("" = the one running execrl), e.g.
                         a Python under /usr that the sandbox's unprivileged uid can read
    preload              extra modules the fork servers import before any program runs
    static_checks        also run the static checks a compiler would (pylint, outside the
                         sandbox: nothing is executed) and return their findings with each
                         result; RLCF's reward reads them (on when a reward term needs them)
    """

    num_actors: int = field(default=1, metadata=rng(1))
    slots_per_actor: int = field(default=2, metadata=rng(1))
    resource: str = "executor"
    timeout_s: float = field(default=2.0, metadata=rng(0, exclusive_min=True))
    wall_timeout_s: float = field(default=0.0, metadata=rng(0))
    time_scale_to_reference: float = field(default=0.0, metadata=rng(0))
    memory_mb: int = field(default=1024, metadata=rng(16))
    max_output_bytes: int = field(default=1 << 20, metadata=rng(1024))
    max_processes: int = field(default=32, metadata=rng(1))
    float_tolerance: float = field(default=1e-6, metadata=rng(0))
    base_uid: int = field(default=61000, metadata=rng(1000))
    coverage: bool = True
    sandbox: Literal["auto", "bwrap", "seccomp", "none"] = "auto"
    allow_unsandboxed: bool = False
    allow_missing_layers: list[Literal["bwrap", "setuid", "rlimits", "landlock", "seccomp"]] = field(
        default_factory=list)
    python: str = ""
    preload: list[str] = field(default_factory=list)
    static_checks: bool = False
    reward: RewardScale = field(default_factory=RewardScale)

    def wall_limit(self, cpu_limit_s: float) -> float:
        """The wall-clock backstop for a test whose CPU limit is `cpu_limit_s`."""
        return self.wall_timeout_s or max(10.0, 5.0 * cpu_limit_s)
