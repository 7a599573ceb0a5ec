"""The object-store route measures its room before it writes: the store's free bytes on
the writing node and /dev/shm, where the store lives; a sync that cannot fit is refused
by name before anything is put."""

from __future__ import annotations

import pytest
import torch

import actors.weights as weights
from actors.config import RolloutConfig
from actors.weights import StoreSpace, WeightSyncDoesNotFit, check_fits, checkpoint_bytes, publish, store_space

MiB = 2**20


def test_the_refusal_names_the_bytes_and_the_keys():
    with pytest.raises(WeightSyncDoesNotFit) as err:
        check_fits(300 * MiB, StoreSpace(capacity=256 * MiB, free=200 * MiB, shm_free=150 * MiB), 64 * MiB, "the policy")
    message = str(err.value)
    assert f"needs {300 * MiB:,} bytes (300.0 MiB: the policy)" in message
    assert f"only {150 * MiB:,} bytes (150.0 MiB) are free" in message  # the smaller of store and /dev/shm
    assert f"{200 * MiB:,} of the store's {256 * MiB:,} bytes" in message and "/dev/shm" in message
    assert "--object-store-memory" in message and "object_store_memory" in message
    assert "rollout.weight_chunk_mb (now 64)" in message and "rollout.weight_sync: nccl" in message
    check_fits(150 * MiB, StoreSpace(256 * MiB, 200 * MiB, 150 * MiB), 64 * MiB, "fits exactly")
    check_fits(10 * MiB, StoreSpace(256 * MiB, 200 * MiB, None), 64 * MiB, "no /dev/shm figure")


def test_the_store_is_measured_where_it_lives(ray_session):
    import numpy as np
    import ray

    before = store_space()
    assert before.capacity == 256 * MiB and 0 < before.free <= before.capacity
    assert before.shm_free is not None  # this machine's /dev/shm is larger than the store: Ray put it there
    # the reading follows the put and the release; counted as the store's use, since
    # objects of earlier tests may leave it meanwhile (free alone can rise across a put)
    held = ray.put(np.zeros(64 * MiB, np.uint8))
    _wait_until(lambda: before.capacity - store_space().free >= 64 * MiB)
    del held
    _wait_until(lambda: before.capacity - store_space().free < 64 * MiB)


def test_publish_refuses_what_the_store_cannot_hold_before_writing(ray_session, monkeypatch):
    monkeypatch.setattr(weights, "RELEASE_WAIT_S", 0.3)
    space = store_space()
    too_big = {"w": torch.empty(space.capacity + MiB, dtype=torch.uint8)}  # never touched: nothing is written
    with pytest.raises(WeightSyncDoesNotFit, match="needs .* bytes .*one copy of the policy"):
        publish(too_big, 1, 8 * MiB)
    assert store_space().free >= space.free  # nothing was put


def test_the_pool_refuses_at_start_a_sync_that_can_never_fit(ray_session, tiny_model_dir, monkeypatch):
    import actors.rollout_pool as rollout_pool

    monkeypatch.setattr(weights, "RELEASE_WAIT_S", 0.0)
    need = checkpoint_bytes(tiny_model_dir, "float32")
    small = StoreSpace(capacity=need, free=need // 2, shm_free=None)
    monkeypatch.setattr(rollout_pool, "roomiest_store", lambda: small)
    with pytest.raises(WeightSyncDoesNotFit, match=f"needs {need:,} bytes .*at least one float32 copy"):
        rollout_pool.RolloutPool(RolloutConfig(), str(tiny_model_dir))  # refused before any actor starts
    # the NCCL route does not write into the store: nothing to refuse
    assert rollout_pool.RolloutPool._expected_route(_cfg_only(RolloutConfig(weight_sync="nccl"))) == "nccl"
    assert rollout_pool.RolloutPool._expected_route(_cfg_only(
        RolloutConfig(backend="vllm", gpus_per_actor=1.0))) is None  # auto decides at the first sync


def test_checkpoint_bytes_reads_the_files_in_the_rollout_dtype(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    numel = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    assert checkpoint_bytes(tiny_model_dir, "float32") == 4 * numel
    assert checkpoint_bytes(tiny_model_dir, "bfloat16") == 2 * numel
    assert checkpoint_bytes(tmp_path, "float32") is None  # no safetensors there


class _cfg_only:
    def __init__(self, cfg):
        self.cfg = cfg


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the store's reading did not follow the put"
        time.sleep(0.1)
