"""Test-writing prompts and the parser that turns the model's text into tests.

Both kinds of problem get tests as one-line `assert` statements, so one parser (Python's
own `ast`) reads them all:
- function problems (an entry point): `assert add(1, 2) == 3`, run after the program
  as an AssertTest, exactly like MBPP's and HumanEval's tests;
- stdin/stdout problems: `assert run("2\\n1 2\\n") == "3\\n"`, read as a StdioTest with
  that input and expected output (`run` is only notation: it is never executed).

The prompt (configurable: codedpo.yaml `sample.function_prompt` / `sample.stdio_prompt`,
with {statement} as `# ` comment lines, {starter_code} and {entry_point}) ends with the
start of the first test (`assert add(` or `assert run("`), which the model continues; the
parser reads the prompt's pre-filled start plus the completion, line by line.

What the parser does with what a model writes (counted per problem in samples.jsonl):
- a line that is not `assert ...`: ignored (prose, code, blank lines);
- an `assert` line that does not parse, or parses but is not a test of this problem
  (a function test that never names the entry point; a stdio test that is not
  `run(<string>) == <string>`): dropped and counted as `unparseable`;
- a duplicate of a test already kept: dropped and counted as `duplicates`;
- at most `sample.tests` tests are kept, in the order written.
A problem left with no test has an empty matrix: every program scores the same, there
is no trusted set and no correctness pair (the pair stage counts it as `no_tests`).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Sequence

from core.problem import AssertTest, Problem, StdioTest, Test

DEFAULT_FUNCTION_PROMPT = ("{statement}\n{starter_code}\n\n# Tests of {entry_point}, one assert per line:\n"
                           "assert {entry_point}(")
DEFAULT_STDIO_PROMPT = ('{statement}\n\n# Tests: run(stdin) is the program\'s stdout, one assert per line:\n'
                        'assert run("')
RUN = "run"


@dataclass
class ParsedTests:
    tests: list[Test] = field(default_factory=list)
    unparseable: int = 0
    duplicates: int = 0
    examples_dropped: list[str] = field(default_factory=list)  # the first few dropped lines, to inspect


def is_function_problem(problem: Problem) -> bool:
    return bool(problem.entry_point)


def writing_prompt(problem: Problem, function_template: str = DEFAULT_FUNCTION_PROMPT,
                stdio_template: str = DEFAULT_STDIO_PROMPT) -> str:
    """The text the model continues to write tests for `problem`."""
    statement = "\n".join(f"# {line}".rstrip() for line in problem.statement.strip().splitlines())
    template = function_template if is_function_problem(problem) else stdio_template
    try:
        return template.format(statement=statement, starter_code=problem.starter_code.rstrip(),
                               entry_point=problem.entry_point or "")
    except (KeyError, IndexError) as exc:
        raise ValueError(f"test prompt template {template!r}: unknown field {exc}; use {{statement}}, "
                         f"{{starter_code}}, {{entry_point}}") from None


def prefilled_start(prompt: str) -> str:
    """The prompt's last line: the start of the first test, which the model continues."""
    return prompt.rsplit("\n", 1)[-1]


def parse_tests(problem: Problem, texts: Sequence[str], limit: int) -> ParsedTests:
    """Tests from the model's texts (each the pre-filled start plus a completion)."""
    out, seen = ParsedTests(), set()
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith("assert"):
                continue
            test = _parse_line(problem, line)
            if test is None:
                out.unparseable += 1
                if len(out.examples_dropped) < 3:
                    out.examples_dropped.append(line[:200])
                continue
            key = repr(test)
            if key in seen:
                out.duplicates += 1
                continue
            if len(out.tests) < limit:
                seen.add(key)
                out.tests.append(test)
    return out


def _parse_line(problem: Problem, line: str) -> Test | None:
    try:
        tree = ast.parse(line)
    except (SyntaxError, ValueError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    node = tree.body[0].test
    if is_function_problem(problem):
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        return AssertTest(code=line) if problem.entry_point in names else None
    return _stdio_test(node)


def _stdio_test(node: ast.expr) -> StdioTest | None:
    """`run("<input>") == "<output>"` -> StdioTest; anything else None."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return None
    call, expected = node.left, node.comparators[0]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == RUN
            and len(call.args) == 1 and not call.keywords):
        return None
    arg = call.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            and isinstance(expected, ast.Constant) and isinstance(expected.value, str)):
        return None
    return StdioTest(input=arg.value, output=expected.value)


def line_of_test(problem: Problem, test: Test) -> str:
    """A test back in the notation the model writes (for samples.jsonl and prompts)."""
    if isinstance(test, StdioTest):
        # Double quotes, as the prompt's pre-filled start has them (JSON's escapes are Python's).
        given, expected = (json.dumps(text, ensure_ascii=False) for text in (test.input, test.output))
        return f"assert {RUN}({given}) == {expected}"
    if isinstance(test, AssertTest):
        return test.code
    raise TypeError(f"problem {problem.id}: generated tests are assert or stdio tests, not {type(test).__name__}")
