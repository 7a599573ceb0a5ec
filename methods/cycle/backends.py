"""The real generate and judge functions: execrl's rollout pool and executor pool.

The refinement loop and the collection take plain functions (refine.py: Generate,
Judge) so that their control flow is tested without a model; these wrap the Ray pools
that `execrl train` and `execrl eval` use, with the rollout config's sampling
(temperature, top-p, max_new_tokens, stop strings) and one seed per request.
"""

from __future__ import annotations

from actors.config import RolloutConfig
from core.rollout import GenerationRequest

from .refine import Generate, Judge


def pool_generate(rollout, sampling: RolloutConfig) -> Generate:
    """Generate with a RolloutPool; answers come back in request order."""
    def generate(requests):
        batch = [GenerationRequest(tuple(ids), n=n, request_id=str(i), sampling=sampling.sampling(seed=seed))
                 for i, (ids, n, seed) in enumerate(requests)]
        by_id = {r.request_id: [c.text for c in r.completions] for r in rollout.generate(batch)}
        return [by_id[str(i)] for i in range(len(requests))]
    return generate


def pool_judge(executors) -> Judge:
    """Judge with an ExecutorPool; results in submission order."""
    return lambda submissions: executors.judge(list(submissions))
