"""MBPP, original (text, code, test_list, test_setup_code, challenge_test_list) and
sanitized (prompt, code, test_imports, test_list, source_file).

Each `assert` in test_list becomes its own AssertTest so a verdict can say how many
passed.  MBPP names no entry point; it is the function the first assert calls,
preferring a name the reference code defines (`assert set(f(x)) == ...` calls `set`
first).  The statement is kept verbatim: showing the first test as an example is a
prompting choice made later, not part of the problem.
"""

from __future__ import annotations

import ast
import builtins
import warnings

from core.problem import AssertTest, Problem, ProblemFormatError

from ._common import require, string_list, text


def looks_like(record: dict) -> bool:
    return all(k in record for k in ("task_id", "code", "test_list")) and (
        "text" in record or "prompt" in record
    )


def to_problem(record: dict) -> Problem:
    require(record, "task_id", "code", "test_list")
    sanitized = "prompt" in record and "text" not in record
    code = _newlines(text(record, "code"))
    asserts = string_list(record["test_list"], "test_list")
    if not asserts:
        raise ProblemFormatError("no tests: field 'test_list' is empty")
    statement = with_first_test(text(record, "prompt" if sanitized else "text"), _newlines(asserts[0]))
    if sanitized:
        setup = "\n".join(string_list(record.get("test_imports"), "test_imports"))
    else:
        setup = _newlines(text(record, "test_setup_code", ""))
    meta: dict = {"variant": "sanitized" if sanitized else "original"}
    challenge = string_list(record.get("challenge_test_list"), "challenge_test_list")
    if challenge:
        meta["challenge_test_list"] = list(challenge)
    if record.get("source_file"):
        meta["source_file"] = record["source_file"]
    return Problem(
        id=f"mbpp/{record['task_id']}",
        source="mbpp",
        statement=statement,
        solutions=(code,),
        entry_point=entry_point(asserts[0], code),
        tests=tuple(AssertTest(code=_newlines(a), setup=setup) for a in asserts),
        meta=meta,
    )


def with_first_test(text_: str, first_assert: str) -> str:
    """MBPP's text alone never names the function its tests call ("Write a function to
    find the shared elements..."), so no model could pass them but by guessing the name.
    Its prompts have always shown tests (the MBPP paper shows all three, EvalPlus's MBPP+
    the first); the statement shows the first, which gives the name and the call shape.
    The other tests stay unseen."""
    return f"{text_.strip()}\nYour code should pass this test:\n{first_assert.strip()}"


def _newlines(code: str) -> str:
    """Universal newlines, as Python itself reads source files: MBPP's code uses
    "\r\n" and a few rows (104, 255, 593, 732) end in a lone "\r"."""
    return code.replace("\r\n", "\n").replace("\r", "\n")


def entry_point(assert_code: str, solution: str = "") -> str:
    """The function under test in an assert: a called name the solution defines,
    else the first called name that is not a builtin."""
    try:
        tree = ast.parse(assert_code)
    except SyntaxError as exc:
        raise ProblemFormatError(f"first test is not valid Python: {exc.msg}: {assert_code!r}") from None
    called = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    try:
        with warnings.catch_warnings():  # MBPP code has invalid escapes such as "\d"
            warnings.simplefilter("ignore")
            solution_tree = ast.parse(solution)
        defined = {n.name for n in ast.walk(solution_tree)
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    except SyntaxError:
        defined = set()
    for name in called:
        if name in defined:
            return name
    for name in called:
        if not hasattr(builtins, name):
            return name
    raise ProblemFormatError(f"cannot find the function under test in the first test: {assert_code!r}")
