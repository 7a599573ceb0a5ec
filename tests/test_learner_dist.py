"""Two ranks under torchrun (gloo on CPU): data-parallel PPO keeps the ranks' weights identical.

The test launches this file under torchrun; each rank trains on its own shard of data
(different sequences and rewards) and writes its final weights for the test to compare.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def rank_main(model_dir: str, out_dir: str) -> None:
    import torch

    from learner.bench import synthetic_batch
    from learner.config import LearnerConfig
    from learner.dist import setup_distributed
    from learner.ppo import PPOLearner

    dist = setup_distributed()
    assert dist.world_size == 2 and dist.backend == "gloo"
    cfg = LearnerConfig(zero_stage=2, minibatch_size=8, micro_batch_size=2, ppo_epochs=2, adaptive_kl=True)
    learner = PPOLearner.from_pretrained(model_dir, cfg)
    initial = torch.cat([p.detach().flatten() for p in learner.engines.policy.module.parameters()])
    torch.manual_seed(dist.rank)  # different minibatch orders too
    for step in range(2):
        learner.update(synthetic_batch(2048, 8, 6, 10, seed=10 * step + dist.rank))
    weights = {name: torch.cat([p.detach().flatten() for p in engine.module.parameters()])
               for name, engine in (("policy", learner.engines.policy), ("critic", learner.engines.critic))}
    torch.save({**weights, "initial": initial, "beta": learner.kl_ctl.value}, Path(out_dir) / f"rank{dist.rank}.pt")


@pytest.mark.slow
def test_two_ranks_end_with_identical_weights(tiny_model_dir, tmp_path):
    import torch

    from learner.dist import free_port

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), __file__, str(tiny_model_dir), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["policy"], r1["policy"]) and torch.equal(r0["critic"], r1["critic"])
    assert r0["beta"] == r1["beta"] != 0.1  # the KL controller saw the same (all-reduced) KL
    assert not torch.allclose(r0["policy"], r0["initial"])


if __name__ == "__main__":
    rank_main(sys.argv[1], sys.argv[2])



def test_a_port_picked_for_one_process_does_not_leak_to_children():
    """The single-process default binds MASTER_PORT in this process's store; a child that
    inherited it (a subprocess learner, a Ray worker) would fail with EADDRINUSE.  Checked
    in a fresh process, so that no earlier test's process group is in the way."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    code = ("import os, torch\nfrom learner.dist import setup_distributed\nsetup_distributed()\n"
            "print(torch.distributed.is_initialized(), 'MASTER_PORT' in os.environ)")
    proc = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False"]
