"""`execrl bench rollout`: a measured backend, an unavailable one reported (not an error)."""

from __future__ import annotations

import json

import pytest

from cluster.cli import main


@pytest.mark.slow
def test_bench_rollout_json(monkeypatch, capsys):
    import actors.bench

    monkeypatch.setattr(actors.bench, "find_vllm_python", lambda explicit=None: (None, "no vLLM in this test"))
    monkeypatch.setattr(actors.bench, "nccl_unavailable_reason", lambda: "no GPUs in this test")
    code = main(["bench", "rollout", "--sizes", "tiny", "--backends", "transformers,vllm", "--prompts", "2",
                 "--samples", "2", "--max-new-tokens", "8", "--syncs", "2", "--json"])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("batch:"))  # after any library warnings
    assert "tokens/s" in out[header + 1] and "unavailable: no vLLM in this test" in "\n".join(out)
    report = json.loads(out[-1])
    hf, vllm = report["results"]
    assert hf["backend"] == "transformers" and hf["available"] and hf["tokens"] > 0
    assert hf["tokens_per_s"] > 0 and hf["sync_s"] > 0 and hf["speedup_vs_transformers"] == 1.0
    assert hf["logprob_gap_max"] < 1e-3 and hf["policy_version_after"] == 2
    assert vllm == {"size": "tiny", "backend": "vllm", "available": False, "reason": "no vLLM in this test"}
    # each route end to end: bytes per sync (the tiny model's fp32 weights) and seconds per GB
    store, nccl = report["routes"]
    assert store["route"] == "object_store" and store["available"] and store["syncs"] == 2
    assert store["bytes_per_sync"] == 4 * _tiny_params()
    assert store["seconds_per_gb"] == pytest.approx(store["seconds_per_sync"] / (store["bytes_per_sync"] / 1e9))
    assert nccl == {"size": "tiny", "route": "nccl", "available": False, "reason": "no GPUs in this test"}
    text = "\n".join(out)
    assert "weight sync routes" in text and "nccl          not run: no GPUs in this test" in text


def _tiny_params() -> int:
    from models.sizes import SIZES
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample
    import tempfile

    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as tmp:
        model = init_model(tmp, "tiny", corpus=list(stdlib_source_sample(300_000)))
        return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).state_dict().values())


@pytest.mark.skipif(__import__("torch").cuda.device_count() >= 2, reason="a machine with two GPUs runs the route")
def test_the_nccl_route_says_why_it_does_not_run_here():
    import actors.bench

    assert "needs 2 CUDA devices, found" in actors.bench.nccl_unavailable_reason()


def test_bench_rollout_rejects_unknown_names(capsys):
    assert main(["bench", "rollout", "--backends", "tpu"]) == 2
    assert "unknown backend 'tpu'" in capsys.readouterr().err
    assert main(["bench", "rollout", "--routes", "pigeon"]) == 2
    assert "unknown route 'pigeon'; choose from object_store, nccl" in capsys.readouterr().err
