"""The chat path end to end on CPU (`execrl train --config configs/tiny-chat.yaml`, shrunk):
a tiny model with a chat template, SFT on fenced answers, rollouts whose assistant turn is
pre-filled with the fence and the CCCS prefix and stopped at the closing fence, FGO on the
code that ran, rewards from the sandbox."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cluster.config import load_config
from cluster.train import run_training
from curriculum.prompt import build_prompt
from problems.load import load_problems

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["learner.sft.steps=60", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=1", "eval_problems=4",
         "rollout.max_new_tokens=96", "wandb.mode=disabled", "iterations=2", "checkpoint_every=0"]


@pytest.mark.slow
def test_the_chat_path_trains_end_to_end(ray_session, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(ROOT / "configs" / "tiny-chat.yaml",
                      SMALL + [f"model.cache_dir={tmp_path / 'cache'}", f"output_dir={run}"])
    run_training(cfg, log=lambda *_: None)
    model = json.loads((run / "model.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(run / "hf")
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.all_special_tokens  # exported with it
    problem = load_problems("bundled:rl").problems[0]
    prompt = build_prompt(problem, tokenizer, fmt=cfg.rollout.prompt_style())
    assert prompt.chat and prompt.head.endswith("<|im_start|>assistant\n```python\n")
    assert "You write correct, complete Python programs." in prompt.head and prompt.stop == ("```",)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "reward" in r]
    assert len(rows) == 2
    # every completion's closing fence and EOS lie after the code: FGO kept and counted them
    assert all(r["fgo/outside_code_tokens"] > 0 for r in rows)
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert samples and not any("```" in s["completion"] for s in samples)  # stopped at the closing fence
    # the SFT'd chat model writes code inside the pre-filled block: programs that compile
    assert sum(s["verdict"] != "compile_error" for s in samples) > len(samples) / 2, model
