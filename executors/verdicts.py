"""From the fork server's facts about one run to a test verdict, in the trusted parent."""

from __future__ import annotations

import json
import signal

from core.problem import CallTest, StdioTest, Test
from core.verdict import (MEMORY_LIMIT, PASS, RUNTIME_ERROR, SANDBOX_ERROR, TIMEOUT, WRONG_ANSWER,
                          TestResult)
from executors.compare import stdout_matches, value_matches

FEEDBACK_CHARS = 600


def classify(test: Test, facts: dict, float_tol: float) -> TestResult:
    """The verdict of one test run; input/expected/actual kept (truncated) on failure."""
    verdict, error, actual = _verdict(test, facts, float_tol)
    lines = tuple(sorted(set(facts.get("lines") or ())))  # from the server's LineRecord, even for a killed test
    if verdict == PASS:
        return TestResult(PASS, facts["wall_s"], lines)
    return TestResult(verdict, facts["wall_s"], lines, error=_cut(error), input=_cut(_test_input(test)),
                      expected=_cut(_test_expected(test)), actual=_cut(actual))


def _verdict(test: Test, facts: dict, tol: float) -> tuple[str, str | None, str | None]:
    result = facts.get("result")
    stdout = facts.get("stdout", "")
    if facts["timed_out"] or facts.get("signal") == signal.SIGXCPU:
        return TIMEOUT, _time_limit_text(facts), stdout or None
    if facts["output_limited"]:
        return WRONG_ANSWER, "output limit exceeded", stdout
    if result is None:
        return _without_report(test, facts)
    status = result.get("status")
    if status == "sandbox_error":
        return SANDBOX_ERROR, f"sandbox setup failed: {result.get('exc_msg')}", None
    if status == "exit":
        return RUNTIME_ERROR, f"exited with code {result.get('exit_code')} before the test completed", stdout or None
    if status == "exception":
        return _exception_verdict(result), _exception_text(result), stdout or None
    if isinstance(test, StdioTest):
        return (PASS, None, None) if stdout_matches(stdout, test.output, tol) else (WRONG_ANSWER, "wrong output", stdout)
    if isinstance(test, CallTest):
        value = json.loads(result["value"])
        accepted = (test.expected, *test.also_accepted)
        if any(value_matches(value, want, tol) for want in accepted):
            return PASS, None, None
        return WRONG_ANSWER, "wrong return value", result["value"]
    return PASS, None, None


def _time_limit_text(facts: dict) -> str:
    """Which limit fired: the CPU-time limit, or the wall-clock backstop (a program that
    sleeps or blocks uses no CPU)."""
    limit = facts.get("limit_s")
    if facts.get("limit") == "wall":
        return f"wall-clock limit exceeded ({limit:g} s; the program slept or blocked)"
    return f"time limit exceeded ({limit:g} s of CPU)" if limit else "time limit exceeded (CPU)"


def _without_report(test: Test, facts: dict) -> tuple[str, str, str | None]:
    """The child ended without the harness's report: it died, or the program ended the
    process itself.  Only a stdin program that exited 0 is judged by its output."""
    stdout = facts.get("stdout", "")
    if facts.get("exit_code") == 0 and isinstance(test, StdioTest):
        if stdout_matches(stdout, test.output):
            return PASS, None, None
        return WRONG_ANSWER, "wrong output", stdout
    sig = facts.get("signal")
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) and "MemoryError" in facts.get("stderr", ""):
            return MEMORY_LIMIT, f"killed by {name} out of memory", stdout or None
        return RUNTIME_ERROR, f"killed by {name}", stdout or None
    return RUNTIME_ERROR, f"exited with code {facts.get('exit_code')} before the test completed", stdout or None


def _exception_verdict(result: dict) -> str:
    if result.get("exc_type") == "MemoryError":
        return MEMORY_LIMIT
    if result.get("not_plain") or (result.get("exc_type") == "AssertionError" and result.get("in_test")):
        return WRONG_ANSWER
    return RUNTIME_ERROR


def _exception_text(result: dict) -> str:
    where = f" (line {result['line']})" if result.get("line") else ""
    message = result.get("exc_msg") or ""
    return f"{result.get('exc_type')}{where}: {message}" if message else f"{result.get('exc_type')}{where}"


def _test_input(test: Test) -> str:
    if isinstance(test, StdioTest):
        return test.input
    if isinstance(test, CallTest):
        return json.dumps(list(test.args))
    return test.code


def _test_expected(test: Test) -> str | None:
    if isinstance(test, StdioTest):
        return test.output
    if isinstance(test, CallTest):
        return json.dumps(test.expected)
    return None


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= FEEDBACK_CHARS:
        return text
    return text[:FEEDBACK_CHARS] + f"... [{len(text) - FEEDBACK_CHARS} more characters]"
