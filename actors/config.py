"""Knobs of the rollout actors (generation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from core.rollout import GenerationRequest, SamplingSettings
from core.settings import ConfigSection, follows, rng


@dataclass
class RolloutConfig(ConfigSection):
    """Sampling follows the paper (temperature 0.8, top-p 0.9); `backend` picks vLLM on GPUs
    or transformers on CPUs behind the same interface.

    dtype            weights and compute; not a key of its own: it follows model.dtype, so
                     rollout and learner score the same weights
    seed             generator of requests that carry no seed of their own
    weight_chunk_mb  weight sync through the Ray object store goes in chunks of at most
                     this many MiB, so no single object (or copy) holds the whole model
    max_restarts     how often Ray restarts a dead rollout actor (its requests are re-sent)
    weight_sync      "auto": NCCL broadcast for vLLM on GPUs, the object store otherwise
    prompt_format    "plain" (base models: the statement as comments, then code), "chat"
                     (instruct models: the tokenizer's chat template, the assistant's
                     turn pre-filled with `fence` and the canonical prefix, generation
                     stopped at the closing fence), "auto": chat when the tokenizer has
                     a chat template (curriculum/prompt.py)
    fence            the chat format's opening fence ("" pre-fills the code alone)
    system_prompt    the chat format's system message ("" for none)
    user_template    the chat format's user message: {statement}, optionally {starter_code}
    """

    backend: Literal["transformers", "vllm"] = "transformers"
    num_actors: int = field(default=1, metadata=rng(1))
    gpus_per_actor: float = field(default=0.0, metadata=rng(0))
    cpus_per_actor: float = field(default=1.0, metadata=rng(0))
    samples_per_prompt: int = field(default=8, metadata=rng(1))
    temperature: float = field(default=0.8, metadata=rng(0))
    top_p: float = field(default=0.9, metadata=rng(0, 1, exclusive_min=True))
    max_new_tokens: int = field(default=128, metadata=rng(1))
    stop: list[str] = field(default_factory=list)
    prompt_format: Literal["auto", "plain", "chat"] = "auto"
    fence: str = "```python\n"
    system_prompt: str = ""
    user_template: str = "{statement}"
    batch_size: int = field(default=64, metadata=rng(1))
    dtype: Literal["float32", "bfloat16", "float16"] = field(default="float32", metadata=follows("model.dtype"))
    seed: int = 0
    weight_chunk_mb: int = field(default=64, metadata=rng(1))
    max_restarts: int = field(default=3, metadata=rng(0))
    weight_sync: Literal["auto", "object_store", "nccl"] = "auto"
    vllm_gpu_memory_utilization: float = field(default=0.85, metadata=rng(0, 1, exclusive_min=True))
    vllm_tensor_parallel_size: int = field(default=1, metadata=rng(1))
    vllm_max_model_len: int | None = field(default=None, metadata=rng(16))
    vllm_cpu_kvcache_gb: float = field(default=1.0, metadata=rng(0, exclusive_min=True))

    def requests(self, prompt_ids: Sequence[Sequence[int]], request_ids: Sequence[str], seed: int,
                 n: int | None = None, stop: Sequence[str] = ()) -> list[GenerationRequest]:
        """One request per prompt with these sampling settings and `n` (default
        samples_per_prompt) completions; request k's completions use seeds seed + k*n ..
        seed + k*n + n - 1, so no two prompts share a random stream.  `stop` adds the
        prompt format's stop strings (the chat format's closing fence) to `self.stop`."""
        n = n or self.samples_per_prompt
        return [GenerationRequest(tuple(ids), n=n, request_id=rid, sampling=self.sampling(seed=seed + k * n, stop=stop))
                for k, (ids, rid) in enumerate(zip(prompt_ids, request_ids))]

    def prompt_style(self):
        """The prompt format these keys describe (checked: a bad template or fence is
        refused by name before anything starts)."""
        from curriculum.prompt import PromptFormat

        return PromptFormat(self.prompt_format, self.fence, self.system_prompt, self.user_template)

    @property
    def scoring_temperature(self) -> float:
        """The temperature a learner scores these rollouts' tokens at: the sampling one,
        or 1 for greedy decoding (whose log-probs are the plain softmax's, core/rollout.py)."""
        return self.temperature if self.temperature > 0 else 1.0

    def sampling(self, seed: int | None = None, stop: Sequence[str] = ()) -> SamplingSettings:
        """The sampling settings of a training rollout (optionally seeded), with extra stop strings."""
        stops = tuple(dict.fromkeys([*self.stop, *stop]))
        return SamplingSettings(temperature=self.temperature, top_p=self.top_p,
                                max_new_tokens=self.max_new_tokens, stop=stops, seed=seed)
