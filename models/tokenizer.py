"""Train a byte-level BPE tokenizer on local text, so tests and the CPU default need no download.

Byte-level BPE is what the code models we target use (DeepSeek-Coder, Qwen2), and it
gives exact character offsets for every token, which FGO needs to map tokens to source
lines.  The corpus is text already on the machine: the bundled problems' statements and
solutions plus a deterministic sample of the Python standard library's source.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOS, PAD]
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
# ChatML: each message is <|im_start|>role\ncontent<|im_end|>\n; the assistant's turn is
# opened by the generation prompt and ends with EOS (what SFT trains it to emit).
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def stdlib_source_sample(max_bytes: int = 2_000_000) -> Iterator[str]:
    """Python files of the running interpreter's stdlib, in sorted order, up to max_bytes.

    Sorted order and a byte budget make the corpus (and so the tokenizer) identical on
    every machine with the same Python version.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    used = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if used + len(text) > max_bytes:
            break
        used += len(text)
        yield text


def bundled_problem_text(seed: int = 0) -> Iterator[str]:
    """Statements and canonical solutions of the bundled training splits (never held-out)."""
    from problems.bundled import generate_split

    for split in ("sft", "rl"):
        for problem in generate_split(split, seed=seed):
            yield problem.statement
            yield from problem.solutions


def default_corpus(seed: int = 0) -> Iterator[str]:
    yield from bundled_problem_text(seed)
    yield from stdlib_source_sample()


def train_tokenizer(texts: Iterable[str], vocab_size: int, chat: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with EOS and PAD specials, wrapped for transformers;
    `chat` adds ChatML's turn markers as special tokens and its chat template, as an
    instruct model's tokenizer has."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS + (CHAT_TOKENS if chat else []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
        **({"additional_special_tokens": CHAT_TOKENS} if chat else {}),
    )
    if chat:
        wrapped.chat_template = CHATML
    return wrapped
