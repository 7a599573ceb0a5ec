"""Metrics: one JSON line per iteration in the run directory, and W&B (offline when no
API key is configured) with the same keys, so people without W&B lose nothing.  Beside
them, `samples.jsonl` keeps every trained sample (problem, stage, completion, verdict,
reward): what the policy actually wrote, and what two runs can be compared by."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cluster.config import TrainConfig
from core.settings import to_dict


class MetricsLogger:
    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        self.path = run_dir / "metrics.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self._samples = (run_dir / "samples.jsonl").open("a", encoding="utf-8")
        self._wandb = None
        if cfg.wandb.mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")

            mode = cfg.wandb.mode
            if mode == "online" and not os.environ.get("WANDB_API_KEY"):
                mode = "offline"
            self._wandb = wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity, name=cfg.wandb.run_name,
                                     mode=mode, dir=str(run_dir), config=to_dict(cfg), reinit="finish_previous")

    def log(self, step: int, metrics: dict) -> None:
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def log_samples(self, step: int, samples) -> None:
        """One line per sample of the batch the learner just trained on."""
        for s in samples:
            reward = None if s.reward != s.reward else s.reward
            self._samples.write(json.dumps({"step": step, "problem_id": s.problem_id, "stage": s.stage,
                                            "completion": s.text, "verdict": s.verdict, "reward": reward}) + "\n")
        self._samples.flush()

    def close(self) -> None:
        self._file.close()
        self._samples.close()
        if self._wandb is not None:
            self._wandb.finish()
