"""Metrics: one JSON line per iteration in the run directory, and W&B (offline when no
API key is configured) with the same keys, so people without W&B lose nothing.

Beside them, in the run directory (README: Watching a run):
  samples.jsonl      every trained sample: problem, stage and start point, canonical
                     prefix, completion, FGO-masked spans, executed lines, verdict,
                     reward, per-test verdicts, failing test, hacking flags
                     (`cluster.rollout_table.sample_row` without clock readings)
  judge_times.jsonl  per iteration, each sample's judge time (samples.jsonl's order):
                     kept apart because clock readings differ between a resumed and an
                     uninterrupted run, whose samples.jsonl lines are the same
  rollouts.jsonl     the rollout table: `observe.table_rows` samples every
                     `observe.table_every` iterations, with test times; also a W&B table
W&B also gets histograms per iteration (`cluster.distributions`) and two step axes:
`iteration` (every metric's x-axis) and `sampled_programs` (cumulative programs
sampled, also in metrics.jsonl), so curves of runs with different batch sizes line up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cluster.config import TrainConfig
from cluster.distributions import histograms, stage_histogram
from cluster.hacking import batch_flags
from cluster.rollout_table import COLUMNS, choose_rows, sample_row, table_cells, table_due, without_timing
from core.settings import to_dict

AXES = ("iteration", "sampled_programs")


class MetricsLogger:
    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        self.path = run_dir / "metrics.jsonl"
        self._generated = generated_by_step(self.path)  # a resumed run continues the sampled_programs axis
        self._file = self.path.open("a", encoding="utf-8")
        self._samples = (run_dir / "samples.jsonl").open("a", encoding="utf-8")
        self._times = (run_dir / "judge_times.jsonl").open("a", encoding="utf-8")
        self._rollouts = (run_dir / "rollouts.jsonl").open("a", encoding="utf-8")
        self._observe, self._iterations, self._seed = cfg.observe, cfg.iterations, cfg.seed
        self._wandb = None
        if cfg.wandb.mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")

            mode = cfg.wandb.mode
            if mode == "online" and not os.environ.get("WANDB_API_KEY"):
                mode = "offline"
            self._wandb = wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity, name=cfg.wandb.run_name,
                                     mode=mode, dir=str(run_dir), config=to_dict(cfg), reinit="finish_previous")
            define_axes(self._wandb)

    def log(self, step: int, metrics: dict) -> None:
        """An iteration's metrics (or an evaluation's, at that iteration's step), with the
        cumulative `sampled_programs` through `step`."""
        if "generated_samples" in metrics:
            self._generated[step] = int(metrics["generated_samples"])
        programs = self._programs_through(step)
        self._file.write(json.dumps({"step": step, **metrics, "sampled_programs": programs}) + "\n")
        self._file.flush()
        if self._wandb is not None:
            extra = {}
            stages = stage_histogram(metrics)
            if stages is not None:
                import wandb

                extra["hist/curriculum_stage"] = wandb.Histogram(np_histogram=stages)
            self._wandb_log(step, {**metrics, **extra})

    def log_samples(self, step: int, samples) -> None:
        """The batch the learner just trained on: every sample to samples.jsonl, their
        judge times to judge_times.jsonl, histograms to W&B, and when due the table."""
        self._generated[step] = len(samples)  # its generated_samples, logged with its metrics
        flags = batch_flags(samples, self._observe.identical_min_problems)
        rows = [sample_row(step, s, f) for s, f in zip(samples, flags)]
        self._samples.writelines(json.dumps(without_timing(r)) + "\n" for r in rows)
        self._samples.flush()
        self._times.write(json.dumps({"step": step, "judge_s": [r.get("judge_s") for r in rows]}) + "\n")
        self._times.flush()
        if table_due(step, self._observe.table_every, self._iterations):
            self._log_table(step, choose_rows(rows, self._observe.table_rows, f"{self._seed}/{step}"))
        if self._wandb is not None:
            import wandb

            self._wandb_log(step, {k: wandb.Histogram(v) for k, v in histograms(samples).items() if v})

    def _log_table(self, step: int, rows: list[dict]) -> None:
        self._rollouts.writelines(json.dumps(r) + "\n" for r in rows)
        self._rollouts.flush()
        if self._wandb is not None:
            import wandb

            data = [[table_cells(r)[c] for c in COLUMNS] for r in rows]
            self._wandb_log(step, {"rollouts": wandb.Table(columns=list(COLUMNS), data=data)})

    def _wandb_log(self, step: int, data: dict) -> None:
        """Every W&B row carries both step axes."""
        self._wandb.log({**data, "iteration": step, "sampled_programs": self._programs_through(step)}, step=step)

    def _programs_through(self, step: int) -> int:
        return sum(n for s, n in self._generated.items() if s <= step)

    def close(self) -> None:
        for f in (self._file, self._samples, self._times, self._rollouts):
            f.close()
        if self._wandb is not None:
            self._wandb.finish()


def define_axes(run) -> None:
    """`iteration` is every metric's x-axis; `sampled_programs` is logged in every row,
    so W&B's x-axis setting can switch any chart to it."""
    for axis in AXES:
        run.define_metric(axis)
    run.define_metric("*", step_metric="iteration")


def generated_by_step(path: Path) -> dict[int, int]:
    """generated_samples per step of an existing metrics file (the last line of a step
    wins: a run resumed from an older checkpoint logs its steps again)."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if "generated_samples" in row:
                out[int(row["step"])] = int(row["generated_samples"])
    return out
