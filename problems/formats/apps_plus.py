"""APPS+ (StepCoder's cleaned APPS): one statement, one canonical solution, unit tests.

What its authors publish about the files (github.com/Ablustrund/APPS_Plus, README.md at
commit 7e6e10c, 2024-08-31, the repository's only text besides its licence): "Each
instance includes a programming problem description, a canonical solution, a function
name, unit tests (i.e., inputs and outputs), and starter code (i.e., the beginning part
of the canonical solution)"; 7,413 instances (introductory 2,889, interview 3,592,
competition 572); the first version is the repository's data/v1/data.json (a single
JSON file, which problems/load.py reads as an array or as JSON lines), the final one
(function names cleaned, 2024-08-31) a Google Drive download.  The README names no keys
and the data file is not readable here (not in the stored snapshot of the repository),
so the exact key names are not pinned down: the reader accepts the spellings seen across
APPS derivatives: statement from description / question /
prompt / problem; solution from canonical_solution / solution / solutions (a string,
a list, or JSON text of a list); function name from fn_name / entry_point /
func_name / function_name (top level or inside the test object); tests from top-level
inputs/outputs or from input_output / test_case / test_cases / tests (an object or its
JSON text).  Tests follow the APPS conventions (see `apps.build_tests`).
"""

from __future__ import annotations

import json
from typing import Any

from core.problem import Problem, ProblemFormatError

from . import apps
from ._common import ID_KEYS, first_key, label, maybe_json

STATEMENT_KEYS = ("description", "question", "prompt", "problem")
SOLUTION_KEYS = ("canonical_solution", "solution", "solutions")
FN_KEYS = ("fn_name", "entry_point", "func_name", "function_name")
TEST_KEYS = ("input_output", "test_case", "test_cases", "tests")
STARTER_KEYS = ("starter_code", "starter")
DIFFICULTY_KEYS = ("difficulty", "level")
_CONSUMED = set(STATEMENT_KEYS + SOLUTION_KEYS + FN_KEYS + TEST_KEYS + STARTER_KEYS
                + DIFFICULTY_KEYS + ID_KEYS + ("inputs", "outputs", "source"))


def looks_like(record: dict) -> bool:
    has_tests = ("inputs" in record and "outputs" in record) or any(k in record for k in TEST_KEYS)
    return has_tests and any(k in record for k in STATEMENT_KEYS) and any(k in record for k in SOLUTION_KEYS)


def to_problem(record: dict) -> Problem:
    """Convert one APPS+ record; raises ProblemFormatError naming the bad field."""
    statement_key = first_key(record, STATEMENT_KEYS)
    if statement_key is None or not isinstance(record[statement_key], str):
        raise ProblemFormatError(f"no statement: none of {', '.join(STATEMENT_KEYS)} holds a string")
    id_key = first_key(record, ID_KEYS)
    if id_key is None:
        raise ProblemFormatError(f"no id: none of {', '.join(ID_KEYS)} is present")
    source = record.get("source") if isinstance(record.get("source"), str) else "apps_plus"
    raw_id = record[id_key]
    pid = raw_id if isinstance(raw_id, str) else f"{source}-{raw_id}"

    inputs, outputs, where, test_obj = _tests_fields(record)
    fn_key = first_key(record, FN_KEYS)
    fn_name = record[fn_key] if fn_key else (test_obj or {}).get("fn_name") or None
    meta = {k: v for k, v in record.items() if k not in _CONSUMED}
    if not isinstance(record.get("source"), (str, type(None))):
        meta["provenance"] = record["source"]
    starter_key = first_key(record, STARTER_KEYS)
    starter = record[starter_key] if starter_key else ""
    if not isinstance(starter, str):
        raise ProblemFormatError(f"field {starter_key!r} must be a string")
    return Problem(
        id=pid,
        source=source,
        difficulty=label(record, DIFFICULTY_KEYS),
        statement=record[statement_key],
        starter_code=starter,
        entry_point=fn_name,
        solutions=_solutions(record),
        tests=apps.build_tests(inputs, outputs, fn_name, where),
        meta=meta,
    )


def _tests_fields(record: dict) -> tuple[Any, Any, str, dict | None]:
    """(inputs, outputs, name for messages, the test object if any)."""
    if "inputs" in record or "outputs" in record:
        return maybe_json(record, "inputs"), maybe_json(record, "outputs"), "record", None
    key = first_key(record, TEST_KEYS)
    if key is None:
        raise ProblemFormatError(f"no tests: no inputs/outputs and none of {', '.join(TEST_KEYS)}")
    obj = maybe_json(record, key)
    if isinstance(obj, list) and all(isinstance(t, dict) for t in obj):  # [{input, output}, ...]
        try:
            return [t["input"] for t in obj], [t["output"] for t in obj], key, None
        except KeyError as exc:
            raise ProblemFormatError(f"{key}: a test has no {exc.args[0]!r}") from None
    if not isinstance(obj, dict):
        raise ProblemFormatError(f"field {key!r} must be an object with inputs/outputs")
    return obj.get("inputs"), obj.get("outputs"), key, obj


def _solutions(record: dict) -> tuple[str, ...]:
    """All solutions, canonical first; a string may be code or JSON text of a list."""
    found: list[str] = []
    for key in SOLUTION_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                decoded = json.loads(value)
                if isinstance(decoded, list):
                    value = decoded
            except json.JSONDecodeError:
                pass  # code that happens to start with "["
        if value in (None, "", []):
            continue
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(s, str) for s in items):
            raise ProblemFormatError(f"field {key!r} must be a string or a list of strings")
        found.extend(s for s in items if s not in found)
    return tuple(found)
