"""The learner's side of the NCCL weight route, on CPU: everything but NCCL itself.

What rank 0 would put on the wire (the gathered source: names, shapes, values), that
ZeRO-3 parameters are gathered one module at a time, that LoRA goes out merged, when the
NCCL group is re-formed, and which actor gets which NCCL rank.  The wire is vLLM's
engine; here a dry-run or recording sender takes its place."""

from __future__ import annotations

import hashlib

import pytest
import torch
from transformers import AutoModelForCausalLM

from actors.vllm_nccl import ActorsClient, BroadcastTarget, NcclWeightSender
from learner.broadcast import SENDERS, GatheredSource, PolicyBroadcaster
from learner.config import LearnerConfig
from learner.export import full_state_dict
from learner.ppo import PPOLearner

SMALL = dict(minibatch_size=4, micro_batch_size=4, advantage_estimator="grpo")  # no critic: faster


def target(version: int = 1, pids=(11, 12), transport: str = "dry_run", tp: int = 1, dtype: str = "float32"):
    return BroadcastTarget(tuple(f"actor{i}" for i in range(len(pids))), tp, version, tuple(pids), dtype, transport)


def sha(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def test_zero3_source_yields_every_named_weight_one_module_at_a_time(tiny_model_dir):
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(zero_stage=3, **SMALL))
    module = learner.engines.policy.module
    assert all(p.numel() == 0 for p in module.parameters())  # partitioned: nothing whole until gathered
    source = GatheredSource(module, sender=True, dtype=torch.float32)
    expected = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).named_parameters())
    seen, widest = {}, 0
    for name, tensor in source:
        gathered = [p for p in module.parameters() if p.ds_status == ZeroParamStatus.AVAILABLE]
        widest = max(widest, sum(p.ds_numel for p in gathered))
        seen[name] = tensor
    assert list(seen) == list(expected)  # every weight, in named_parameters order, once
    assert all(torch.equal(seen[n], expected[n]) for n in expected)
    largest = max(p.numel() for p in expected.values())
    assert widest == largest  # never more gathered than the largest module's own weights
    assert all(p.ds_status == ZeroParamStatus.NOT_AVAILABLE for p in module.parameters())  # all released
    # what is declared before the transfer matches what is sent, one for one
    assert [(m.name, m.dtype, m.shape) for m in source.metadata()] == \
        [(n, t.dtype, tuple(t.shape)) for n, t in seen.items()]
    # the learner's own entry point, through the dry-run sender: the digests of what rank 0 read
    stats = learner.broadcast_policy(target(dtype="float32"))
    assert stats.regrouped and stats.version == 1 and stats.num_tensors == len(expected)
    assert stats.num_bytes == sum(t.numel() * 4 for t in expected.values())
    assert stats.digests == {n: sha(t) for n, t in expected.items()}


def test_the_wire_dtype_is_the_rollouts(tiny_model_dir):
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(**SMALL))
    source = GatheredSource(learner.engines.policy.module, sender=True, dtype=torch.bfloat16)
    pairs = list(source)
    assert {t.dtype for _, t in pairs} == {torch.bfloat16}
    assert {m.dtype for m in source.metadata()} == {torch.bfloat16}
    params = dict(learner.engines.policy.module.named_parameters())
    name, tensor = pairs[0]
    assert torch.equal(tensor, params[name].detach().to(torch.bfloat16))
    # in the training dtype too, rank 0 sends copies: vLLM's packer holds them past the gather's release
    same = dict(GatheredSource(learner.engines.policy.module, sender=True, dtype=torch.float32))
    assert torch.equal(same[name], params[name]) and same[name].data_ptr() != params[name].data_ptr()


def test_lora_goes_out_merged_under_the_base_names(tiny_model_dir):
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(lora_rank=4, **SMALL))
    module = learner.engines.policy.module
    with torch.no_grad():  # adapters that change the weights (B starts at zero)
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    sent = dict(GatheredSource(module, sender=True, dtype=torch.float32))
    merged = full_state_dict(learner.engines.policy)  # what the object-store route and the export send
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    assert list(sent) == list(base) and not any("lora" in n for n in sent)
    assert all(torch.equal(sent[n], merged[n]) for n in sent)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(sent[q], base[q])  # the adapter is in it


class Recorder:
    """Stands in for rank 0's NCCL sender."""

    opened: list = []

    def __init__(self, target, source):
        self.target, self.source, self.closed, self.sent = target, source, False, []
        Recorder.opened.append(self)

    def send(self, version):
        self.sent.append((version, len(list(self.source))))
        return {}

    def close(self):
        self.closed = True


class FakeEngine:
    def __init__(self):
        self.module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
        self.global_steps = 0


def test_rank_0_keeps_its_group_until_the_actors_change(monkeypatch):
    monkeypatch.setitem(SENDERS, "record", Recorder)
    Recorder.opened = []
    engine, rank0, rank1 = FakeEngine(), PolicyBroadcaster(), PolicyBroadcaster()
    first = rank0.broadcast(engine, target(1, transport="record"), rank=0)
    assert first.regrouped and first.num_tensors == 4 and len(Recorder.opened) == 1
    engine.global_steps = 1
    second = rank0.broadcast(engine, target(2, transport="record"), rank=0)
    assert not second.regrouped and len(Recorder.opened) == 1 and Recorder.opened[0].sent == [(1, 4), (2, 4)]
    # an actor restarted (new pid): a new group, the old one closed; its version sent again is a refresh
    refresh = rank0.broadcast(engine, target(2, pids=(11, 99), transport="record"), rank=0)
    assert refresh.regrouped and Recorder.opened[0].closed and Recorder.opened[1].sent == [(2, 4)]
    assert Recorder.opened[1].target.actor_pids == (11, 99)
    engine.global_steps = 2  # the policy moved on: version 2's weights no longer exist
    with pytest.raises(RuntimeError, match="cannot re-send version 2.*1 optimizer step"):
        rank0.broadcast(engine, target(2, pids=(11, 99), transport="record"), rank=0)
    with pytest.raises(ValueError, match="older than the last broadcast"):
        rank0.broadcast(engine, target(1, pids=(11, 99), transport="record"), rank=0)
    # other ranks open no sender; they only iterate the source (their part of the gathers)
    other = rank1.broadcast(engine, target(1, transport="record"), rank=1)
    assert other.num_tensors == 4 and len(Recorder.opened) == 2
    with pytest.raises(ValueError, match="unknown weight transport 'carrier-pigeon'"):
        PolicyBroadcaster().broadcast(engine, target(1, transport="carrier-pigeon"), rank=0)


def test_each_actor_gets_its_own_nccl_ranks(ray_session):
    import ray

    @ray.remote(num_cpus=0)
    class Actor:
        def __init__(self):
            self.calls = []

        def nccl_call(self, method, payload, version):
            self.calls.append((method, payload, version))

        def log(self):
            return self.calls

    actors = [Actor.remote() for _ in range(3)]
    t = BroadcastTarget(tuple(actors), 2, 7, (1, 2, 3))
    assert t.world_size == 7 and t.rank_offsets() == [1, 3, 5]
    client = ActorsClient(t)
    client.version = 7
    client.init_weight_transfer_engine({"master_address": "10.0.0.1", "master_port": 2345, "rank_offset": 1,
                                        "world_size": 7})
    client.start_weight_update()
    client.update_weights({"names": ["w"], "dtype_names": ["bfloat16"], "shapes": [[2]]})
    client.finish_weight_update()
    for offset, actor in zip([1, 3, 5], actors):
        calls = ray.get(actor.log.remote())
        assert [c[0] for c in calls] == ["init_weight_transfer_engine", "start_weight_update", "update_weights",
                                         "finish_weight_update"]
        assert calls[0][1]["init_info"] == {"master_address": "10.0.0.1", "master_port": 2345, "rank_offset": offset,
                                            "world_size": 7}
        assert calls[2][1] == {"update_info": {"names": ["w"], "dtype_names": ["bfloat16"], "shapes": [[2]]}}
        assert calls[3][2] == 7  # the version the actor takes on when the update finishes
    with pytest.raises(ValueError, match="3 actors but 2 pids"):
        BroadcastTarget(tuple(actors), 1, 1, (1, 2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_nccl_sender_refuses_without_cuda():
    with pytest.raises(RuntimeError, match="needs CUDA.*rollout.weight_sync: object_store"):
        NcclWeightSender(target(transport="nccl"), source=None)


@pytest.mark.slow
def test_two_zero3_ranks_gather_together_and_rank_0_reads_the_full_weights(ray_session, tiny_model_dir):
    from learner.group import make_learner

    group = make_learner(tiny_model_dir, LearnerConfig(num_workers=2, zero_stage=3, minibatch_size=8,
                                                       micro_batch_size=2, advantage_estimator="grpo"))
    try:
        stats = group.broadcast_policy(target(3, dtype="float32"))  # both ranks gather; rank 0 reads
        full = group.policy_state_dict()  # the consolidated state dict, for comparison
        names = [n for n, _ in AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters()]
        assert list(stats.digests) == names and stats.version == 3
        assert stats.digests == {n: sha(full[n]) for n in names}
    finally:
        group.close()
