"""`execrl bench learner`: what DeepSpeed costs over plain torch for one PPO update.

Both sides run the same PPOLearner (same experience, losses, micro-batching, gradient
accumulation, clipping, torch AdamW) on the same model directory and the same synthetic
batch; only the engines differ: DeepSpeed engines, or `TorchEngine`, the few lines of
plain torch that do what a ZeRO-0 engine does.  Each side runs in its own spawned
process so that its peak RSS is its own.  tokens/s counts the batch's non-padding
tokens per update (one update = experience + `ppo_epochs` passes).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from learner.batches import PPOBatch
from learner.config import LearnerConfig
from learner.critic import ValueModel
from learner.engines import PPOEngines, load_policy


class TorchEngine(nn.Module):
    """The Engine protocol in plain torch: backward scales by 1/accumulation, step clips and
    steps AdamW every `accum` micro-batches.  `lr=None` makes a frozen (reference) engine."""

    def __init__(self, module: nn.Module, cfg: LearnerConfig, lr: float | None, micro: int, accum: int):
        super().__init__()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.module, self.micro, self.accum, self.grad_clip = module.to(self.device), micro, accum, cfg.grad_clip
        self.optimizer = None if lr is None else torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        if lr is None:
            module.requires_grad_(False)
        self.micro_steps = 0

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.accum).backward()

    def step(self) -> None:
        self.micro_steps += 1
        if self.micro_steps % self.accum == 0:
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def train_micro_batch_size_per_gpu(self) -> int:
        return self.micro

    def gradient_accumulation_steps(self) -> int:
        return self.accum


def torch_ppo_engines(model_dir: str | Path, cfg: LearnerConfig) -> PPOEngines:
    """The same three models as build_ppo_engines, on plain torch engines (one process)."""
    micro = min(cfg.micro_batch_size, cfg.minibatch_size)
    accum = cfg.minibatch_size // micro
    critic = (TorchEngine(ValueModel.from_pretrained(cfg.critic_path or model_dir), cfg, cfg.critic_lr, micro, accum)
              if cfg.uses_critic else None)
    return PPOEngines(TorchEngine(load_policy(model_dir), cfg, cfg.lr, micro, accum), critic,
                      TorchEngine(load_policy(model_dir), cfg, None, micro, 1).eval())


def synthetic_batch(vocab_size: int, batch_size: int, prompt_len: int, completion_len: int, seed: int = 0) -> PPOBatch:
    """Random tokens with ragged lengths, a third of completion tokens unexecuted, mixed rewards."""
    g = torch.Generator().manual_seed(seed)
    prompts, completions, executed = [], [], []
    for _ in range(batch_size):
        p = int(torch.randint(prompt_len // 2, prompt_len + 1, (), generator=g))
        c = int(torch.randint(completion_len // 2, completion_len + 1, (), generator=g))
        prompts.append(torch.randint(2, vocab_size, (p,), generator=g).tolist())
        completions.append(torch.randint(2, vocab_size, (c,), generator=g).tolist())
        executed.append((torch.rand(c, generator=g) > 0.33).tolist())
    rewards = torch.tensor([1.0, -0.3, -0.6, -1.0]).repeat(batch_size // 4 + 1)[:batch_size].tolist()
    return PPOBatch.from_sequences(prompts, completions, rewards, pad_id=1, executed=executed)


@dataclass
class BenchSpec:
    model_dir: str
    size: str
    zero: int = 0
    steps: int = 5
    batch_size: int = 32
    prompt_len: int = 64
    completion_len: int = 192
    threads: int = 2
    estimator: str = "gae"  # learner.advantage_estimator of this side


DIST_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(conn, spec: BenchSpec, impl: str) -> None:
    """One side of the comparison, in its own process: build, warm up, then one timed
    update per "step" message, so the parent can interleave the two sides and both see
    the same machine load.  Each side is a world of its own: the rendezvous variables a
    parent that already trained in-process left in the environment (its MASTER_PORT is
    bound by its own process group) are dropped, so the side picks a free port."""
    for key in DIST_ENV:
        os.environ.pop(key, None)
    torch.set_num_threads(spec.threads)
    torch.manual_seed(0)
    cfg = LearnerConfig(zero_stage=spec.zero, minibatch_size=spec.batch_size // 2, micro_batch_size=8,
                        advantage_estimator=spec.estimator)
    from learner.engines import build_ppo_engines
    from learner.ppo import PPOLearner

    rss_before = _rss_mb()
    engines = build_ppo_engines(spec.model_dir, cfg) if impl == "deepspeed" else torch_ppo_engines(spec.model_dir, cfg)
    learner = PPOLearner(engines, cfg)
    batch = synthetic_batch(engines.policy.module.config.vocab_size, spec.batch_size, spec.prompt_len, spec.completion_len)
    batch = replace(batch, group_ids=torch.arange(len(batch)) // 4)  # four samples per prompt
    first = learner.update(batch)
    conn.send(None)
    times = []
    while conn.recv() == "step":
        start = time.perf_counter()
        learner.update(batch)
        times.append(time.perf_counter() - start)
        conn.send(None)
    per_update = statistics.median(times)
    conn.send({"size": spec.size, "impl": impl, "estimator": spec.estimator, "zero": spec.zero,
               "s_per_update": per_update,
               "tokens_per_s": float(batch.attention_mask.sum()) / per_update,
               "peak_rss_mb": _rss_mb(), "rss_before_models_mb": rss_before,
               "first_policy_loss": first.policy_loss, "first_value_loss": first.value_loss})


def compare(spec: BenchSpec, impls: tuple[str, ...] = ("torch", "deepspeed")) -> list[dict]:
    """Plain torch against DeepSpeed on one spec."""
    return compare_sides([(impl, spec) for impl in impls])


def compare_sides(sides: list[tuple[str, BenchSpec]]) -> list[dict]:
    """Run the sides (engine kind, spec) in spawned processes, alternating timed updates
    between them so every side sees the same machine load."""
    ctx = multiprocessing.get_context("spawn")
    conns, procs, impls = [], [], [f"{impl} ({spec.estimator})" for impl, spec in sides]
    spec = sides[0][1]
    for impl, side_spec in sides:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, side_spec, impl), daemon=True)
        proc.start()
        child.close()  # the side's end lives in the side only: its death is an EOF here, not a hang
        conns.append(parent)
        procs.append(proc)
    try:
        for conn, impl, proc in zip(conns, impls, procs):
            _receive(conn, impl, proc)  # built and warmed up
        for i in range(spec.steps):
            for conn, impl, proc in list(zip(conns, impls, procs))[:: 1 if i % 2 == 0 else -1]:
                conn.send("step")
                _receive(conn, impl, proc)
        for conn in conns:
            conn.send("stop")
        return [_receive(conn, impl, proc) for conn, impl, proc in zip(conns, impls, procs)]
    finally:
        for proc in procs:
            proc.join(timeout=30)


def _receive(conn, impl: str, proc):
    try:
        return conn.recv()
    except EOFError:
        proc.join(timeout=10)
        raise RuntimeError(f"the {impl} side of the learner bench died (exit code {proc.exitcode}); "
                           "its traceback is on stderr") from None


def run_bench(sizes: list[str], zero: int = 0, steps: int = 5, model_dir: str | None = None, **kw) -> dict:
    """Plain torch vs DeepSpeed for each size; returns rows and the overhead ratios."""
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    rows, overhead = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = model_dir or str(init_model(Path(tmp) / size, size, corpus=list(stdlib_source_sample(300_000))))
            spec = BenchSpec(path, size, zero, steps, **kw)
            torch_row, ds_row = compare(spec)
            rows += [torch_row, ds_row]
            overhead[size] = torch_row["tokens_per_s"] / ds_row["tokens_per_s"]
    shared = {k: v for k, v in asdict(spec).items() if k not in ("model_dir", "size")}
    return {"zero": zero, "steps": steps, "spec": shared, "results": rows, "overhead": overhead}


def format_table(report: dict) -> str:
    s = report["spec"]
    lines = [f"PPO update (experience + 1 epoch), batch {s['batch_size']} x <= {s['prompt_len'] + s['completion_len']} tokens, "
             f"{s['threads']} threads, fp32, ZeRO-{report['zero']}, median of {report['steps']} updates",
             f"{'size':<6} {'impl':<10} {'tokens/s':>10} {'s/update':>9} {'peak RSS MB':>12} {'first loss (pg, vf)':>24}"]
    for r in report["results"]:
        lines.append(f"{r['size']:<6} {r['impl']:<10} {r['tokens_per_s']:>10,.0f} {r['s_per_update']:>9.3f} "
                     f"{r['peak_rss_mb']:>12,.0f} {r['first_policy_loss']:>11.6f} {r['first_value_loss']:>11.6f}")
    for size, ratio in report["overhead"].items():
        lines.append(f"{size}: DeepSpeed time / plain torch time = {ratio:.2f}x (target <= 1.2x)")
    return "\n".join(lines)
