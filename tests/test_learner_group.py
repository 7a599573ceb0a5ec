"""The learner as a placement-grouped group of Ray actors (two gloo ranks on CPU)."""

import hashlib

import pytest
import ray
import torch

from actors.weights import fetch
from learner.bench import synthetic_batch
from learner.config import LearnerConfig
from learner.group import LearnerGroup, make_learner

CFG = LearnerConfig(num_workers=2, minibatch_size=8, micro_batch_size=2)


@pytest.mark.slow
def test_two_ranks_train_in_step_and_checkpoint(ray_session, tiny_model_dir, tmp_path):
    group = make_learner(tiny_model_dir, CFG)
    try:
        assert isinstance(group, LearnerGroup) and group.rows_per_step == 8
        table = ray.util.placement_group_table(group.placement)
        assert table["strategy"] == "STRICT_PACK" and len(table["bundles"]) == 2
        before = group.policy_digests()
        stats = group.update(synthetic_batch(2048, 16, 6, 10, seed=1))
        assert stats.action_tokens > 0 and stats.policy_loss == stats.policy_loss
        after = group.policy_digests()
        assert after[0] == after[1] != before[0]  # shards differ, gradients are all-reduced
        weights = group.policy_state_dict()
        assert weights and all(t.device.type == "cpu" for t in weights.values())
        handle = group.publish_policy(3, max_bytes=1 << 20)  # rank 0 puts the chunks itself
        assert handle.version == 3 and len(handle.chunks) > 1
        published = dict(fetch(handle))
        assert published.keys() == weights.keys()
        assert all(torch.equal(published[k], weights[k]) for k in weights)
        group.save_checkpoint(tmp_path / "ckpt", 1, {"note": "x"})
        group.update(synthetic_batch(2048, 8, 6, 10, seed=2))
        resumed = group.load_checkpoint(tmp_path / "ckpt")
        assert resumed.step == 1 and resumed.client_state == {"note": "x"}
        assert group.policy_digests() == after
        with pytest.raises(ValueError, match="whole optimizer steps on 2 ranks"):
            group.update(synthetic_batch(2048, 12, 6, 10))
    finally:
        group.close()


def test_a_group_no_node_can_hold_fails_at_once(ray_session, tiny_model_dir):
    with pytest.raises(RuntimeError, match="no node can hold the learner.*learner.num_workers"):
        LearnerGroup(tiny_model_dir, LearnerConfig(num_workers=3, cpus_per_worker=64.0))


@pytest.mark.slow
def test_zero3_ranks_digest_their_gathered_weights(ray_session, tiny_model_dir, tmp_path):
    """Under ZeRO-3 each rank's module holds empty shard placeholders: the digest must be
    of the gathered weights, or every check of it passes vacuously."""
    group = make_learner(tiny_model_dir, LearnerConfig(num_workers=2, zero_stage=3, minibatch_size=8,
                                                       micro_batch_size=2))
    try:
        empty = hashlib.sha256().hexdigest()
        before = group.policy_digests()
        assert before[0] == before[1] != empty
        group.save_checkpoint(tmp_path / "ckpt", 1)
        group.update(synthetic_batch(2048, 16, 6, 10, seed=1))
        after = group.policy_digests()
        assert after[0] == after[1] not in (before[0], empty)
        group.load_checkpoint(tmp_path / "ckpt")
        assert group.policy_digests() == before
    finally:
        group.close()
