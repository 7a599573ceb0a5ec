"""`execrl plan`: what a job needs per GPU and per node (cluster/plan.py), with DeepSpeed's
own estimate of the trained models' states beside ours.

The verb imports no model library until it runs, and then only DeepSpeed's estimator
functions (which take parameter counts: no model is built or loaded)."""

from __future__ import annotations

import argparse
import json


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("plan", help="GPU memory, host RAM and /dev/shm a training job needs")
    parser.add_argument("--config", default=None, help="YAML config (default: the CPU default)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. learner.zero_stage=3")
    parser.add_argument("--model-config", default=None, metavar="FILE.json",
                        help="the model's config.json, where model.path is not on this machine")
    parser.add_argument("--gpu-memory-gb", type=float, default=None,
                        help="GiB per GPU to check against (default: cluster.gpu_memory_gb)")
    parser.add_argument("--prompt-tokens", type=int, default=None,
                        help="longest prompt in tokens when rollout.vllm_max_model_len is unset (default 1024)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    parser.set_defaults(run=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from cluster.config import load_config
    from cluster.modelshape import load_shape
    from cluster.plan import DEFAULT_PROMPT_TOKENS, format_plan, make_plan

    cfg = load_config(args.config, args.overrides)
    shape, source = load_shape(cfg.model, args.model_config)
    if args.prompt_tokens is not None and args.prompt_tokens < 1:
        raise ValueError(f"--prompt-tokens must be >= 1, got {args.prompt_tokens}")
    plan = make_plan(cfg, shape, source, args.gpu_memory_gb, args.prompt_tokens or DEFAULT_PROMPT_TOKENS)
    print(format_plan(plan))
    estimate = deepspeed_estimates(plan)
    if estimate:
        print("DeepSpeed's estimator, per GPU (no offload): " + ", ".join(
            f"{name} {gpu / 2**30:.2f} GiB" for name, gpu in estimate.items()))
    if args.json:
        print(json.dumps({**plan.to_dict(), "deepspeed_estimate": estimate}))
    return 0 if plan.fits is not False else 1


def deepspeed_estimates(plan) -> dict[str, int]:
    """DeepSpeed's `estimate_zero2/zero3_model_states_mem_needs` for the policy and the
    critic (GPU bytes, no offload), for ZeRO-2 and -3 in 16-bit precision: the stages
    and precisions its estimators describe.  Empty otherwise or without DeepSpeed."""
    k = plan.knobs
    if k.zero_stage not in (2, 3) or k.precision == "fp32":
        return {}
    try:
        import learner.dist  # noqa: F401 - sets DS_ACCELERATOR before deepspeed loads
        if k.zero_stage == 2:
            from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs as zero2
            return {name: zero2(plan.model[key], num_gpus_per_node=k.ranks, cpu_offload=False)[1]
                    for name, key in (("policy", "params"), ("critic", "critic_params"))}
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs as zero3
        return {name: zero3(plan.model[key], plan.model["largest_layer_params"], num_gpus_per_node=k.ranks,
                            cpu_offload=False)[1]
                for name, key in (("policy", "params"), ("critic", "critic_params"))}
    except ImportError:
        return {}
