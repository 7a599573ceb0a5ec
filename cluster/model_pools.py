"""The rollout and executor pools of one model at a time, for the offline pipelines
(CYCLE, CodeDPO), which sample and judge with one model, then train, then evaluate
another: the pools start on first use and are replaced when the model changes."""

from __future__ import annotations

from cluster.config import TrainConfig


class ModelPools:
    def __init__(self, base: TrainConfig) -> None:
        self.base, self.model, self.rollout, self.executors = base, None, None, None

    def get(self, model: str):
        """(RolloutPool, ExecutorPool) serving `model`, started now if they serve another."""
        from actors.rollout_pool import RolloutPool
        from executors.pool import ExecutorPool

        if self.model != model:
            self.close()
            self.executors, self.rollout, self.model = ExecutorPool(self.base.executor), RolloutPool(
                self.base.rollout, model), model
        return self.rollout, self.executors

    def close(self) -> None:
        """Stop both pools (frees the cores for training)."""
        if self.rollout is not None:
            self.rollout.shutdown()
        if self.executors is not None:
            self.executors.close()
        self.model, self.rollout, self.executors = None, None, None
