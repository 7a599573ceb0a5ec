"""Extracting the program from a chat answer (core/answers.py), rule by rule."""

from core.answers import (DEFINES_ENTRY_POINT, LAST_BLOCK, UNTERMINATED_BLOCK, WHOLE_ANSWER, extract_program,
                          fenced_blocks)

HELPER = "```python\ndef helper(x):\n    return x\n```\n"
SOLUTION = "```python\ndef solve(xs):\n    return sum(xs)\n```\n"
EXAMPLE = "```python\nprint(solve([1, 2]))\n```\n"


def test_the_block_defining_the_entry_point_wins_over_later_blocks():
    answer = "Here is a helper.\n" + HELPER + "And the solution:\n" + SOLUTION + "Example:\n" + EXAMPLE
    got = extract_program(answer, "solve")
    assert got.rule == DEFINES_ENTRY_POINT and got.code == "def solve(xs):\n    return sum(xs)\n"
    assert answer[got.start:got.end] == got.code


def test_without_a_defining_block_the_last_complete_block_is_taken():
    answer = "Two tries.\n" + HELPER + "Better:\n" + EXAMPLE
    got = extract_program(answer, "solve")
    assert got.rule == LAST_BLOCK and got.code == "print(solve([1, 2]))\n"
    assert extract_program("Read n.\n```\nn = int(input())\nprint(n * 2)\n```", None).code == \
        "n = int(input())\nprint(n * 2)\n"


def test_an_answer_cut_inside_a_block_counts_as_its_content():
    cut = "Sure.\n```python\ndef solve(xs):\n    total = 0\n    for x in"
    got = extract_program(cut, "solve")
    assert got.rule == UNTERMINATED_BLOCK and got.code == "def solve(xs):\n    total = 0\n    for x in"
    # a complete block defining the entry point still wins over a cut one after it
    assert extract_program(SOLUTION + "Example:\n```python\nprint(solve(", "solve").rule == DEFINES_ENTRY_POINT
    # a cut example after a complete helper that is not the entry point: the helper is the last complete block
    assert extract_program(HELPER + "```python\nprint(1", "solve").rule == LAST_BLOCK


def test_an_answer_without_fences_is_code_as_it_is():
    got = extract_program("def solve(xs):\n    return 0\n", "solve")
    assert got.rule == WHOLE_ANSWER and got.code == "def solve(xs):\n    return 0\n"


def test_fences_follow_commonmark_closing_rules():
    answer = "````markdown\n```python\nx = 1\n```\n````\nafter\n~~~\ny = 2\n~~~\n"
    blocks = fenced_blocks(answer)
    assert [(answer[b.start:b.end], b.closed) for b in blocks] == [("```python\nx = 1\n```\n", True), ("y = 2\n", True)]
