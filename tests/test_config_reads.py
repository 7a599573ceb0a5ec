"""Every config key is read by some code path: a key nothing reads misleads the user who
sets it (`model.dtype` once said bfloat16 while rollouts ran in float32).

The real job runs with EXECRL_CONFIG_READS set, so every process (driver, Ray actors,
the learner) appends the config fields its code reads; the options a default run skips
are switched on for it (the learner in a Ray actor, sampling around stages, a window
that fills).  Keys only the vLLM backend reads are checked in that backend's source:
vLLM does not run in this venv (CI's vLLM lane runs its tests).
"""

import dataclasses
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from cluster.config import TrainConfig
from core.settings import READS_ENV

ROOT = Path(__file__).resolve().parents[1]
READ_ONLY_BY = {
    "rollout.vllm_gpu_memory_utilization": "actors/vllm_backend.py",
    "rollout.vllm_tensor_parallel_size": "actors/vllm_backend.py",
    "rollout.vllm_max_model_len": "actors/vllm_backend.py",
    "rollout.vllm_cpu_kvcache_gb": "actors/vllm_backend.py",
}
TRAIN = ["learner.sft.steps=20", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=2", "eval_problems=4",
         "rollout.max_new_tokens=48", "checkpoint_every=1", "iterations=2", "learner.num_workers=1",
         "curriculum.window=2", "curriculum.sample_around_stage=true", "learner.dynamic_sampling=true",
         "learner.lora_rank=4",  # LoRA: adapters on the Ray learner, merged weights to rollouts and the export
         # every reward term, so the static checks' weights and the discriminator's knobs are read
         "reward.name=custom", *[f"reward.weights.{t}=0.5" for t in ("tests", "passes", "executes", "compiles",
                                                                     "static", "discriminator")],
         "reward.discriminator.num_cpus=0", "reward.discriminator.max_tokens=64"]


def config_keys(cls=TrainConfig, prefix=""):
    """(dotted key, 'Class.field') for every key a user can set."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "follows" in f.metadata:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from config_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f"{cls.__name__}.{f.name}"


def _judge_samples(path: Path) -> None:
    rows = [{"problem_id": "HumanEval/2", "completion": "    return number % 1.0\n"},  # passes
            {"problem_id": "HumanEval/2", "completion": "    return 0.5\n"},  # wrong answer
            {"problem_id": "HumanEval/2", "completion": "    return 1 / 0\n"}]  # runtime error
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_every_config_key_is_read_by_a_real_run(tmp_path):
    reads = tmp_path / "reads.txt"
    env = {**os.environ, READS_ENV: str(reads), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    samples = tmp_path / "samples.jsonl"
    _judge_samples(samples)
    runs = [["train", *TRAIN, f"model.cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'run'}"],
            ["judge", "humaneval", "--samples", str(samples), "--workers", "1", "--out", str(tmp_path / "r.jsonl")]]
    for argv in runs:
        done = subprocess.run([sys.executable, "-m", "cluster.cli", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"execrl {argv[0]} failed:\n{done.stderr[-4000:]}"
    verdicts = [json.loads(line)["verdict"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert verdicts == ["pass", "wrong_answer", "runtime_error"]  # the paths that read the reward scale
    read = set(reads.read_text().split())
    unread = sorted(key for key, field in config_keys() if field not in read and key not in READ_ONLY_BY)
    assert not unread, f"config keys that no code path read in a real run: {unread}"


def test_vllm_only_keys_are_read_by_the_vllm_backend():
    keys = dict(config_keys())
    for key, module in READ_ONLY_BY.items():
        assert key in keys, f"{key} is no longer a config key: drop it from READ_ONLY_BY"
        assert f"cfg.{key.split('.')[-1]}" in (ROOT / module).read_text(), f"{module} does not read {key}"


def test_reads_are_recorded_only_for_real_reads(tmp_path):
    """asdict/replace/== read every field: they must not count, or the test above
    could never fail."""
    reads = tmp_path / "reads.txt"
    code = ("from dataclasses import replace\nfrom cluster.config import TrainConfig\n"
            "from core.settings import to_dict\n"
            "cfg = TrainConfig(); to_dict(cfg); replace(cfg.learner, lr=1.0); cfg == TrainConfig(); repr(cfg)\n"
            "cfg.learner.kl_beta\n")
    script = tmp_path / "reader.py"  # a file: code compiled from a string counts as dataclass machinery
    script.write_text(code)
    subprocess.run([sys.executable, str(script)], cwd=ROOT, env={**os.environ, READS_ENV: str(reads),
                                                                 "PYTHONPATH": str(ROOT)}, check=True, timeout=60)
    read = set(reads.read_text().split())
    assert "LearnerConfig.kl_beta" in read
    assert "LearnerConfig.critic_lr" not in read and "WandbConfig.project" not in read
