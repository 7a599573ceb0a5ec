"""Static checks a compiler for a typed language would perform, on Python programs: RLCF's
compiler feedback (arXiv 2305.18341), with Python standing in for Java.

The analyser is pylint (astroid's inference), restricted to the messages a compiler would
raise.  Measured against pyflakes and ruff (`execrl bench checks`, README "RLCF"): pylint
is the only one of the three that reports wrong argument counts, unreachable code and
statements without effect; pyflakes (0.7 ms a program) and ruff (a subprocess, 8 ms) see
undefined names only, of the six classes below.  A persistent linter checks a program in
about 10 ms on one core.

Nothing is executed: astroid parses and infers, and loads no compiled extension
(pylint's `unsafe-load-any-extension` is off), so the checks run outside the sandbox.

Finding classes (a pylint message belongs to one; `CLASS_OF_MESSAGE`):
  syntax                  the program does not parse (checked with `ast.parse` first)
  undefined_name          a name, module or imported name that does not exist
  used_before_assignment  a local read on a path where it was never assigned
  call_arity              wrong number of arguments, or unknown / repeated keywords
  invalid_statement       what CPython's compiler or a typed language rejects: return or
                          yield outside a function, break outside a loop, a redefined
                          function, nonlocal without binding, duplicate argument names
  no_return_value         the result of a call to a function that returns nothing is used
  unreachable             code after return, raise, break or continue
  unused_result           an expression statement whose value is thrown away
"""

from __future__ import annotations

import ast
import os
import tempfile
import threading
from dataclasses import dataclass, field

from core.settings import ConfigSection, rng
from core.verdict import Finding

CLASS_OF_MESSAGE = {
    "E0602": "undefined_name", "E0401": "undefined_name", "E0611": "undefined_name",
    "E0601": "used_before_assignment", "E0606": "used_before_assignment",
    "E1120": "call_arity", "E1121": "call_arity", "E1123": "call_arity", "E1124": "call_arity",
    "E0100": "invalid_statement", "E0101": "invalid_statement", "E0102": "invalid_statement",
    "E0103": "invalid_statement", "E0104": "invalid_statement", "E0105": "invalid_statement",
    "E0106": "invalid_statement", "E0108": "invalid_statement", "E0117": "invalid_statement",
    "E0118": "invalid_statement",
    "E1111": "no_return_value", "E1128": "no_return_value",
    "W0101": "unreachable",
    "W0104": "unused_result", "W0106": "unused_result",
}
FINDING_CLASSES = ("syntax", "undefined_name", "used_before_assignment", "call_arity", "invalid_statement",
                   "no_return_value", "unreachable", "unused_result")
MODULE = "program"  # the module name every checked program gets (its astroid cache entry is dropped after)


@dataclass
class StaticWeights(ConfigSection):
    """How much each finding class costs the static-check score (`reward.static_weights`):
    errors a compiler rejects cost most, warnings it would only print cost a little."""

    syntax: float = field(default=1.0, metadata=rng(0))
    undefined_name: float = field(default=0.5, metadata=rng(0))
    used_before_assignment: float = field(default=0.3, metadata=rng(0))
    call_arity: float = field(default=0.5, metadata=rng(0))
    invalid_statement: float = field(default=0.5, metadata=rng(0))
    no_return_value: float = field(default=0.3, metadata=rng(0))
    unreachable: float = field(default=0.1, metadata=rng(0))
    unused_result: float = field(default=0.1, metadata=rng(0))


def static_score(findings: tuple[Finding, ...], weights: StaticWeights | dict[str, float]) -> float:
    """1 for a clean program, less each finding's class weight, floored at 0: a syntax
    error (weight 1) scores 0, as a program a compiler rejects outright."""
    if not isinstance(weights, dict):
        weights = {kind: getattr(weights, kind) for kind in FINDING_CLASSES}
    return max(0.0, 1.0 - sum(weights.get(f.kind, 0.0) for f in findings))


class StaticChecker:
    """One pylint linter, kept across programs (building one costs ~0.5 s; a check with a
    warm astroid cache ~10 ms).  Thread-safe: the judge checks from its slot threads."""

    def __init__(self) -> None:
        from pylint.lint import PyLinter
        from pylint.reporters import CollectingReporter

        self._reporter_type = CollectingReporter
        self._linter = PyLinter(reporter=CollectingReporter())
        self._linter.load_default_plugins()
        self._linter.disable("all")
        for message in CLASS_OF_MESSAGE:
            self._linter.enable(message)
        self._dir = tempfile.TemporaryDirectory(prefix="execrl-checks-")
        self._path = os.path.join(self._dir.name, f"{MODULE}.py")
        self._lock = threading.Lock()

    def check(self, program: str) -> tuple[Finding, ...]:
        """The program's findings, in line order (a syntax error is the only finding then)."""
        try:
            ast.parse(program)
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
            return (Finding("syntax", getattr(exc, "lineno", None) or 0, str(exc).splitlines()[0]),)
        with self._lock:
            messages = self._lint(program)
        found = {(CLASS_OF_MESSAGE[m.msg_id], m.line, m.msg) for m in messages if m.msg_id in CLASS_OF_MESSAGE}
        return tuple(Finding(kind, line, message) for kind, line, message in sorted(found, key=lambda f: (f[1], f[0])))

    def _lint(self, program: str) -> list:
        import astroid

        with open(self._path, "w", encoding="utf-8") as f:
            f.write(program)
        self._linter.reporter = self._reporter_type()
        self._linter.reporter.linter = self._linter
        try:
            self._linter.check([self._path])
        finally:
            astroid.MANAGER.astroid_cache.pop(MODULE, None)  # the next program reuses the name
        return list(self._linter.reporter.messages)

    def close(self) -> None:
        self._dir.cleanup()
