"""`execrl plan` and the preflight's memory check: parameter counts from config.json equal
transformers' models, model states equal DeepSpeed's own estimators, activations equal
what real models save for backward, and an over-sized GPU job is refused by name."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from cluster.config import load_config
from cluster.modelshape import KNOWN_DIR, ModelShape, load_shape
from cluster.plan import GIB, activation_bytes, make_plan, trainable_states
from cluster.runtime import check_memory_plan
from core.settings import ConfigError
from learner.ppo_math import logprobs_and_entropy

ROOT = Path(__file__).resolve().parents[1]
BIG = ROOT / "configs" / "deepseek-coder-6.7b.yaml"
DEEPSEEK = json.loads((KNOWN_DIR / "deepseek-ai--deepseek-coder-6.7b-instruct.json").read_text())
TINY = dict(vocab_size=3000, hidden_size=192, intermediate_size=512, num_hidden_layers=3, num_attention_heads=6)
SHAPES = {
    "llama tiny": LlamaConfig(**TINY, num_key_value_heads=6),
    "llama tiny tied, biased": LlamaConfig(**TINY, num_key_value_heads=2, tie_word_embeddings=True,
                                           attention_bias=True, mlp_bias=True),
    "qwen2 tiny gqa": Qwen2Config(**TINY, num_key_value_heads=2, tie_word_embeddings=False),
    "deepseek-coder-6.7b": LlamaConfig(**{k: v for k, v in DEEPSEEK.items() if not k.startswith("_")}),
}


def _meta_model(config):
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("name", SHAPES)
def test_parameter_counts_equal_transformers_models(name):
    config = SHAPES[name]
    model = _meta_model(config)
    shape = ModelShape.from_config(config.to_dict(), name)
    assert shape.params() == model.num_parameters()  # tied weights counted once
    backbone = sum(p.numel() for p in model.model.parameters())
    assert shape.critic_params() == backbone + config.hidden_size + 1  # learner/critic.py's ValueModel
    own = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    assert shape.largest_layer_params() == own  # DeepSpeed's largest_layer_params


def test_shape_of_a_model_directory_counts_its_real_weights(tiny_tied_model_dir):
    from models.config import ModelConfig

    shape, source = load_shape(ModelConfig(path=str(tiny_tied_model_dir)))
    model = AutoModelForCausalLM.from_pretrained(tiny_tied_model_dir)
    assert source == str(tiny_tied_model_dir / "config.json")
    assert shape.params() == sum(p.numel() for p in model.parameters())  # parameters() yields tied ones once


def test_deepseek_description_is_the_published_size():
    """The shipped description gives 6.74B parameters: DeepSeek-Coder-6.7B."""
    assert ModelShape.from_config(DEEPSEEK, "deepseek").params() == 6_740_512_768


@pytest.mark.parametrize("name", ["llama tiny", "deepseek-coder-6.7b"])
@pytest.mark.parametrize("ranks", [1, 4, 8])
def test_model_states_equal_deepspeeds_estimators(name, ranks):
    import learner.dist  # noqa: F401 - DS_ACCELERATOR before deepspeed loads
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    shape = ModelShape.from_config(SHAPES[name].to_dict(), name)
    for params in (shape.params(), shape.critic_params()):
        largest = shape.largest_layer_params()
        _, zero2 = estimate_zero2_model_states_mem_needs(params, num_gpus_per_node=ranks, cpu_offload=False)
        _, zero3, _ = estimate_zero3_model_states_mem_needs(params, largest, num_gpus_per_node=ranks, cpu_offload=False)
        assert trainable_states(params, largest, "bf16", 2, ranks) == zero2
        assert trainable_states(params, largest, "bf16", 3, ranks) == zero3
        _, zero2_off = estimate_zero2_model_states_mem_needs(params, num_gpus_per_node=ranks, cpu_offload=True)
        _, zero3_off, _ = estimate_zero3_model_states_mem_needs(params, largest, num_gpus_per_node=ranks,
                                                               cpu_offload=True, cpu_offload_params=False)
        assert trainable_states(params, largest, "bf16", 2, ranks, offload=True) == zero2_off
        assert trainable_states(params, largest, "bf16", 3, ranks, offload=True) == zero3_off


def _saved_bytes(model, fn) -> int:
    """Bytes of the tensors autograd saves for backward while `fn` runs (weights excluded,
    shared storage counted once)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@pytest.mark.parametrize("name", ["llama tiny", "qwen2 tiny gqa"])
@pytest.mark.parametrize("dtype, precision", [(torch.float32, "fp32"), (torch.bfloat16, "bf16")])
def test_activation_formula_matches_what_models_save(name, dtype, precision):
    config = SHAPES[name]
    shape = ModelShape.from_config(config.to_dict(), name)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(dtype).train()
    ids = torch.randint(0, config.vocab_size, (2, 96))

    def decoder():
        model.model(input_ids=ids, use_cache=False).last_hidden_state.sum()

    def policy_loss():
        logits = model(input_ids=ids, use_cache=False).logits
        logprobs_and_entropy(logits, ids, entropy=False, temperature=0.8)[0].sum()

    body = _saved_bytes(model, decoder)
    assert activation_bytes(shape, precision, 2, 96, False, logits=False) == pytest.approx(body, rel=0.03)
    logits_saved = _saved_bytes(model, policy_loss) - body
    logits_planned = activation_bytes(shape, precision, 2, 96, False, True) - activation_bytes(
        shape, precision, 2, 96, False, False)
    assert logits_saved <= logits_planned  # the plan adds what is alive but not saved

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = _saved_bytes(model, decoder)
    planned = activation_bytes(shape, precision, 2, 96, True, logits=False)
    assert checkpointed <= planned < body / 2


def test_six_point_seven_b_config_fits_its_nodes_and_agrees_with_deepspeed():
    done = subprocess.run([sys.executable, "-m", "cluster.cli", "plan", "--config", str(BIG), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout.strip().splitlines()[-1])
    assert plan["fits"] is True and plan["gpu_memory_gib"] == 80 and plan["gpus_per_node"] == 8
    assert plan["model"]["params"] == 6_740_512_768
    assert plan["deepspeed_estimate"] == {"policy": plan["learner"]["policy_states"],
                                          "critic": plan["learner"]["critic_states"]}
    assert sum(plan["learner"].values()) <= 80 * GIB
    assert plan["rollout"]["kv_cache_tokens"] >= plan["rollout"]["seq_len"]


def test_preflight_refuses_an_oversized_job_naming_the_largest_consumer():
    cfg = load_config(BIG, ["learner.micro_batch_size=4"])
    with pytest.raises(ConfigError) as refused:
        check_memory_plan(cfg)
    message = str(refused.value)
    assert "largest consumer is activations" in message and "of 80 GiB" in message
    assert "learner.micro_batch_size=1" in message  # a change that fits, by its key
    cfg = load_config(BIG, ["learner.zero_stage=2"])
    with pytest.raises(ConfigError, match="largest consumer is policy_states.*learner.zero_stage=3"):
        check_memory_plan(cfg)
    assert check_memory_plan(load_config(BIG)).fits is True
    cfg = load_config(BIG, ["cluster.gpu_memory_gb=10", "learner.zero_stage=2"])
    with pytest.raises(ConfigError, match="none of the changes tried fits"):
        check_memory_plan(cfg)
    tried = make_plan(cfg, *load_shape(cfg.model)).suggestions
    assert all(not s["fits"] for s in tried)
    # offload implies ZeRO-3: the pair "ZeRO-3 + offload" repeats "offload" and is left out
    assert not [s for s in tried if "zero_stage=3 + ZeRO-3" in s["change"]], tried


def test_preflight_checks_vllm_share_and_learner_node():
    cfg = load_config(BIG, ["rollout.vllm_gpu_memory_utilization=0.15"])
    with pytest.raises(ConfigError, match="KV cache"):
        check_memory_plan(cfg)
    cfg = load_config(BIG, ["cluster.gpus_per_node=2"])
    with pytest.raises(ConfigError, match="must be on one node"):
        check_memory_plan(cfg)


def test_cpu_job_is_not_refused():
    """The CPU default with a GPU memory too small for anything is still not refused."""
    cfg = load_config(None, ["cluster.gpu_memory_gb=0.001"])
    plan = check_memory_plan(cfg)
    assert plan is not None and not plan.gpu_job and plan.fits is None


def test_plan_without_declared_memory_is_not_checked():
    plan = make_plan(load_config(BIG, ["cluster.gpu_memory_gb=null"]), *load_shape(load_config(BIG).model))
    assert plan.fits is None and plan.learner["activations"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--model-config", "/nonexistent/config.json"], "--model-config: '/nonexistent/config.json' does not exist"),
    (["model.path=org/not-on-this-machine"], "model.path 'org/not-on-this-machine': no config.json"),
])
def test_bad_model_inputs_are_named(argv, message, capsys):
    from cluster.cli import main

    assert main(["plan", "--config", str(BIG), *argv]) == 2
    assert message in capsys.readouterr().err


def test_unsupported_architecture_is_named(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}))
    with pytest.raises(ConfigError, match=r"model_type 'gpt2' cannot be planned"):
        load_shape(load_config().model, str(bad))


def test_plan_prints_deepspeeds_zero2_estimate_beside_ours(capsys):
    from cluster.cli import main

    assert main(["plan", "--config", str(BIG), "learner.zero_stage=2", "--json"]) == 1  # does not fit: exit 1
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plan["fits"] is False and plan["knobs"]["zero_stage"] == 2
    assert plan["deepspeed_estimate"] == {"policy": plan["learner"]["policy_states"],
                                          "critic": plan["learner"]["critic_states"]}


def test_a_critic_free_estimator_plans_no_critic():
    with_critic = subprocess.run([sys.executable, "-m", "cluster.cli", "plan", "--config", str(BIG), "--json"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=300)
    grpo = subprocess.run([sys.executable, "-m", "cluster.cli", "plan", "--config", str(BIG), "--json",
                           "learner.advantage_estimator=grpo"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert grpo.returncode == 0, grpo.stderr
    a, b = (json.loads(d.stdout.strip().splitlines()[-1])["learner"] for d in (with_critic, grpo))
    assert a["critic_states"] > 0 and b["critic_states"] == 0
    assert b["policy_states"] == a["policy_states"]
