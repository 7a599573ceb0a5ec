"""What a job needs per GPU and per node, before anything is loaded: `execrl plan` and the
preflight (which refuses a job that does not fit the declared GPU memory).

A 6.7B PPO job holds three models (policy, critic, reference) and Adam's states; the
ways it runs out of GPU memory are known in advance, so they are computed here from the
config and the model's shapes (cluster/modelshape.py), all in bytes:

Model states per learner GPU, P parameters, N learner ranks (DeepSpeed's accounting,
runtime/zero/stage_1_and_2.py and stage3.py `estimate_zero*_model_states_mem_needs`):
16-bit training keeps 2P of 16-bit weights and 18P more (16-bit and fp32 gradients 2+4,
fp32 master weights 4, Adam's two moments 8); ZeRO-1 shards the fp32 weights and Adam's
moments and fp32 grads (16P/N, 16-bit grads stay whole), ZeRO-2 the 18P, ZeRO-3 all of
it plus one gathered module (4 x its largest module).  fp32 training: 4 weights + 4 grads
+ 8 Adam.  With optimizer offload (DeepSpeed's cpu_offload) only the 16-bit weights stay
(ZeRO-2: 2P; ZeRO-3: 2P/N + the gathered module).  The reference is frozen: its 16-bit
weights, sharded only under ZeRO-3 (learner/ds_config.py).  The critic is the policy's
decoder plus a value head (critic_params).

Activations, per micro-batch of m sequences of s tokens, for one model's forward and
backward (policy then critic: the policy's backward ends before the critic's forward,
so the peak is the larger of the two), e bytes per element of the model dtype:
  per token per layer   e (8h + 2 kv_dim + 4i) + 2h (4 - e)
  (saved for backward by a Llama/Qwen2 layer with SDPA attention, which stores no
  s x s matrix: norms' inputs and outputs, q/k/v before and after rotary, attention
  output, gate/up/SiLU/product of the MLP; RMSNorm saves its input in fp32)
  rest per token        e 3h + h (4 - e)   (final norm, output layer's input)
  policy logits         m s V (e + 8 + 4 [16-bit only])   (alive around the log-softmax,
  learner/ppo_math.py: the logits, which the update keeps, their fp32 copy, the
  temperature-scaled copy and the log-softmax; in backward gradients of the same sizes
  take the copies' place)
With gradient checkpointing each layer keeps only its input (e h per token) and one
layer's activations are alive again during its recomputation.  tests/test_plan.py
measures the saved tensors of real transformers models against these formulas.

vLLM takes `rollout.vllm_gpu_memory_utilization` of each rollout GPU; the weights (e P /
tensor-parallel size) come out of that share and the rest is KV cache, 2 x layers x
kv_dim x e bytes per token: it must hold at least one whole sequence.
Host RAM while loading: each learner rank loads a full fp32 copy of the model it is
building (learner/engines.py `load_policy`, one model at a time), each rollout actor a
copy in the job's dtype.  /dev/shm: the object-store weight sync publishes the policy in
the job's dtype (e P) into Ray's object store (shared memory) on the learner's node.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from cluster.modelshape import ModelShape

GIB = 1024**3
DEFAULT_PROMPT_TOKENS = 1024  # prompt budget when rollout.vllm_max_model_len is unset
ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True)
class Knobs:
    """The settings a plan depends on (learner.gradient_checkpointing and
    learner.offload_optimizer among them); the alternatives the preflight suggests vary
    them.  LoRA (learner.lora_rank) is not planned: the policy is counted as fully
    trained, an upper bound."""

    precision: str
    zero_stage: int
    ranks: int
    micro_batch: int
    seq_len: int
    gradient_checkpointing: bool = False
    offload_optimizer: bool = False
    critic: bool = True  # learner.advantage_estimator gae; the critic-free estimators build none


def trainable_states(params: int, largest: int, precision: str, stage: int, ranks: int, offload: bool = False) -> int:
    """Bytes per GPU of a trained model's weights, gradients and Adam states."""
    n, p = ranks, params
    if precision == "fp32":
        full = {0: 16 * p, 1: 8 * p + 8 * p / n, 2: 4 * p + 12 * p / n, 3: 16 * p / n + 4 * largest}[stage]
        if offload:
            full = 4 * p / n + 4 * largest if stage == 3 else 4 * p
        return int(full)
    if offload and stage >= 2:
        return int(4 * largest + 2 * p / n) if stage == 3 else 2 * p
    return int({0: 20 * p, 1: 4 * p + 16 * p / n, 2: 2 * p + 18 * p / n, 3: 4 * largest + 18 * p / n}[stage])


def frozen_states(params: int, largest: int, precision: str, stage: int, ranks: int) -> int:
    """Bytes per GPU of the frozen reference: its weights, sharded only under ZeRO-3."""
    e = ELEMENT_BYTES[precision]
    return int(e * params / ranks + e * largest) if stage == 3 else e * params


def activation_bytes(shape: ModelShape, precision: str, micro: int, seq: int, checkpointing: bool,
                     logits: bool) -> int:
    """Bytes saved for backward by one micro-batch (formula in the module docstring)."""
    e, h = ELEMENT_BYTES[precision], shape.hidden_size
    layer = e * (8 * h + 2 * shape.kv_dim + 4 * shape.intermediate_size) + 2 * h * (4 - e)
    rest = e * 3 * h + h * (4 - e)
    per_token = (shape.num_layers * e * h + layer if checkpointing else shape.num_layers * layer) + rest
    tokens = micro * seq
    logit_bytes = e + 8 + (4 if e < 4 else 0)
    return tokens * per_token + (tokens * shape.vocab_size * logit_bytes if logits else 0)


def learner_gpu(shape: ModelShape, k: Knobs) -> dict[str, int]:
    """Per learner GPU, by consumer (bytes)."""
    largest = shape.largest_layer_params()
    return {
        "policy_states": trainable_states(shape.params(), largest, k.precision, k.zero_stage, k.ranks,
                                          k.offload_optimizer),
        "critic_states": trainable_states(shape.critic_params(), largest, k.precision, k.zero_stage, k.ranks,
                                          k.offload_optimizer) if k.critic else 0,
        "reference_weights": frozen_states(shape.params(), largest, k.precision, k.zero_stage, k.ranks),
        "activations": max(
            activation_bytes(shape, k.precision, k.micro_batch, k.seq_len, k.gradient_checkpointing, logits=True),
            activation_bytes(shape, k.precision, k.micro_batch, k.seq_len, k.gradient_checkpointing, logits=False)),
    }


@dataclass
class Plan:
    model: dict
    knobs: Knobs
    gpu_memory_gib: float | None
    gpus_per_node: int | None
    learner: dict[str, int] | None  # per learner GPU; None when the learner has no GPU
    rollout: dict[str, float] | None  # per rollout GPU; None when rollout has no GPU
    node: dict[str, int]
    suggestions: list[dict]
    problems: list[str]

    @property
    def gpu_job(self) -> bool:
        return self.learner is not None or self.rollout is not None

    @property
    def fits(self) -> bool | None:
        """None when there is nothing to check (a CPU job, or no GPU memory declared)."""
        if not self.gpu_job or self.gpu_memory_gib is None:
            return None
        return not self.problems

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items()}
        out["fits"], out["gpu_job"] = self.fits, self.gpu_job
        return out


def make_plan(cfg, shape: ModelShape, source: str, gpu_memory_gib: float | None = None,
              prompt_tokens: int = DEFAULT_PROMPT_TOKENS) -> Plan:
    """The whole plan for TrainConfig `cfg` (cluster.gpu_memory_gb unless overridden)."""
    cluster, learner, rollout = cfg.cluster, cfg.learner, cfg.rollout
    memory = gpu_memory_gib if gpu_memory_gib is not None else cluster.gpu_memory_gb
    per_node = cluster.gpus_per_node
    ranks = max(1, learner.num_workers)
    seq = rollout.vllm_max_model_len or min(prompt_tokens + rollout.max_new_tokens, shape.max_positions)
    micro = max(1, min(learner.micro_batch_size, learner.minibatch_size // ranks))  # as learner/ds_config.py
    knobs = Knobs(learner.precision, learner.zero_stage, ranks, micro, seq, learner.gradient_checkpointing,
                  learner.offload_optimizer, critic=learner.uses_critic)
    learner_on_gpu = learner.num_workers >= 1 and learner.gpus_per_worker > 0
    rollout_on_gpu = rollout.gpus_per_actor > 0
    e = ELEMENT_BYTES[learner.precision]
    model = {"source": source, "params": shape.params(), "critic_params": shape.critic_params(),
             "largest_layer_params": shape.largest_layer_params(), "layers": shape.num_layers,
             "hidden_size": shape.hidden_size, "vocab_size": shape.vocab_size, "seq_len": seq}
    plan = Plan(model, knobs, memory, per_node, learner_gpu(shape, knobs) if learner_on_gpu else None,
                _rollout_gpu(shape, cfg, e, memory, seq) if rollout_on_gpu else None,
                _node(shape, cfg, e, ranks, per_node), [], [])
    if memory is not None:
        plan.problems = _problems(plan, cfg, memory)
        if plan.learner is not None and sum(plan.learner.values()) > memory * GIB:
            plan.suggestions = _suggestions(shape, knobs, memory, learner.minibatch_size)
    return plan


def _rollout_gpu(shape: ModelShape, cfg, e: int, memory: float | None, seq: int) -> dict[str, float]:
    r = cfg.rollout
    tp = r.vllm_tensor_parallel_size if r.backend == "vllm" else 1
    weights = e * shape.params() / tp
    kv_per_token = 2 * shape.num_layers * shape.kv_dim * e / tp
    out = {"backend_weights": int(weights), "kv_bytes_per_token": kv_per_token, "seq_len": seq,
           "engines_per_gpu": max(1, math.floor(1 / r.gpus_per_actor + 1e-9)) if r.gpus_per_actor < 1 else 1}
    if r.backend == "vllm" and memory is not None:
        share = r.vllm_gpu_memory_utilization * memory * GIB
        out["vllm_share"] = int(share)
        out["kv_cache"] = int(share - weights)
        out["kv_cache_tokens"] = int(max(0.0, share - weights) // kv_per_token)
    return out


def _node(shape: ModelShape, cfg, e: int, ranks: int, per_node: int | None) -> dict[str, int]:
    learner, rollout = cfg.learner, cfg.rollout
    learner_gpus = learner.num_workers * learner.gpus_per_worker
    rollout_gpus = rollout.num_actors * rollout.gpus_per_actor
    # learner ranks load one fp32 model at a time (the largest of policy and critic)
    loading_learner = ranks * 4 * max(shape.params(), shape.critic_params())
    out = {"learner_gpus": learner_gpus, "rollout_gpus": rollout_gpus,
           "host_ram_loading_learner_node": loading_learner,
           "host_ram_loading_per_rollout_actor": e * shape.params(),
           "dev_shm_weight_sync": e * shape.params()}
    if per_node:
        out["nodes"] = math.ceil((learner_gpus + rollout_gpus) / per_node) if learner_gpus + rollout_gpus else 0
    return out


def _problems(plan: Plan, cfg, memory: float) -> list[str]:
    """Why the job does not fit (empty: it fits)."""
    out = []
    limit = memory * GIB
    if plan.learner is not None:
        total = sum(plan.learner.values())
        if total > limit:
            name, size = max(plan.learner.items(), key=lambda kv: kv[1])
            out.append(f"a learner GPU needs {total / GIB:.1f} GiB of {memory:g} GiB (cluster.gpu_memory_gb); "
                       f"the largest consumer is {name} ({size / GIB:.1f} GiB)")
    if plan.rollout is not None and "vllm_share" in plan.rollout:
        r = plan.rollout
        engines = r["engines_per_gpu"]
        if engines * cfg.rollout.vllm_gpu_memory_utilization > 1:
            out.append(f"{engines} vLLM engines share a GPU (rollout.gpus_per_actor {cfg.rollout.gpus_per_actor:g}) "
                       f"and each takes rollout.vllm_gpu_memory_utilization "
                       f"{cfg.rollout.vllm_gpu_memory_utilization:g} of it")
        if r["kv_cache_tokens"] < r["seq_len"]:
            out.append(f"vLLM's share of a rollout GPU ({r['vllm_share'] / GIB:.1f} GiB) leaves KV cache for "
                       f"{r['kv_cache_tokens']} tokens after the weights ({r['backend_weights'] / GIB:.1f} GiB); "
                       f"one sequence needs {r['seq_len']}: raise rollout.vllm_gpu_memory_utilization or "
                       "rollout.vllm_tensor_parallel_size")
    if plan.gpus_per_node and plan.node["learner_gpus"] > plan.gpus_per_node:
        out.append(f"the learner's {plan.node['learner_gpus']:g} GPUs must be on one node (learner/group.py) but "
                   f"cluster.gpus_per_node is {plan.gpus_per_node}")
    return out


ALTERNATIVES = (  # (what to change, is it a config key today, the change)
    ("learner.zero_stage=3", True, {"zero_stage": 3}),
    ("learner.micro_batch_size=1", True, {"micro_batch": 1}),
    ("learner.gradient_checkpointing=true", True, {"gradient_checkpointing": True}),
    ("learner.zero_stage=3 learner.offload_optimizer=true", True, {"offload_optimizer": True, "zero_stage": 3}),
)


def _suggestions(shape: ModelShape, knobs: Knobs, memory: float, minibatch: int) -> list[dict]:
    """Single changes with the per-GPU total each would give; pairs only when no single
    change fits."""
    singles = [a for a in ALTERNATIVES if not all(getattr(knobs, k) == v for k, v in a[2].items())]
    seen: set = set()  # a pair that changes what a single change does is not repeated
    out = _try(shape, knobs, memory, minibatch, [[a] for a in singles], seen)
    if not any(s["fits"] for s in out):
        pairs = [[a, b] for i, a in enumerate(singles) for b in singles[i + 1:]]
        out += _try(shape, knobs, memory, minibatch, pairs, seen)
    return out


def _try(shape: ModelShape, knobs: Knobs, memory: float, minibatch: int, combos: list, seen: set) -> list[dict]:
    out = []
    for combo in combos:
        changes = {k: v for _, _, change in combo for k, v in change.items()}
        trial = replace(knobs, **changes)
        if minibatch % (trial.micro_batch * trial.ranks):
            continue
        total = sum(learner_gpu(shape, trial).values())
        key = tuple(sorted(changes.items()))
        if key in seen:
            continue
        seen.add(key)
        out.append({"change": " + ".join(c[0] for c in combo), "config_keys_only": all(c[1] for c in combo),
                    "learner_gpu_gib": round(total / GIB, 1), "fits": total <= memory * GIB})
    return out


def format_plan(plan: Plan) -> str:
    """The plan as a table (GiB)."""
    g = lambda b: f"{b / GIB:8.2f} GiB"  # noqa: E731
    m, k = plan.model, plan.knobs
    lines = [f"model: {m['params'] / 1e9:.3f}B parameters (critic {m['critic_params'] / 1e9:.3f}B) from {m['source']}",
             f"learner: {k.ranks} rank(s), ZeRO-{k.zero_stage}, {k.precision}, micro-batch {k.micro_batch} x "
             f"{k.seq_len} tokens"]
    if plan.learner is not None:
        lines.append("per learner GPU:")
        lines += [f"  {name:<22}{g(v)}" for name, v in plan.learner.items()]
        lines.append(f"  {'total':<22}{g(sum(plan.learner.values()))}")
    if plan.rollout is not None:
        r = plan.rollout
        lines.append("per rollout GPU:")
        lines.append(f"  {'weights':<22}{g(r['backend_weights'])}")
        if "vllm_share" in r:
            lines.append(f"  {'vLLM share':<22}{g(r['vllm_share'])}  (KV cache {g(r['kv_cache']).strip()}: "
                         f"{r['kv_cache_tokens']} tokens)")
    n = plan.node
    lines.append(f"GPUs: learner {n['learner_gpus']:g}, rollout {n['rollout_gpus']:g}"
                 + (f"; {n['nodes']} node(s) of {plan.gpus_per_node}" if "nodes" in n else ""))
    lines.append(f"host RAM while loading: learner node {g(n['host_ram_loading_learner_node']).strip()}, "
                 f"each rollout actor {g(n['host_ram_loading_per_rollout_actor']).strip()}")
    lines.append(f"/dev/shm for the object-store weight sync: {g(n['dev_shm_weight_sync']).strip()}")
    if not plan.gpu_job:
        lines.append("CPU job: no GPUs asked, nothing checked against GPU memory")
    elif plan.gpu_memory_gib is None:
        lines.append("not checked: set cluster.gpu_memory_gb (or pass --gpu-memory-gb)")
    else:
        lines.append(f"fits {plan.gpu_memory_gib:g} GiB GPUs" if plan.fits else "DOES NOT FIT:")
        lines += [f"  {p}" for p in plan.problems]
        for s in plan.suggestions:
            lines.append(f"  {'fits' if s['fits'] else 'still too big'} with {s['change']}: "
                         f"{s['learner_gpu_gib']} GiB per learner GPU")
    return "\n".join(lines)
