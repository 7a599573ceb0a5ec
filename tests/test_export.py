"""`execrl export`: a training checkpoint becomes a Hugging Face model that transformers and
`execrl eval --model` load, with exactly the learner's weights."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from cluster.cli import main
from cluster.config import load_config
from cluster.train import run_training
from learner.bench import synthetic_batch
from learner.config import LearnerConfig
from learner.ppo import PPOLearner
from problems.convert import write_problems
from problems.load import load_problems

TINY_RUN = ["learner.sft.steps=0", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
            "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=1", "eval_problems=2",
            "rollout.max_new_tokens=32", "wandb.mode=disabled", "checkpoint_every=1", "iterations=1"]


def _assert_same_weights(exported_dir, expected: dict[str, torch.Tensor]) -> None:
    exported = AutoModelForCausalLM.from_pretrained(exported_dir).state_dict()
    assert set(exported) == set(expected)
    for name, tensor in expected.items():
        assert exported[name].dtype == tensor.dtype and torch.equal(exported[name], tensor), name


@pytest.mark.slow
def test_export_of_a_training_run_loads_and_evaluates(ray_session, tmp_path, tiny_model_dir, capsys):
    run, out = tmp_path / "run", tmp_path / "hf"
    cfg = load_config(None, TINY_RUN + [f"model.path={tiny_model_dir}", f"output_dir={run}",
                                        f"model.cache_dir={tmp_path / 'cache'}"])
    run_training(cfg, log=lambda *_: None)
    assert main(["export", str(run), "--out", str(out)]) == 0  # the model recorded in the run directory
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg.learner)  # the learner's own view of the checkpoint
    learner.load_checkpoint(run / "checkpoints")
    trained = learner.policy_state_dict()
    _assert_same_weights(out, trained)
    _assert_same_weights(run / "hf", trained)  # `execrl train` exported its final policy itself
    assert json.loads((run / "model.json").read_text())["model_dir"] == str(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert any(not torch.equal(base[k], v) for k, v in trained.items())  # training moved the weights

    problems = tmp_path / "few.jsonl"
    write_problems(load_problems("bundled:heldout").problems[:3], problems)
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--problems", str(problems), "-n", "2", "-k", "1",
                 "--out", str(tmp_path / "eval.jsonl"), "rollout.max_new_tokens=32"]) == 0
    assert "pass@1" in capsys.readouterr().out
    assert len((tmp_path / "eval.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("tied", [False, True])
def test_zero3_bf16_checkpoint_exports_the_learners_weights(tiny_model_dir, tiny_tied_model_dir, tmp_path, tied,
                                                           capsys):
    """Under ZeRO-3 the model files hold empty placeholders: the export consolidates the
    shards and keeps the training dtype (tied embeddings stay tied)."""
    if tied:
        tiny_model_dir = tiny_tied_model_dir
    cfg = LearnerConfig(zero_stage=3, precision="bf16", minibatch_size=4, micro_batch_size=4, lr=1e-3)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    learner.update(synthetic_batch(2048, 4, 6, 8, seed=0))
    learner.save_checkpoint(tmp_path / "checkpoints", step=1)
    expected = learner.policy_state_dict()
    assert main(["export", str(tmp_path / "checkpoints" / "step_000001"), "--out", str(tmp_path / "hf"),
                 "--model", str(tiny_model_dir)]) == 0
    _assert_same_weights(tmp_path / "hf", expected)
    other = tmp_path / "one-layer"  # a model the checkpoint does not fit is refused, naming the keys
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    assert main(["export", str(tmp_path / "checkpoints"), "--out", str(tmp_path / "x"), "--model", str(other)]) == 2
    assert "does not match the model" in capsys.readouterr().err
    if tied:
        model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"


def test_export_names_what_is_wrong(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "hf")]) == 2
    assert "is not a checkpoint: no policy/ directory" in capsys.readouterr().err
    step = tmp_path / "run" / "checkpoints" / "step_000003"
    (step / "policy").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "latest").write_text("step_000003\n")
    (tmp_path / "run" / "config.yaml").write_text("model:\n  path: null\nlearner:\n  sft:\n    steps: 450\n")
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 2
    assert "pass --model DIR" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf"), "--model", str(tmp_path)]) == 2
    assert "holds no DeepSpeed model states" in capsys.readouterr().err
