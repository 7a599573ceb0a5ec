"""`scripts/gpu-smoke`: the first thing to run on a GPU, in minutes, with almost nothing
installed.

Nothing in this repository has run on a GPU yet; this script is the shortest path from
"a GPU is at hand" to figures that say whether the GPU path holds: the DeepSpeed learner
in bf16 on CUDA under ZeRO-2 and ZeRO-3 taking a few PPO steps of the tiny model, the
transformers backend generating on the GPU, the memory plan's prediction
(cluster/plan.py `learner_gpu`) beside `torch.cuda.max_memory_allocated`, and the
log-probability gap between what generation reported and what the learner computes for
the same tokens at the same weights, both in bf16.

It needs only PyTorch, transformers and DeepSpeed (`pip install --no-build-isolation
deepspeed`, the 2 MB source package): no Ray, no vLLM, no network (the tiny model and
its tokenizer are made here by models/tiny.py from the interpreter's own stdlib).  The
import chain is kept that way on purpose and tested (tests/test_gpu_smoke.py runs this
module with ray and vllm made unimportable).

`--cpu` runs a reduced version (fewer steps, shorter completions) on the CPU, so a CPU
test checks the whole script end to end; there the memory figures are None.  The
figures go to a JSON file: --out, else $OUT/gpu-smoke.json, else ./gpu-smoke.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BUDGET_S = 480  # the whole run must fit in 8 minutes on one GPU
MiB = 2**20


@dataclass(frozen=True)
class SmokeSpec:
    """What one run does; `--cpu` shrinks it."""

    device: str = "cuda"
    size: str = "tiny"
    stages: tuple[int, ...] = (2, 3)
    steps: int = 3  # PPO updates per ZeRO stage
    prompts: int = 8
    samples: int = 4  # completions per prompt: prompts x samples sequences per update
    prompt_tokens: int = 48
    max_new_tokens: int = 64
    micro_batch: int = 8
    temperature: float = 1.0  # top-p 1: the sampler's log-probs are the full softmax's, as the learner's

    @classmethod
    def reduced_for_cpu(cls, size: str = "tiny") -> "SmokeSpec":
        return cls(device="cpu", size=size, steps=1, prompts=4, samples=2, prompt_tokens=24, max_new_tokens=16,
                   micro_batch=4)

    @property
    def sequences(self) -> int:
        return self.prompts * self.samples


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: the learner picks the CPU accelerator
    spec = SmokeSpec.reduced_for_cpu(args.size) if args.cpu else SmokeSpec(size=args.size, steps=args.steps)
    out = Path(args.out or Path(os.environ.get("OUT", ".")) / "gpu-smoke.json")
    report = run(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    print(f"figures written to {out}")
    return 0 if report["ok"] else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpu-smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the reduced CPU run (what the CPU test checks)")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"], help="model size (default tiny)")
    parser.add_argument("--steps", type=int, default=3, help="PPO updates per ZeRO stage (GPU run)")
    parser.add_argument("--out", default=None, help="JSON path (default: $OUT/gpu-smoke.json or ./gpu-smoke.json)")
    return parser


def run(spec: SmokeSpec) -> dict[str, Any]:
    """Every measurement, in one JSON-ready dict; `ok` is false if a check failed."""
    import torch

    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible to PyTorch; run with --cpu for the reduced CPU check")
    start = time.perf_counter()
    report: dict[str, Any] = {"spec": asdict(spec), "environment": environment(spec.device)}
    with tempfile.TemporaryDirectory(prefix="execrl-gpu-smoke-") as tmp:
        model_dir = make_model(Path(tmp), spec.size)
        report["generation"], rollouts = generate(model_dir, spec)
        report["learner"] = [learn(model_dir, spec, rollouts, stage) for stage in spec.stages]
    report["elapsed_s"] = time.perf_counter() - start
    report["checks"] = checks(report, spec)
    report["ok"] = all(report["checks"].values())
    return report


def environment(device: str) -> dict[str, Any]:
    import deepspeed
    import torch
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "deepspeed": deepspeed.__version__, "device": device, "cuda": torch.version.cuda}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_bytes=props.total_memory, bf16_supported=torch.cuda.is_bf16_supported())
    return env


def make_model(root: Path, size: str) -> Path:
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    return init_model(root / size, size, corpus=list(stdlib_source_sample(300_000)))


@dataclass
class Rollouts:
    """Generated sequences, with the sampler's log-probabilities, ready for a PPOBatch."""

    prompts: list[list[int]]
    completions: list[list[int]]
    logprobs: list[list[float]]
    pad_id: int


def generate(model_dir: Path, spec: SmokeSpec) -> tuple[dict[str, Any], Rollouts]:
    """The transformers backend samples on the device in bf16 (what actors/hf_backend.py does on GPU actors)."""
    import torch
    from transformers import AutoTokenizer

    from actors.hf_backend import HFBackend
    from core.rollout import GenerationRequest, SamplingSettings

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    backend = HFBackend(str(model_dir), device=spec.device, batch_size=spec.sequences, dtype="bfloat16", seed=0)
    text = Path(json.__file__).read_text()  # a fixed, local source of prompt text
    ids = tokenizer(text)["input_ids"]
    requests = [GenerationRequest(tuple(ids[k * spec.prompt_tokens:(k + 1) * spec.prompt_tokens]), spec.samples,
                                  f"p{k}", SamplingSettings(spec.temperature, 1.0, spec.max_new_tokens, seed=k))
                for k in range(spec.prompts)]
    backend.generate(requests[:1])  # warm-up (kernels, allocator)
    start = time.perf_counter()
    results = backend.generate(requests)
    seconds = time.perf_counter() - start
    on_device = next(backend.model.parameters()).device.type
    backend.close()
    del backend
    _free(torch)
    pairs = [(list(q.prompt_ids), c) for q, r in zip(requests, results) for c in r.completions]
    rollouts = Rollouts([p for p, _ in pairs], [list(c.token_ids) for _, c in pairs],
                        [list(c.logprobs) for _, c in pairs], tokenizer.pad_token_id or 0)
    tokens = sum(len(c) for c in rollouts.completions)
    return {"device": on_device, "dtype": "bfloat16", "sequences": len(pairs), "tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds}, rollouts


def learn(model_dir: Path, spec: SmokeSpec, rollouts: Rollouts, stage: int) -> dict[str, Any]:
    """A PPO learner in bf16 under ZeRO `stage`: the log-prob gap at the sampling weights,
    then `spec.steps` updates, peak memory beside the plan's prediction."""
    import torch

    from learner.config import LearnerConfig
    from learner.ppo import PPOLearner

    cuda = spec.device == "cuda"
    if cuda:
        _free(torch)
        torch.cuda.reset_peak_memory_stats()
    # zero_init goes through transformers' HfDeepSpeedConfig, which needs `accelerate` (peft brings it)
    zero_init = stage == 3 and _importable("accelerate")
    cfg = LearnerConfig(zero_stage=stage, precision="bf16", minibatch_size=spec.sequences,
                        micro_batch_size=spec.micro_batch, kl_beta=0.05, lr=1e-5, zero_init=zero_init)
    start = time.perf_counter()
    learner = PPOLearner.from_pretrained(model_dir, cfg, seed=0)
    setup_s = time.perf_counter() - start
    gap = logprob_gap(learner, rollouts, spec.temperature)
    batch = ppo_batch(rollouts, spec.temperature)
    stats, times = [], []
    for step in range(spec.steps):
        start = time.perf_counter()
        stats.append(learner.update(batch))
        times.append(time.perf_counter() - start)
    row = {"zero_stage": stage, "zero_init": zero_init, "precision": "bf16", "setup_s": setup_s, "steps": spec.steps,
           "seconds_per_step": sum(times) / len(times), "first_step_s": times[0],
           "policy_loss": [s.policy_loss for s in stats], "value_loss": [s.value_loss for s in stats],
           "approx_kl": [s.approx_kl for s in stats], "logprob_gap_max": gap[0], "logprob_gap_mean": gap[1],
           "logprob_tokens": gap[2], "module_dtype": str(next(learner.engines.policy.module.parameters()).dtype)}
    row.update(memory(model_dir, cfg, batch, cuda))
    del learner, stats
    _free(torch)
    return row


def logprob_gap(learner, rollouts: Rollouts, temperature: float) -> tuple[float, float, int]:
    """max and mean |sampler - learner| log-prob over every completion token, before any update."""
    import torch

    from learner.ppo import sequence_logprobs

    batch = ppo_batch(rollouts, temperature, with_logprobs=True).to(learner.device)
    with torch.no_grad():
        learner.engines.policy.eval()
        ours = sequence_logprobs(learner.engines.policy, batch.input_ids, batch.attention_mask, temperature)
    mask = batch.action_mask.bool()
    diff = (ours.float() - batch.old_logprobs.float())[mask].abs()
    return float(diff.max()), float(diff.mean()), int(mask.sum())


def ppo_batch(rollouts: Rollouts, temperature: float, with_logprobs: bool = False):
    """The rollouts as a PPO batch with fixed, mixed rewards (StepCoder's scale), so the
    updates have a signal to follow; the point is the mechanics on the device."""
    from learner.batches import PPOBatch

    scale = [1.0, -0.3, -0.6, -1.0]
    rewards = [scale[i % len(scale)] for i in range(len(rollouts.prompts))]
    return PPOBatch.from_sequences(rollouts.prompts, rollouts.completions, rewards, rollouts.pad_id,
                                   old_logprobs=rollouts.logprobs if with_logprobs else None, temperature=temperature)


def memory(model_dir: Path, cfg, batch, cuda: bool) -> dict[str, Any]:
    """The plan's per-GPU prediction for this learner and batch, and what CUDA measured."""
    import torch

    from cluster.modelshape import ModelShape
    from cluster.plan import Knobs, learner_gpu

    shape = ModelShape.from_config(json.loads((model_dir / "config.json").read_text()), str(model_dir))
    knobs = Knobs(precision=cfg.precision, zero_stage=cfg.zero_stage, ranks=1, micro_batch=cfg.micro_batch_size,
                  seq_len=int(batch.input_ids.shape[1]), critic=cfg.uses_critic)
    planned = learner_gpu(shape, knobs)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    return {"plan_bytes": sum(planned.values()), "plan_by_consumer": planned, "peak_allocated_bytes": peak,
            "peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
            "peak_over_plan": peak / sum(planned.values()) if cuda else None}


def checks(report: dict[str, Any], spec: SmokeSpec) -> dict[str, bool]:
    """What must hold for the GPU path to count as working (the figures are for reading)."""
    import math

    rows = report["learner"]
    return {
        "generated_on_device": report["generation"]["device"] == spec.device and report["generation"]["tokens"] > 0,
        "every_stage_stepped": [r["zero_stage"] for r in rows] == list(spec.stages)
        and all(len(r["policy_loss"]) == spec.steps for r in rows),
        "losses_finite": all(math.isfinite(x) for r in rows for x in r["policy_loss"] + r["value_loss"]),
        "learner_in_bf16": all(r["module_dtype"] == "torch.bfloat16" for r in rows),
        "logprob_gap_below_0.1": all(r["logprob_gap_max"] < 0.1 for r in rows),
        "within_8_minutes": report["elapsed_s"] < BUDGET_S,
    }


def format_report(report: dict[str, Any]) -> str:
    env, gen = report["environment"], report["generation"]
    lines = [f"gpu-smoke on {env.get('gpu', env['device'])}: torch {env['torch']}, transformers "
             f"{env['transformers']}, deepspeed {env['deepspeed']} ({report['elapsed_s']:.0f} s)",
             f"generation ({gen['device']}, bf16): {gen['tokens']} tokens in {gen['seconds']:.2f} s, "
             f"{gen['tokens_per_s']:.0f} tokens/s",
             f"{'ZeRO':>4} {'setup s':>8} {'s/step':>7} {'lp gap max':>10} {'lp gap mean':>11} "
             f"{'plan MiB':>9} {'peak MiB':>9} {'peak/plan':>9}  policy loss per step"]
    for r in report["learner"]:
        peak = "-" if r["peak_allocated_bytes"] is None else f"{r['peak_allocated_bytes'] / MiB:.1f}"
        ratio = "-" if r["peak_over_plan"] is None else f"{r['peak_over_plan']:.2f}"
        losses = ", ".join(f"{x:.4f}" for x in r["policy_loss"])
        lines.append(f"{r['zero_stage']:>4} {r['setup_s']:>8.1f} {r['seconds_per_step']:>7.2f} "
                     f"{r['logprob_gap_max']:>10.2e} {r['logprob_gap_mean']:>11.2e} {r['plan_bytes'] / MiB:>9.1f} "
                     f"{peak:>9} {ratio:>9}  {losses}")
    if any(r["zero_stage"] == 3 and not r["zero_init"] for r in report["learner"]):
        lines.append("ZeRO-3 loaded the model whole, then partitioned it: loading partitioned (learner.zero_init) "
                     "goes through transformers' HfDeepSpeedConfig, which needs `accelerate`")
    failed = [name for name, ok in report["checks"].items() if not ok]
    lines.append("checks: all passed" if not failed else f"checks FAILED: {', '.join(failed)}")
    return "\n".join(lines)


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _free(torch) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
