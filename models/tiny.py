"""Random-init causal LMs in Hugging Face format, made locally (`execrl model init`).

Everything downstream (learner, rollout backends, vLLM) loads models with
`from_pretrained(dir)`; a locally made model saved with `save_pretrained` exercises that
exact path without any download.  Sizes: tiny is about 1M parameters (what was measured
to learn the bundled problems on 2 CPU cores), small about 7M.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from models.sizes import ARCHS, MANIFEST, SIZES, ModelSize  # noqa: F401 - re-exported
from models.tokenizer import default_corpus, train_tokenizer




def build_config(size: ModelSize, arch: str, tied: bool, tokenizer: PreTrainedTokenizerFast):
    """A Llama or Qwen2 config of `size`; special token ids taken from the tokenizer."""
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        num_key_value_heads=size.num_kv_heads,
        max_position_embeddings=size.max_positions,
        tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-6,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def init_model(
    out_dir: str | Path,
    size: str = "tiny",
    arch: str = "llama",
    tied_embeddings: bool = False,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    chat: bool = False,
) -> Path:
    """Train a tokenizer, build a random-init model, save both to `out_dir`; return it.
    `chat` gives the tokenizer a chat template (an instruct model's prompt format)."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    spec = SIZES[size]
    out = Path(out_dir)
    tokenizer = train_tokenizer(corpus if corpus is not None else default_corpus(seed), spec.vocab_size, chat=chat)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(build_config(spec, arch, tied_embeddings, tokenizer))
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    manifest = {"size": size, "arch": arch, "tied_embeddings": tied_embeddings, "seed": seed, "chat": chat,
                "parameters": count_parameters(model), **asdict(spec)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
