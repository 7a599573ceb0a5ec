"""A finished (or running) `execrl train` directory read back, for `execrl inspect`.

Sources, each optional except samples.jsonl:
  samples.jsonl        every trained sample (`cluster.rollout_table.sample_row` rows)
  judge_times.jsonl    each sample's judge time, per step in samples.jsonl's order
  metrics.jsonl        per-iteration metrics (verdict mix, hacking counters, curriculum)
  rollouts.jsonl       the rollout table (sampled rows with per-test times)
  checkpoints/latest   the newest checkpoint's client_state.json: the curriculum state
                       of every problem (stage, window, stage changes with their steps)

A step logged twice (a run resumed from an older checkpoint logs its steps again) keeps
its last batch.  Rows written before these files carried observations (an older run)
read with empty observations rather than failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.curves import MetricsLog, read_metrics


@dataclass(frozen=True)
class SampleRecord:
    """One trained sample as samples.jsonl keeps it; `index` is its position in its
    step's batch, `judge_s` joined from judge_times.jsonl (None when unknown)."""

    step: int
    index: int
    problem_id: str
    stage: int
    verdict: str
    reward: float | None
    completion: str
    num_stages: int | None = None
    start_line: int | None = None
    start_kind: str | None = None
    policy_version: int | None = None
    prefix: str = ""
    prefix_first_line: int = 1
    masked_spans: tuple[tuple[int, int], ...] = ()
    executed_lines: tuple[int, ...] = ()
    tests_passed: int | None = None
    tests_total: int | None = None
    test_verdicts: str = ""
    failing: dict | None = None
    error: str | None = None
    hacks: tuple[str, ...] = ()
    judge_s: float | None = None

    @classmethod
    def from_row(cls, row: dict, index: int, judge_s: float | None, where: str) -> "SampleRecord":
        try:
            return cls(step=int(row["step"]), index=index, problem_id=str(row["problem_id"]), stage=int(row["stage"]),
                       verdict=str(row["verdict"]), reward=row.get("reward"), completion=row.get("completion", ""),
                       num_stages=row.get("num_stages"), start_line=row.get("start_line"),
                       start_kind=row.get("start_kind"), policy_version=row.get("policy_version"),
                       prefix=row.get("prefix", ""), prefix_first_line=row.get("prefix_first_line", 1),
                       masked_spans=tuple(tuple(s) for s in row.get("masked_spans", ())),
                       executed_lines=tuple(row.get("executed_lines", ())), tests_passed=row.get("tests_passed"),
                       tests_total=row.get("tests_total"), test_verdicts=row.get("test_verdicts", ""),
                       failing=row.get("failing"), error=row.get("error"), hacks=tuple(row.get("hacks", ())),
                       judge_s=judge_s)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: not a samples.jsonl row ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class StageChangeRecord:
    step: int
    from_stage: int
    to_stage: int
    pass_rate: float


@dataclass(frozen=True)
class CurriculumRecord:
    """One problem's curriculum state in the newest checkpoint."""

    problem_id: str
    stage: int
    num_stages: int
    window: tuple[int, ...]
    results: int
    changes: tuple[StageChangeRecord, ...]


@dataclass
class RunFiles:
    run_dir: Path
    samples: list[SampleRecord]
    metrics: MetricsLog | None = None
    table: list[dict] = field(default_factory=list)
    curriculum: dict[str, CurriculumRecord] = field(default_factory=dict)
    checkpoint: Path | None = None  # the checkpoint the curriculum was read from
    curriculum_enabled: bool = True  # config.yaml's curriculum.enabled (off: every sample at position 0)

    @property
    def steps(self) -> list[int]:
        return sorted({s.step for s in self.samples})


def load_run(run_dir: str | Path) -> RunFiles:
    """Read `run_dir`; a missing directory or one without trained samples is an error
    naming the path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (execrl train --output_dir / output_dir=...)")
    samples_path = run_dir / "samples.jsonl"
    if not samples_path.is_file():
        raise FileNotFoundError(f"{samples_path}: not found; {run_dir} is not an execrl train run directory, "
                                "or its run has not trained a batch yet")
    times = _judge_times(run_dir / "judge_times.jsonl")
    samples = _samples(samples_path, times)
    if not samples:
        raise ValueError(f"{samples_path} is empty: the run has not trained a batch yet")
    metrics_path = run_dir / "metrics.jsonl"
    metrics = read_metrics(metrics_path) if metrics_path.is_file() and metrics_path.stat().st_size else None
    checkpoint, curriculum = _curriculum(run_dir / "checkpoints")
    return RunFiles(run_dir, samples, metrics, _json_lines(run_dir / "rollouts.jsonl"), curriculum, checkpoint,
                    _curriculum_enabled(run_dir / "config.yaml"))


def _curriculum_enabled(path: Path) -> bool:
    """Off, the curriculum state keeps stage 0 while every sample starts at position 0."""
    if not path.is_file():
        return True
    cfg = yaml.safe_load(path.read_text()) or {}
    return bool((cfg.get("curriculum") or {}).get("enabled", True))


def _json_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from None
    return rows


def _samples(path: Path, times: dict[int, list]) -> list[SampleRecord]:
    """samples.jsonl's rows; a step's rows are contiguous, and a later group of the same
    step (logged again after a resume) replaces the earlier one."""
    groups: dict[int, list[tuple[int, dict]]] = {}
    last = None
    for number, row in enumerate(_json_lines(path), 1):
        step = row.get("step")
        if step != last:
            groups[step] = []
            last = step
        groups[step].append((number, row))
    out = []
    for step in sorted(groups, key=lambda s: (s is None, s)):
        step_times = times.get(step, [])
        for index, (number, row) in enumerate(groups[step]):
            judge_s = step_times[index] if index < len(step_times) else None
            out.append(SampleRecord.from_row(row, index, judge_s, f"{path}:{number}"))
    return out


def _judge_times(path: Path) -> dict[int, list]:
    return {int(r["step"]): list(r.get("judge_s", [])) for r in _json_lines(path) if "step" in r}


def _curriculum(root: Path) -> tuple[Path | None, dict[str, CurriculumRecord]]:
    """The newest checkpoint's curriculum state (none: no checkpoint was written)."""
    latest = root / "latest"
    if not latest.is_file():
        return None, {}
    path = root / latest.read_text().strip() / "client_state.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: named by {latest} but missing")
    try:
        problems = json.loads(path.read_text())["client_state"]["curriculum"]["problems"]
        return path.parent, {pid: CurriculumRecord(
            pid, int(p["stage"]), len(p["stage_offsets"]), tuple(p["window"]), int(p["results"]),
            tuple(StageChangeRecord(int(a), int(b), int(c), float(d)) for a, b, c, d in p["history"]))
            for pid, p in problems.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: no curriculum state in it ({type(exc).__name__}: {exc})") from None
