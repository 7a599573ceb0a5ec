"""A Hugging Face model from a training checkpoint (`execrl export`, and the end of
`execrl train`).

`execrl train` writes DeepSpeed checkpoints (run/checkpoints/step_*/policy/...), which
neither transformers, vLLM nor `execrl eval --model` can load.  This reads the policy's
weights straight from the checkpoint files, without building an engine or a process
group: ZeRO-0/1/2 checkpoints hold the whole module in the training dtype
(`mp_rank_00_model_states.pt`); under ZeRO-3 each rank's file holds empty placeholders, so
the shards are consolidated from the optimizer files with DeepSpeed's own
`zero_to_fp32` and cast to the training dtype (which is how the engine derives its
16-bit weights from the fp32 master copy).  The architecture and the tokenizer come from
the model the run trained (recorded in the run's `model.json`, or `--model`); the result
is written with `save_pretrained` (safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

LATEST = "latest"
RUN_MODEL = "model.json"  # in the run directory: the model directory RL started from


def record_run_model(run_dir: Path, model_dir: str) -> None:
    """Say which model the run trains (after any SFT warm start), for a later export."""
    (Path(run_dir) / RUN_MODEL).write_text(json.dumps({"model_dir": str(model_dir)}) + "\n")


def find_step(path: Path) -> Path:
    """The step directory that `path` names: itself, or the one `latest` points at in
    path or path/checkpoints."""
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if (path / "policy").is_dir():
        return path
    for root in (path, path / "checkpoints"):
        if (root / LATEST).is_file():
            step = root / (root / LATEST).read_text().strip()
            if not (step / "policy").is_dir():
                raise FileNotFoundError(f"{root / LATEST} names {step.name}, which has no policy/ checkpoint")
            return step
    raise FileNotFoundError(f"{str(path)!r} is not a checkpoint: no policy/ directory and no {LATEST} file in it "
                            "or in its checkpoints/ (expected what `execrl train` writes: run/checkpoints/step_*)")


def model_of_run(step: Path) -> str:
    """The model the run trained: recorded in the run directory (two levels above the
    step) by `execrl train`, or, for runs from before that record, model.path from the
    run's config.yaml when the run started RL from it directly."""
    import yaml

    recorded = step.parent.parent / RUN_MODEL
    if recorded.is_file():
        return json.loads(recorded.read_text())["model_dir"]
    config = step.parent.parent / "config.yaml"
    if config.is_file():
        data = yaml.safe_load(config.read_text()) or {}
        path = (data.get("model") or {}).get("path")
        sft_steps = ((data.get("learner") or {}).get("sft") or {}).get("steps", 1)
        if path and sft_steps == 0:
            return path
    raise ValueError(f"cannot tell which model {step} was trained from (the run's config.yaml names no model.path, "
                     "or the run started from an SFT warm start): pass --model DIR, the model the run trained")


def policy_weights(step: Path):
    """The policy's full state dict in its training dtype, from any ZeRO stage."""
    import torch

    policy = step / "policy"
    whole = policy / "mp_rank_00_model_states.pt"
    if whole.is_file():  # ZeRO 0-2: the module itself
        return torch.load(whole, map_location="cpu", weights_only=False)["module"]
    shards = sorted(policy.glob("zero_pp_rank_*_mp_rank_00_model_states.pt"))
    if not shards:
        raise FileNotFoundError(f"{policy} holds no DeepSpeed model states (mp_rank_00_model_states.pt or "
                                "zero_pp_rank_*_mp_rank_00_model_states.pt)")
    import learner.dist  # noqa: F401 - DS_ACCELERATOR before deepspeed loads
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    ds_config = torch.load(shards[0], map_location="cpu", weights_only=False).get("ds_config", {})
    dtype = torch.bfloat16 if ds_config.get("bf16", {}).get("enabled") else (
        torch.float16 if ds_config.get("fp16", {}).get("enabled") else torch.float32)
    state = get_fp32_state_dict_from_zero_checkpoint(str(step), tag="policy")
    return {name: tensor.to(dtype) for name, tensor in state.items()}


def lora_scale_of(step: Path) -> float:
    """alpha / r of the LoRA run that wrote checkpoint `step` (saved with the learner's state)."""
    state = json.loads((step / "client_state.json").read_text()).get("learner_state", {})
    if not state.get("lora_scale"):
        raise ValueError(f"checkpoint {step} holds LoRA adapters but no lora_scale in client_state.json")
    return float(state["lora_scale"])


def export_checkpoint(step: Path, model_dir: str, out: str | Path) -> Path:
    """Write the policy of checkpoint `step` with `save_pretrained` (safetensors) and the
    tokenizer of `model_dir` into `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from learner.lora import is_lora_state, merged_state_dict

    state = policy_weights(step)
    if is_lora_state(state):  # adapters were trained: fold them into the base weights
        state = merged_state_dict(state, lora_scale_of(step))
    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):  # no second copy of the weights: the checkpoint's tensors are assigned
        model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)  # tied: both names are saved
    if missing or unexpected:
        raise ValueError(f"checkpoint {step} does not match the model at {model_dir}: missing "
                         f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    dtype = next(iter(state.values())).dtype
    model.config.torch_dtype = dtype
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out
