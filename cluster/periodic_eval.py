"""Held-out pass@1 during RL (`eval_every`): which iterations are evaluated, once each,
also across resumes.  The evaluation itself is cluster/train.py's `Evaluations`."""

from __future__ import annotations

import json
from pathlib import Path


class PeriodicEval:
    """Held-out pass@1 every `eval_every` iterations, as a metrics line (`eval/heldout_pass@1`
    at the iteration's step, in metrics.jsonl and W&B): the learning curve between the
    evaluations before and after RL.

    Each due step is evaluated exactly once, also across resumes: steps already evaluated
    are read back from metrics.jsonl, and a run resumed right after a due step (a Ctrl-C
    inside its evaluation checkpoints the step as trained) evaluates it first, with the
    resumed weights, which are the weights that step ended with.  The last iteration is
    left to the evaluation after RL, which logs the same key at that step."""

    KEY = "eval/heldout_pass@1"

    def __init__(self, cfg, evals, logger, run_dir: Path) -> None:
        """`evals`: has `heldout(when) -> figures`; `logger`: has `log(step, metrics)`."""
        self.every, self.iterations = cfg.eval_every, cfg.iterations
        self.evals, self.logger = evals, logger
        self.done = _steps_with(run_dir / "metrics.jsonl", self.KEY)

    def due(self, step: int) -> bool:
        return bool(self.every) and (step + 1) % self.every == 0 and step + 1 < self.iterations \
            and step not in self.done

    def catch_up(self, first: int) -> None:
        if first and self.due(first - 1):
            self.evaluate(first - 1)

    def evaluate(self, step: int) -> None:
        figures = self.evals.heldout(f"at iteration {step + 1}")
        self._log(step, {self.KEY: figures["heldout"],
                         "eval/heldout_sandbox_errors": figures["sandbox_errors"].get("heldout", 0)})

    def log_final(self, after: dict) -> None:
        """With periodic evaluations on, the evaluation after RL joins their curve at the
        last iteration's step (without them the metrics file keeps one line per iteration)."""
        if not self.every or not self.iterations or after.get("heldout") is None:
            return
        if self.iterations - 1 not in self.done:
            self._log(self.iterations - 1, {self.KEY: after["heldout"], "eval/transfer_pass@1": after.get("transfer")})

    def _log(self, step: int, metrics: dict) -> None:
        self.logger.log(step, metrics)
        self.done.add(step)


def _steps_with(path: Path, key: str) -> set[int]:
    """Steps of the metrics lines that hold `key` (none when the file does not exist)."""
    if not path.is_file():
        return set()
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {row["step"] for row in rows if key in row}
