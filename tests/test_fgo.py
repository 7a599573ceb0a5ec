"""FGO: token bytes from generated ids, line attribution, masks, rendering, statistics."""

from __future__ import annotations

import sys
import types

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from curriculum.fgo import COMPILE_ERROR, COVERAGE, COVERAGE_UNKNOWN, NO_COVERAGE, fgo_mask, masked_fraction, render_mask
from curriculum.lines import deciders, logical_groups
from curriculum.token_bytes import display_pieces, is_byte_level, token_bytes
from models.tokenizer import stdlib_source_sample, train_tokenizer


@pytest.fixture(scope="module")
def bpe():
    """A byte-level BPE tokenizer trained on stdlib source (merges such as "\\n" + spaces)."""
    return train_tokenizer(list(stdlib_source_sample(300_000)), 1024)


@pytest.fixture(scope="module")
def bytes_only():
    """Byte-level BPE without merges: one token per byte, so every multi-byte character
    is split across tokens and every mask boundary is predictable by hand."""
    tok = train_tokenizer(["abc"], 258)
    assert len(tok) == 258
    return tok


def ids_of(tok, tokens: list[str]) -> list[int]:
    ids = tok.convert_tokens_to_ids(tokens)
    missing = [t for t, i in zip(tokens, ids) if i is None or i == tok.unk_token_id]
    assert not missing, f"test tokenizer lacks tokens {missing}"
    return ids


def encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


# -- token bytes --------------------------------------------------------------------
TEXT = 's = "naïve café 😀 €"\nif s:\n    t = "日本語"\n'


def test_token_bytes_are_exact_for_split_multibyte_characters(bytes_only, bpe):
    for tok in (bytes_only, bpe):
        ids = encode(tok, TEXT) + [tok.eos_token_id]
        pieces = token_bytes(tok, ids)
        assert b"".join(pieces).decode("utf-8") == tok.decode(ids, skip_special_tokens=True) == TEXT
        assert pieces[-1] == b""  # EOS adds nothing
        # Some character really is split across tokens (else this test proves nothing).
        assert any(p and not _is_utf8(p) for p in pieces)


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_token_lines_agree_with_the_tokenizers_offsets(bpe):
    enc = bpe(TEXT, return_offsets_mapping=True, add_special_tokens=False)
    mask = fgo_mask(bpe, enc.input_ids, "", executed={1, 2, 3}, executable={1, 2, 3})
    assert mask.lines == tuple(TEXT[:s].count("\n") + 1 for s, _ in enc.offset_mapping)
    assert "".join(mask.pieces) == TEXT
    seen = set()
    for piece, span in zip(mask.pieces, enc.offset_mapping):  # tokens sharing a character:
        assert piece == ("" if span in seen else TEXT[span[0]:span[1]])  # the first shows it
        seen.add(span)


def test_ids_as_generated_are_not_retokenised(bpe):
    """A model may emit an emoji byte by byte: the ids then differ from tok(text)."""
    prefix = "def f(n):\n    "
    completion = "x = '😀'\n    return n\n"
    generated, expected_lines = [], []
    for i, ch in enumerate(completion):  # one character at a time, the emoji as 4 byte tokens
        ids = encode(bpe, ch)
        generated += ids
        expected_lines += [2 + completion[:i].count("\n")] * len(ids)
    assert generated != encode(bpe, completion)
    mask = fgo_mask(bpe, generated, prefix, executed={1}, executable={1, 2, 3})
    assert mask.completion == completion and mask.program == prefix + completion
    assert list(mask.lines) == expected_lines
    assert not any(mask.keep)  # f was never called


def test_non_byte_level_tokenizer_uses_incremental_decoding():
    model = models.BPE(unk_token="[UNK]")
    raw = Tokenizer(model)
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.decoder = decoders.Metaspace()
    raw.train_from_iterator([TEXT * 3, "def f(x):\n    return x\n"] * 5,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "</s>"], show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", eos_token="</s>")
    assert not is_byte_level(tok)
    text = 'if s:\n    t = "café"\n'
    ids = encode(tok, text) + [tok.eos_token_id]
    pieces = token_bytes(tok, ids)
    decoded = tok.decode(ids, skip_special_tokens=True)
    assert b"".join(pieces).decode("utf-8") == decoded == text and pieces[-1] == b""
    assert tok.unk_token_id not in ids
    mask = fgo_mask(tok, ids, "s = 1\n", executed={1, 2}, executable={1, 2, 3})
    assert mask.program == "s = 1\n" + decoded
    # Every token on program line 3 (the body) is masked; line 2 tokens are kept.
    assert all(k == (line != 3) or i == len(ids) - 1 for i, (k, line) in enumerate(zip(mask.keep, mask.lines)))
    assert 3 in mask.lines and 2 in mask.lines


def test_display_pieces_partition_text_even_when_invalid():
    pieces = [b"a", "é".encode()[:1], "é".encode()[1:] + b"\n", b"\xff", b""]
    shown = display_pieces(pieces)
    assert shown == ["a", "é", "\n", "\ufffd", ""]


# -- line attribution ------------------------------------------------------------------
# Hand-worked.  Coverage-style executable lines (first line of each statement; `try:`,
# `finally:`, docstrings and blank lines are not statements): {1, 4, 6, 9, 12, 13, 16, 17, 18}.
# With g(1) every one runs except 13.  Verdicts: 2-3 blank -> next group (decorator, 4);
# 5 continues the decorator (4); 7-8 docstring -> next statement (9); 10 continues 9;
# 11 `try:` -> 12; 14 continues 13 (masked); 15 `finally:` -> 16.
PROGRAM = '''import functools


@functools.lru_cache(
    maxsize=None)
def g(n):
    """Doc
    string."""
    total = (n +
        1)
    try:
        if n > 5:
            raise ValueError(
                "big")
    finally:
        total += 1
    return total
print(g(1))
'''
EXECUTABLE = {1, 4, 6, 9, 12, 13, 16, 17, 18}
EXECUTED = EXECUTABLE - {13}
DECIDERS = {1: 1, 2: 4, 3: 4, 4: 4, 5: 4, 6: 6, 7: 9, 8: 9, 9: 9, 10: 9, 11: 12, 12: 12,
            13: 13, 14: 13, 15: 16, 16: 16, 17: 17, 18: 18, 19: 18}


def test_deciders_hand_worked():
    assert logical_groups(PROGRAM) == [(1, 1), (4, 5), (6, 6), (7, 8), (9, 10), (11, 11), (12, 12),
                                       (13, 14), (15, 15), (16, 16), (17, 17), (18, 18)]
    got = deciders(PROGRAM, EXECUTABLE)
    assert {line: got[line] for line in range(1, 20)} == DECIDERS
    assert deciders(PROGRAM, set()) == [None] * 20


def test_mask_with_statements_spanning_lines(bytes_only):
    ids = encode(bytes_only, PROGRAM)
    mask = fgo_mask(bytes_only, ids, "", EXECUTED, EXECUTABLE)
    assert mask.reason == COVERAGE
    dead = '            raise ValueError(\n                "big")\n'
    head, tail = PROGRAM.split(dead)
    assert render_mask(mask) == head + "⟦" + dead + "⟧" + tail
    assert mask.masked_fraction == len(dead.encode()) / len(PROGRAM.encode())


def test_mask_with_real_tracer_coverage(bytes_only):
    """Python's own line tables and a line tracer (what an executor measures) agree."""
    code = compile(PROGRAM, "<fgo>", "exec")
    executable = _code_lines(code) - {0}
    executed: set[int] = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename == "<fgo>":
            if event == "line":
                executed.add(frame.f_lineno)
            return tracer
        return None

    sys.settrace(tracer)
    try:
        exec(code, {"print": lambda *a: None})
    finally:
        sys.settrace(None)
    assert executable - executed == {13, 14}
    mask = fgo_mask(bytes_only, encode(bytes_only, PROGRAM), "", executed, executable)
    dead = '            raise ValueError(\n                "big")\n'
    assert render_mask(mask) == PROGRAM.replace(dead, "⟦" + dead + "⟧")


def _code_lines(code: types.CodeType) -> set[int]:
    lines = {line for _, _, line in code.co_lines() if line is not None}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            lines |= _code_lines(const)
    return lines


# -- masks -----------------------------------------------------------------------------
PREFIX = "def f(x):\n    "
COMPLETION = "if x > 0:\n        return 'café 😀'\n    else:\n        # négatif\n        return -x\n"
# Program lines: 1 def, 2 if, 3 return 'café 😀', 4 else:, 5 comment, 6 return -x.
# Executable {1, 2, 3, 6}; f(1) runs {1, 2, 3}.  `else:` and the comment follow line 6.


def test_mask_on_else_branch_and_comment_with_multibyte(bytes_only):
    ids = encode(bytes_only, COMPLETION) + [bytes_only.eos_token_id]
    mask = fgo_mask(bytes_only, ids, PREFIX, executed={1, 2, 3}, executable={1, 2, 3, 6})
    assert mask.program == PREFIX + COMPLETION
    kept, dead = COMPLETION.split("    else:")
    dead = "    else:" + dead
    assert render_mask(mask) == kept + "⟦" + dead + "⟧"
    assert mask.keep[-1] and mask.lines[-1] == 7  # EOS kept, even after a dead last line
    data = COMPLETION.encode()
    emoji = range(data.index("😀".encode()), data.index("😀".encode()) + 4)  # one token per byte
    assert all(mask.keep[i] and mask.lines[i] == 3 and mask.pieces[i] == ("😀" if i == emoji[0] else "")
               for i in emoji)
    accent = range(data.index("é".encode(), data.index(b"#")), data.index(b"#") + 5)
    assert all(not mask.keep[i] and mask.lines[i] == 5 for i in accent)
    assert mask.masked_fraction == len(dead.encode()) / len(ids)
    assert render_mask(mask, "ansi") == kept + "\x1b[2m" + dead + "\x1b[0m"
    swapped = fgo_mask(bytes_only, ids, PREFIX, executed={1, 2, 6}, executable={1, 2, 3, 6})
    assert render_mask(swapped) == "if x > 0:\n⟦        return 'café 😀'\n⟧" + dead


def test_tokens_straddling_lines_belong_to_their_first_line(bpe):
    prefix = "def f(n):\n   "
    tokens = ["Ġif", "Ġn", ":", "ĊĠĠĠĠĠĠĠ", "Ġreturn", "Ġ1", "ĊĠĠĠ", "Ġreturn", "Ġ2", "Ċ"]
    ids = ids_of(bpe, tokens)
    # Program: 1 def f(n): / 2 if n: / 3 return 1 / 4 return 2.  f(0) skips line 3.
    mask = fgo_mask(bpe, ids, prefix, executed={1, 2, 4}, executable={1, 2, 3, 4})
    assert mask.program == "def f(n):\n    if n:\n        return 1\n    return 2\n"
    assert mask.lines == (2, 2, 2, 2, 3, 3, 3, 4, 4, 4)
    # "\n       " starts on the live line 2 -> kept although it indents line 3;
    # "\n   " starts on the dead line 3 -> masked although it indents line 4.
    assert mask.keep == (True, True, True, True, False, False, False, True, True, True)
    assert render_mask(mask, "tokens") == " if| n|:|\n       |⟦ return| 1|\n   |⟧ return| 2|\n|"


def test_compile_error_keeps_every_token(bpe):
    ids = encode(bpe, "if x >:\n        return 1\n    return 2\n")
    mask = fgo_mask(bpe, ids, PREFIX, executed={1}, executable={1, 2, 3})
    assert mask.reason == COMPILE_ERROR and all(mask.keep) and mask.masked_fraction == 0.0
    told = fgo_mask(bpe, encode(bpe, COMPLETION), PREFIX, executed={1}, executable={1, 2, 3, 6}, compiled=False)
    assert told.reason == COMPILE_ERROR and all(told.keep)


def test_no_coverage_keeps_every_token(bpe):
    mask = fgo_mask(bpe, encode(bpe, COMPLETION), PREFIX, executed=set(), executable=set())
    assert mask.reason == NO_COVERAGE and all(mask.keep)


def test_unknown_coverage_keeps_every_token(bpe):
    """A test ran but its executed lines were lost (or never collected): the empty executed
    set is no evidence, so nothing is masked; with coverage known it masks all but EOS."""
    ids = encode(bpe, COMPLETION) + [bpe.eos_token_id]
    lost = fgo_mask(bpe, ids, PREFIX, executed=set(), executable={1, 2, 3, 6}, coverage_known=False)
    assert lost.reason == COVERAGE_UNKNOWN and all(lost.keep)
    known = fgo_mask(bpe, ids, PREFIX, executed=set(), executable={1, 2, 3, 6})
    assert known.reason == COVERAGE and known.keep == (False,) * (len(ids) - 1) + (True,)
    broken = fgo_mask(bpe, ids, PREFIX, set(), {1}, compiled=False, coverage_known=False)
    assert broken.reason == COMPILE_ERROR and all(broken.keep)  # no test ran: the compile error decides


def test_executed_lines_count_as_executable(bpe):
    """An executor that reports a line as executed but forgot it in executable: keep it."""
    mask = fgo_mask(bpe, encode(bpe, COMPLETION), PREFIX, executed={1, 2, 3}, executable={1, 6})
    assert render_mask(mask).startswith("if x > 0:\n        return 'café 😀'\n")


def test_masked_fraction_is_token_weighted_over_many(bytes_only):
    a = fgo_mask(bytes_only, encode(bytes_only, COMPLETION), PREFIX, {1, 2, 3}, {1, 2, 3, 6})
    b = fgo_mask(bytes_only, encode(bytes_only, "return 1\n"), PREFIX, {1, 2}, {1, 2})
    masked = sum(not k for k in a.keep)
    assert masked_fraction([a, b]) == masked / (len(a.keep) + len(b.keep))
    assert masked_fraction([]) == 0.0 and b.masked_fraction == 0.0
    with pytest.raises(ValueError):
        render_mask(a, "bold")
