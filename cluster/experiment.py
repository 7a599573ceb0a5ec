"""Running an ablation: named variants (lists of `execrl train` overrides) over seeds.

Every run is its own `execrl train` subprocess (`python -m cluster.cli train`, log in
`<run_dir>/train.log`), so one crashing run loses nothing of the others, and the plan is
resumable: a run whose result.json exists and whose saved config.yaml has the settings
this plan asks for is kept; one with checkpoints is resumed (`--resume`); anything else
is started afresh (an earlier attempt is moved aside to `<out>/stale/`, never deleted).
A run another process is producing right now (its command line names the run directory)
is waited for, not touched.

The SFT model is cached per seed under `<out>/cache` (cluster/warmstart.py keys it only
on what determines SFT), so every variant of a seed starts RL from the same model.  Two
runs of one seed must not train that model at once (they would race on the cache), so
until one run of a seed has finished, the runs of that seed go one at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from cluster.config import CONFIG_DIR, TrainConfig, load_config
from core.settings import ConfigError, to_dict

BASE_CONFIG = CONFIG_DIR / "tiny-hard.yaml"
# The RL variants' budget: 24 iterations of 16 problems x 8 samples (3,072 programs per
# run), held-out evaluated at iteration 12 and at the end.  Sized so that the default
# 7 variants x 3 seeds run in about two hours on 2 cores, two runs at a time (measured:
# 40 iterations took about 18 minutes per pair of runs while other work shared the cores).
# The SFT figures come from the `sft` variant of the same seed (same model, same
# evaluation seed), so RL runs skip their own "before" evaluation.
RL_DEFAULTS = ("iterations=24", "eval_every=12", "eval_before_rl=false")
# --quick: the mechanics in a few minutes on 2 cores (not a measurement).
QUICK_OVERRIDES = ("learner.sft.steps=30", "learner.sft.batch_size=8", "iterations=2", "problems_per_iteration=4",
                   "rollout.samples_per_prompt=4", "learner.minibatch_size=16", "learner.micro_batch_size=8",
                   "eval_problems=8", "eval_samples=1", "rollout.max_new_tokens=48", "wandb.mode=disabled",
                   "checkpoint_every=0", "eval_every=1")
# Set per run by the experiment (not by the user): which seed and where.
RUN_KEYS = ("seed", "data.seed", "model.cache_dir", "output_dir")
# Where a run writes, not what it computes: not compared when deciding to keep a run.
PATH_KEYS = ("model.cache_dir", "output_dir")


@dataclass(frozen=True)
class Variant:
    """A named arm of the ablation: `execrl train` overrides on the base config."""

    name: str
    overrides: tuple[str, ...]
    rl: bool = True  # False: SFT only (its evaluation is the SFT model's)
    about: str = ""


GRPO = ("learner.advantage_estimator=grpo", "learner.kl_mode=loss", "learner.kl_estimator=k3")
NO_CCCS, NO_FGO = "curriculum.enabled=false", "learner.fgo=false"
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("sft", ("iterations=0",), rl=False, about="the SFT warm start only (no RL)"),
    Variant("ppo", (NO_CCCS, NO_FGO), about="vanilla PPO: whole programs, every token trained"),
    Variant("ppo-no-cccs", (NO_CCCS,), about="PPO + FGO"),
    Variant("ppo-no-fgo", (NO_FGO,), about="PPO + CCCS"),
    Variant("stepcoder", (), about="PPO + CCCS + FGO (the defaults)"),
    Variant("grpo", (*GRPO, NO_CCCS, NO_FGO), about="GRPO (no critic, KL in the loss, k3)"),
    Variant("grpo-cccs-fgo", GRPO, about="GRPO + CCCS + FGO"),
)}


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `0-2` (or a mix); distinct non-negative integers, in the order given."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, dash, hi = part.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if dash else [int(part)]
        except ValueError:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed (use e.g. 0,1,2 or 0-2)") from None
        if not values or min(values) < 0:
            raise ValueError(f"--seeds {text!r}: {part!r} gives no non-negative seed")
        seeds += [s for s in values if s not in seeds]
    return seeds


def select_variants(text: str | None) -> list[Variant]:
    """The named variants (comma-separated; None: all), in the order given."""
    if text is None:
        return list(VARIANTS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"unknown variant {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in dict.fromkeys(names)]


def check_overrides(items: list[str]) -> list[str]:
    """`key=value` overrides for every run; the per-run keys belong to the experiment."""
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like section.key=value")
        if key.strip() in RUN_KEYS:
            raise ValueError(f"override {item!r}: {key.strip()} is set per run by the experiment "
                             f"(use --seeds for seed and data.seed, --out for the directories)")
    return list(items)


@dataclass(frozen=True)
class RunSpec:
    """One (variant, seed) run: its directory and everything passed to `execrl train`."""

    variant: Variant
    seed: int
    run_dir: Path
    overrides: tuple[str, ...]
    base_config: Path = BASE_CONFIG

    @property
    def name(self) -> str:
        return f"{self.variant.name} seed{self.seed}"

    def command(self, resume: bool = False) -> list[str]:
        cmd = [sys.executable, "-m", "cluster.cli", "train", "--config", str(self.base_config), *self.overrides]
        return cmd + (["--resume", str(self.run_dir)] if resume else [])


def run_dir_of(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / variant / f"seed{seed}"


def plan_runs(out: Path, variants: list[Variant], seeds: list[int], extra: list[str] = (),
              base_config: Path = BASE_CONFIG) -> list[RunSpec]:
    """Each variant at each seed, seed by seed (every variant gets its first seed before
    any gets a second: a run cut short still compares every variant).  Override order,
    later winning: the RL defaults, the user's extra overrides, the variant's own (what
    the ablation is about), the run's seed and directories."""
    specs = []
    for seed in seeds:
        for variant in variants:
            run_dir = run_dir_of(out, variant.name, seed)
            overrides = (*(RL_DEFAULTS if variant.rl else ()), *extra, *variant.overrides, f"seed={seed}",
                         f"data.seed={seed}", f"model.cache_dir={out / 'cache'}", f"output_dir={run_dir}")
            specs.append(RunSpec(variant, seed, run_dir, overrides, base_config))
    return specs


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """{"learner": {"fgo": False}} -> {"learner.fgo": False}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def expected_settings(spec: RunSpec) -> dict[str, Any]:
    """What a kept run's config.yaml must say: the whole resolved configuration (base file,
    then overrides; values as the config loader types them), except where it writes.
    Raises ConfigError for a setting the config does not accept (naming the key)."""
    resolved = flatten(to_dict(load_config(spec.base_config, list(spec.overrides))))
    return {k: v for k, v in resolved.items() if k not in PATH_KEYS}


def config_mismatches(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """The expected settings the saved (flattened) config does not have, one line each.
    A key the saved config lacks is fine at its default: it was added to the code after
    that run, which behaved as the default does; keys only the saved config has (since
    removed from the code) are not compared."""
    defaults = _defaults()
    out = []
    for key, value in expected.items():
        if key not in saved:
            if key not in defaults or defaults[key] != value:
                out.append(f"{key}: not in the saved config (wanted {value!r})")
        elif saved[key] != value:
            out.append(f"{key}: saved {saved[key]!r}, wanted {value!r}")
    return out


def _defaults() -> dict[str, Any]:
    return flatten(to_dict(TrainConfig()))


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "config.yaml"
    return flatten(yaml.safe_load(path.read_text()) or {}) if path.is_file() else None


@dataclass(frozen=True)
class RunStatus:
    """What to do with a planned run: `done` (keep), `resume`, `start` (afresh; an earlier
    attempt is moved aside), `busy` (another process is writing it: wait), `invalid`
    (its settings are refused by the config)."""

    action: str
    reason: str
    pid: int | None = None


def run_status(spec: RunSpec, expected: dict[str, Any] | ConfigError,
               busy: Callable[[Path], int | None]) -> RunStatus:
    """Decide from the run directory alone (and who is writing it); `expected` is the
    run's expected settings, or the config's refusal of them."""
    if isinstance(expected, ConfigError):
        return RunStatus("invalid", f"the config refuses its settings: {expected}")
    pid = busy(spec.run_dir)
    if pid is not None:
        return RunStatus("busy", f"being written by process {pid}", pid)
    if not spec.run_dir.exists():
        return RunStatus("start", "new")
    saved = saved_config(spec.run_dir)
    if saved is None:
        return RunStatus("start", "an earlier attempt without config.yaml")
    mismatches = config_mismatches(saved, expected)
    if mismatches:
        return RunStatus("start", "its config differs: " + "; ".join(mismatches[:3]))
    if (spec.run_dir / "result.json").is_file():
        return RunStatus("done", "finished with these settings")
    if (spec.run_dir / "checkpoints" / "latest").is_file():
        return RunStatus("resume", "unfinished, with checkpoints")
    return RunStatus("start", "unfinished, without checkpoints")


def writer_of(run_dir: Path) -> int | None:
    """The pid of another process whose command line writes `run_dir` (`output_dir=DIR` or
    `--resume DIR`, relative to that process's working directory), or None.  Linux /proc;
    elsewhere nothing is detected."""
    target = run_dir.resolve()
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue
        for i, arg in enumerate(args):
            value = arg[len("output_dir="):] if arg.startswith("output_dir=") else \
                (args[i + 1] if arg == "--resume" and i + 1 < len(args) else None)
            if value and (cwd / value).resolve() == target:
                return int(proc.name)
    return None


def move_aside(run_dir: Path, out: Path) -> Path | None:
    """An earlier attempt of a run that starts afresh goes to <out>/stale/ (kept, not deleted)."""
    if not run_dir.exists():
        return None
    target = out / "stale" / run_dir.parent.name / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while target.exists():
        target, n = target.with_name(f"{target.name}.{n}"), n + 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    return target


@dataclass
class Outcome:
    """How a planned run ended in this invocation."""

    spec: RunSpec
    action: str  # done (kept), ran, resumed, failed, invalid
    detail: str = ""
    seconds: float = 0.0


@dataclass
class _Running:
    spec: RunSpec
    proc: subprocess.Popen
    started: float
    resumed: bool
    log: Any


@dataclass
class Scheduler:
    """Runs the planned runs, `parallel` at a time, as subprocesses; see the module
    docstring for the per-seed rule and for runs written by other processes."""

    out: Path
    parallel: int = 1
    log: Callable[[str], None] = print
    busy: Callable[[Path], int | None] = writer_of
    poll_s: float = 1.0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def run(self, specs: list[RunSpec], expected: dict[str, dict | ConfigError]) -> list[Outcome]:
        warm: set[int] = set()
        waiting: list[RunSpec] = list(specs)  # to decide (again, for a busy one once it exits)
        pending: list[tuple[RunSpec, bool]] = []  # (spec, resume), decided, not started
        external: dict[int, int] = {}  # seed -> runs of it another process is writing
        running: list[_Running] = []
        try:
            while waiting or pending or running:
                waiting, external = self._decide(waiting, expected, pending, warm)
                self._start_ready(pending, running, warm, external, waiting)
                if not self._reap(running, warm) and (waiting or pending or running):
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            self._let_runs_checkpoint(running)
            raise
        return [self.outcomes[s.name] for s in specs]

    def _let_runs_checkpoint(self, running: list[_Running]) -> None:
        """Ctrl-C reached the runs too (one process group): each writes a checkpoint and
        exits, and the next invocation resumes it.  Wait for that; a second Ctrl-C stops
        waiting."""
        if not running:
            return
        self.log(f"interrupted: waiting for {len(running)} run(s) to write their checkpoints (Ctrl-C to stop waiting)")
        for r in running:
            r.proc.wait()
            r.log.close()
            self.log(f"[{r.spec.name}] stopped (exit status {r.proc.returncode}); the next invocation resumes it")

    def _decide(self, waiting, expected, pending, warm) -> tuple[list[RunSpec], dict[int, int]]:
        still: list[RunSpec] = []
        external: dict[int, int] = {}
        for spec in waiting:
            status = run_status(spec, expected[spec.name], self.busy)
            if status.action == "busy":
                if spec.name not in self.outcomes:
                    self.log(f"[{spec.name}] {status.reason}: waiting for it")
                    self.outcomes[spec.name] = Outcome(spec, "waiting", status.reason)
                still.append(spec)
                external[spec.seed] = external.get(spec.seed, 0) + 1
            elif status.action in ("done", "invalid"):
                self.outcomes[spec.name] = Outcome(spec, status.action, status.reason)
                self.log(f"[{spec.name}] {'kept' if status.action == 'done' else 'not run'}: {status.reason}")
                if status.action == "done":
                    warm.add(spec.seed)
            else:
                if status.action == "start" and spec.run_dir.exists():
                    self.log(f"[{spec.name}] starts afresh ({status.reason}); the earlier attempt moved to "
                             f"{move_aside(spec.run_dir, self.out)}")
                elif status.action == "resume":
                    warm.add(spec.seed)  # its SFT model exists: it has checkpoints
                pending.append((spec, status.action == "resume"))
        return still, external

    def _start_ready(self, pending, running, warm, external, waiting) -> None:
        """Launch decided runs while slots are free.  A run decided long ago (it waited
        for a slot) is checked once more just before it starts: another process may
        have begun writing it meanwhile (a second invocation), and two writers of one
        run directory corrupt it; such a run goes back to be decided again (waited for)."""
        for item in list(pending):
            if len(running) >= self.parallel:
                return
            spec, resume = item
            busy_seed = external.get(spec.seed, 0) or any(r.spec.seed == spec.seed for r in running)
            if spec.seed not in warm and busy_seed:
                continue  # its seed's SFT model may be in the making
            pending.remove(item)
            if self.busy(spec.run_dir) is not None:
                waiting.append(spec)
                continue
            running.append(self._launch(spec, resume))

    def _launch(self, spec: RunSpec, resume: bool) -> _Running:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        log = (spec.run_dir / "train.log").open("a", encoding="utf-8")
        proc = subprocess.Popen(spec.command(resume), stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                                stdin=subprocess.DEVNULL)
        self.log(f"[{spec.name}] {'resumed' if resume else 'started'} (pid {proc.pid}; log {spec.run_dir / 'train.log'})")
        return _Running(spec, proc, time.perf_counter(), resume, log)

    def _env(self) -> dict[str, str]:
        """The cores shared out: each run's torch / BLAS threads = cores / parallel."""
        threads = str(max(1, (os.cpu_count() or 1) // self.parallel))
        return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}

    def _reap(self, running: list[_Running], warm: set[int]) -> bool:
        finished = [r for r in running if r.proc.poll() is not None]
        for r in finished:
            running.remove(r)
            r.log.close()
            seconds = time.perf_counter() - r.started
            warm.add(r.spec.seed)  # whatever happened, the next run of the seed may go alongside others
            ok = r.proc.returncode == 0 and (r.spec.run_dir / "result.json").is_file()
            if ok:
                action, detail = ("resumed" if r.resumed else "ran"), f"{seconds:.0f}s"
            else:
                action, detail = "failed", f"exit status {r.proc.returncode}: {last_line(r.spec.run_dir / 'train.log')}"
            self.outcomes[r.spec.name] = Outcome(r.spec, action, detail, seconds)
            self.log(f"[{r.spec.name}] {action} ({detail})")
        return bool(finished)


def last_line(path: Path) -> str:
    """The last non-empty line of a log (where a failed run says why)."""
    if not path.is_file():
        return "(no log)"
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(empty log)"


def expected_all(specs: list[RunSpec]) -> dict[str, dict | ConfigError]:
    """Each run's expected settings, or the config's refusal of them (that run is then
    reported as not run, naming the key, and the others still run)."""
    out: dict[str, dict | ConfigError] = {}
    for spec in specs:
        try:
            out[spec.name] = expected_settings(spec)
        except ConfigError as exc:
            out[spec.name] = exc
    return out


def run_grid(out: Path, seeds: list[int], variants: list[str], command: Callable[[int, str], list[str]],
             name: str, log: Callable[[str], None] = print) -> list[str]:
    """The offline pipelines' experiments (CYCLE, CodeDPO): each (seed, variant) run as its
    own subprocess, in turn, logging to `<out>/seed<s>/<variant>.log`; the runs resume
    themselves (their finished stages are kept).  Returns the failures, one line each."""
    failures = []
    for seed in seeds:
        for variant in variants:
            seed_dir = out / f"seed{seed}"
            seed_dir.mkdir(parents=True, exist_ok=True)
            log(f"{name} experiment: {variant} seed {seed}")
            with open(seed_dir / f"{variant}.log", "a") as stream:
                code = subprocess.run(command(seed, variant), stdout=stream, stderr=subprocess.STDOUT).returncode
            if code:
                failures.append(f"{variant} seed{seed}: exit {code} (see {seed_dir / f'{variant}.log'})")
                log(f"  FAILED: {failures[-1]}")
    return failures
