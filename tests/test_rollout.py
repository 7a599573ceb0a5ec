"""Rollout types, the log-probability semantics, weight chunks and the transformers backend."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from actors.backend import find_stop, make_backend
from actors.config import RolloutConfig
from actors.consistency import logprob_gap, perturbed_state
from actors.hf_backend import HFBackend
from actors.logprobs import processed_logprobs, sequence_sampling_logprobs
from actors.weights import decode, encode, iter_chunks
from core.rollout import LENGTH, STOP, Completion, GenerationRequest, SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=10)
SAMPLED = SamplingSettings(temperature=0.8, top_p=0.9, max_new_tokens=24, seed=7)


def requests(sampling: SamplingSettings, n: int = 2, count: int = 4) -> list[GenerationRequest]:
    """Prompts of different lengths, so batches are left-padded."""
    return [GenerationRequest(tuple(range(10 + k, 14 + 3 * k)), n=n, request_id=f"r{k}", sampling=sampling)
            for k in range(count)]


@pytest.fixture(scope="module")
def hf(tiny_model_dir) -> HFBackend:
    return HFBackend(str(tiny_model_dir), batch_size=5)


# ---- types and the pure logprob function --------------------------------------------
def test_types_validate():
    with pytest.raises(ValueError):
        SamplingSettings(top_p=0)
    with pytest.raises(ValueError):
        GenerationRequest((), request_id="empty")
    with pytest.raises(ValueError):
        Completion((1, 2), (0.0,), STOP, 0, "")
    assert RolloutConfig(stop=["\n\n"]).sampling(seed=3) == SamplingSettings(0.8, 0.9, 128, ("\n\n",), 3)
    with pytest.raises(ValueError):
        make_backend(RolloutConfig(backend="tpu"), "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("temperature,top_p", [(0.8, 0.9), (1.3, 0.5), (1.0, 1.0), (0.7, 0.05)])
def test_processed_logprobs_is_transformers_sampling_distribution(temperature, top_p):
    logits = torch.randn(6, 300, generator=torch.Generator().manual_seed(0)) * 3
    warped = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
    expected = torch.log_softmax(warped, -1)
    got = processed_logprobs(logits, temperature, top_p)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    finite = torch.isfinite(got)
    assert torch.allclose(got[finite], expected[finite], atol=1e-5)
    assert torch.allclose(got.exp().sum(-1), torch.ones(6), atol=1e-5)  # renormalised


def test_greedy_and_untempered_logprobs_are_the_learners():
    from learner.ppo_math import logprobs_from_logits

    logits, ids = torch.randn(2, 7, 50), torch.randint(0, 50, (2, 7))
    for temperature in (0.0, 1.0):
        assert torch.allclose(sequence_sampling_logprobs(logits, ids, temperature, 1.0), logprobs_from_logits(logits, ids))


def test_find_stop_earliest():
    assert find_stop("ab\ncd\n\nef", ["\n\n", "cd"]) == 3
    assert find_stop("abc", ["x"]) == -1
    assert find_stop("x..x", ["x"], start=1) == 3


def test_weight_chunks_are_bounded_and_round_trip():
    state = {"a": torch.randn(100), "b": torch.randn(300), "c": torch.randn(10).bfloat16(),
             "d": torch.zeros(0), "e": torch.arange(6).reshape(2, 3)}
    chunks = list(iter_chunks(state, max_bytes=500))
    for chunk in chunks:
        sizes = [c[3].nbytes for c in chunk]
        assert sum(sizes) <= 500 or len(chunk) == 1
    assert len(chunks) >= 3
    back = dict(pair for chunk in chunks for pair in decode(chunk))
    assert list(back) == list(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor)
    assert encode("x", torch.ones(2, 2).t())[3].nbytes == 16  # non-contiguous input


# ---- the transformers backend -----------------------------------------------------
def test_greedy_matches_transformers_generate(hf):
    reqs = requests(GREEDY, n=2)
    results = hf.generate(reqs)
    assert [r.request_id for r in results] == [q.request_id for q in reqs]
    for q, r in zip(reqs, results):
        out = hf.model.generate(torch.tensor([q.prompt_ids]), max_new_tokens=10, do_sample=False)
        expected = out[0, len(q.prompt_ids):].tolist()
        for c in r.completions:
            assert list(c.token_ids) == expected
            assert c.finish_reason == LENGTH and c.policy_version == 0
            assert c.text == hf.tokenizer.decode(c.token_ids, skip_special_tokens=True)
    assert logprob_gap(hf.model, reqs, results).max < 1e-4


def test_sampled_logprobs_are_those_of_the_nucleus(hf):
    reqs = requests(SAMPLED, n=3)
    results = hf.generate(reqs)
    gap = logprob_gap(hf.model, reqs, results)
    assert gap.tokens > 200 and gap.max < 1e-3, gap
    # the test can fail: scoring the same tokens without top-p is off by about -log(0.9)
    unrestricted = [GenerationRequest(q.prompt_ids, q.n, q.request_id, SamplingSettings(0.8, 1.0)) for q in reqs]
    assert logprob_gap(hf.model, unrestricted, results).mean > 0.05


def test_seeds_make_requests_reproducible(hf):
    reqs = requests(SAMPLED, n=3)
    first = hf.generate(reqs)[2].completions
    alone = hf.generate([reqs[2]])[0].completions  # a different batch around it
    assert [c.token_ids for c in alone] == [c.token_ids for c in first]
    assert len({c.token_ids for c in first}) == 3  # completion i uses seed + i
    other = GenerationRequest(reqs[2].prompt_ids, 3, "x", SamplingSettings(0.8, 0.9, 24, seed=8))
    assert hf.generate([other])[0].completions[0].token_ids == first[1].token_ids  # 8 == 7 + 1
    unseeded = GenerationRequest(reqs[2].prompt_ids, 2, "u", SamplingSettings(0.8, 0.9, 24))
    a, b = hf.generate([unseeded])[0].completions
    assert a.token_ids != b.token_ids


def test_stop_strings_cut_text_after_the_completing_token(hf):
    stops = ("e", "\n")
    reqs = requests(SamplingSettings(temperature=1.0, max_new_tokens=40, stop=stops, seed=1), n=4)
    finished = 0
    for r in hf.generate(reqs):
        for c in r.completions:
            full = hf.tokenizer.decode(c.token_ids, skip_special_tokens=True)
            assert full.startswith(c.text) and find_stop(c.text, stops) == -1
            if c.finish_reason == STOP:
                finished += 1
                assert find_stop(full, stops) == len(c.text)
                before = hf.tokenizer.decode(c.token_ids[:-1], skip_special_tokens=True)
                assert find_stop(before, stops) == -1  # the last token completed the stop string
            else:
                assert len(c.token_ids) == 40
    assert finished >= 10


def test_end_of_sequence_token_is_kept_and_stops(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir))
    req = GenerationRequest((20, 21, 22), request_id="e", sampling=GREEDY)
    tokens = backend.generate([req])[0].completions[0].token_ids
    backend.eos_ids = frozenset({tokens[3]})  # make the 4th greedy token an end-of-sequence token
    c = backend.generate([req])[0].completions[0]
    assert c.token_ids == tokens[:4] and c.finish_reason == STOP and len(c.logprobs) == 4


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_weight_update_reaches_outputs_and_logprobs(tied, tiny_model_dir, tiny_tied_model_dir):
    path = str(tiny_tied_model_dir if tied else tiny_model_dir)
    backend = HFBackend(path)
    learner = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert (learner.lm_head.weight is learner.model.embed_tokens.weight) == tied
    reqs = requests(GREEDY, n=1)
    before = backend.generate(reqs)
    state = perturbed_state(learner, scale=0.1)
    backend.update_weights(state.items(), version=3)
    after = backend.generate(reqs)
    assert [r.completions for r in after] != [r.completions for r in before]
    for q, r in zip(reqs, after):
        out = learner.generate(torch.tensor([q.prompt_ids]), max_new_tokens=10, do_sample=False)
        expected = out[0, len(q.prompt_ids):].tolist()
        assert list(r.completions[0].token_ids) == expected and r.completions[0].policy_version == 3
    assert logprob_gap(learner, reqs, after).max < 1e-4
    with pytest.raises(ValueError):
        backend.update_weights([], version=2)  # versions only move forward
    with pytest.raises(KeyError):
        backend.update_weights([("nope", torch.zeros(1))], version=4)


def test_stop_search_on_a_tail_window_agrees_with_decoding_everything(hf):
    """The transformers backend looks for stop strings in a tail window of tokens; step by
    step it must stop exactly where decoding the whole completion each time would."""
    rng = random.Random(0)
    vocab = len(hf.tokenizer)
    for stops in (("\n\n", "def ", "return"), ("e",), ("\n",)):
        for _ in range(10):
            tokens = [rng.randrange(vocab) for _ in range(160)]
            for n in range(1, len(tokens) + 1):
                expected = find_stop(hf.tokenizer.decode(tokens[:n], skip_special_tokens=True), stops)
                assert hf._stop_index(tokens[:n], stops) == expected, (stops, n)
                if expected != -1:
                    break


def test_a_greedy_rollout_is_scored_under_the_plain_softmax():
    assert RolloutConfig(temperature=0.8).scoring_temperature == 0.8
    assert RolloutConfig(temperature=0.0).scoring_temperature == 1.0
