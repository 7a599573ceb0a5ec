"""Runs one test of one program inside the sandboxed child, and reports what happened.

Imported once by the fork server (so every test starts from an already-imported
interpreter) and executed in each forked child.  It decides nothing about correctness:
expected outputs never enter the sandbox.  It reports facts (the return value as plain
data, the exception raised, the lines executed) and the trusted parent judges them.

What a program might do to fake success, and what stops it here (the comparisons in
the parent and the process layers do the rest):
- exit early (sys.exit(0), os._exit(0), an exception swallowed): the report is written
  by this module only after the test completes; no report, no pass.
- return an object whose __eq__ is always true: return values are copied into exact
  builtin types before anything compares them (`plain_copy`), or refused.
- shadow or patch, by name, builtins, library functions or this harness (a global
  `set`, `builtins.len = ...`, `math.isclose = ...`, `json.dumps = ...`, a sys.modules
  entry, this module's functions): right after the program, every module loaded at
  start-up gets back the exact contents frozen before any program ran, and test code
  runs without the program's globals that shadow builtins.
- install a trace function that jumps over asserts: sys.settrace/setprofile are removed.
Not covered: a program that walks the interpreter's frames or heap (sys._getframe,
gc) to reach this module's private objects could forge its own report.  That takes
deliberate knowledge of this file; a policy does not stumble on it.  It still cannot
touch anything outside its own process: the sandbox layers hold whatever it does.
"""

from __future__ import annotations

import builtins
import json
import sys
import traceback

SOLUTION_FILE = "<solution>"
TEST_FILE = "<test>"
# The standard imports APPS's and LeetCode's harnesses run before a call-based solution
# (which uses List, deque, heappush, ... without importing them).  stdin programs and
# assert-tested functions run as plain scripts, as they were written.
PRELUDE = (
    "from typing import *\nfrom collections import *\nfrom itertools import *\n"
    "from functools import *\nfrom heapq import *\nfrom bisect import *\n"
    "import math, collections, itertools, functools, heapq, bisect, string, re, sys\n"
)
PRELUDE_CODE = compile(PRELUDE, "<prelude>", "exec")
# Python 3.11 keeps pure-Python calls off the C stack, so deep recursion is safe; data
# sets' references were checked with memo tables warmed by earlier tests in one process.
RECURSION_LIMIT = 50_000


# What the harness and test code rely on after the program has run.  Restoring every
# loaded module would cost milliseconds per test in copy-on-write faults.
GUARDED_MODULES = ("builtins", "sys", "json", "json.encoder", "json.decoder", "harness", "child", "math", "cmath",
                   "re", "string", "collections", "itertools", "functools", "operator", "heapq", "bisect")


def snapshot_modules() -> None:
    """Called by the fork server after its imports, before any program runs: freezes the
    contents of the guarded modules (builtins, sys, json, this module, the libraries
    test code uses) into a closure that `run` calls right after the program, so nothing
    the program rebound there by name survives into the test phase or the report.

    A module whose dict has not changed since the last restore is skipped (its version
    tag, below, says so): rewriting every guarded dict touched every value's refcount,
    hundreds of copy-on-write page faults in each fresh child.  The closure is bound to
    `restore_modules` before the snapshot is taken, so restoring this module keeps it."""
    global restore_modules
    modules, version = sys.modules, _dict_version_reader()
    frozen: list[list] = []  # per module: [name, module, its dict, frozen items, version after last restore]

    def restore(frozen=frozen, modules=modules, _version=version) -> None:
        # Only locals and dict methods here: builtins may be the program's at this point.
        for entry in frozen:
            name, module, namespace = entry[0], entry[1], entry[2]
            if modules.get(name) is not module:
                modules[name] = module
            if _version is not None and _version(namespace) == entry[4]:
                continue
            namespace.clear()
            namespace.update(entry[3])
            if _version is not None:
                entry[4] = _version(namespace)

    restore_modules = restore
    for name in GUARDED_MODULES:
        if name in modules:
            namespace = modules[name].__dict__
            frozen.append([name, modules[name], namespace, tuple(namespace.items()),
                           None if version is None else version(namespace)])


def _dict_version_reader():
    """A function giving a dict's version tag (PEP 509: CPython gives a dict a new one on
    every change), read from the dict's struct without touching the dict or its values;
    None unless this interpreter passes a check of that layout (then every restore
    rewrites every guarded dict, correct and slower)."""
    try:
        import ctypes
    except ImportError:
        return None

    def read(d, _from_address=ctypes.c_uint64.from_address, _id=id,
             _offset=3 * ctypes.sizeof(ctypes.c_ssize_t)) -> int:  # after ob_refcnt, ob_type, ma_used
        return _from_address(_id(d) + _offset).value

    if sys.implementation.name != "cpython":
        return None
    probe = {"a": 1}
    seen = [read(probe)]
    probe.get("a")
    unchanged = read(probe) == seen[0]
    for change in (lambda: probe.__setitem__("b", 2), lambda: probe.pop("b"), lambda: probe.update(c=3),
                   probe.clear, lambda: probe.__setitem__("a", 1)):
        change()
        seen.append(read(probe))
    return read if unchanged and len(set(seen)) == len(seen) else None


def restore_modules() -> None:
    """Replaced by `snapshot_modules`; without a snapshot there is nothing to restore."""


class NotPlainData(TypeError):
    """A return value that is not built from plain builtin types."""


_PLAIN_SCALARS = (int, float, str, bool, type(None), bytes, complex)
# A heap type without Py_TPFLAGS_IMMUTABLETYPE is a class whose methods can be set:
# every class a program defines, and a few library ones.  Static and immutable types
# (re.Match, datetime, Decimal, ...) cannot be rigged, so they pass through.
_HEAP_TYPE, _IMMUTABLE_TYPE = 1 << 9, 1 << 8


def _unpatchable(t: type) -> bool:
    """A type no program can define or patch, so its __eq__ is genuine."""
    return (t.__flags__ & (_HEAP_TYPE | _IMMUTABLE_TYPE)) != _HEAP_TYPE


def plain_copy(value, _type=type, _isinstance=isinstance):
    """A deep copy of `value` in exact builtin types (subclasses converted by value).

    The copy's __eq__ is the builtin one whatever the program defined, so the test's
    comparisons are genuine.  Iterators and generators become tuples (so `list(x)` in a
    test still works, while `x == [..]` stays false as it would be for the iterator).
    """
    t = _type(value)
    if t in _PLAIN_SCALARS or _unpatchable(t):
        return value
    for base in (bool, int, float, str, bytes, complex):
        if _isinstance(value, base):
            return base(value)
    if _isinstance(value, dict):
        return {plain_copy(k): plain_copy(v) for k, v in dict.items(value)}
    if _isinstance(value, (list, tuple, set, frozenset)):
        base = next(b for b in (list, tuple, frozenset, set) if _isinstance(value, b))
        return base(plain_copy(v) for v in base.__iter__(value))
    if hasattr(value, "__next__") and hasattr(value, "__iter__"):
        return tuple(plain_copy(v) for v in value)
    raise NotPlainData(f"return value of type {t.__name__} is not plain data")


def json_plain(value):
    """The JSON form of a call test's return value (compared in the parent)."""
    v = plain_copy(value)
    return json.dumps(_jsonable(v), allow_nan=True)


def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {_key(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset, bytes, complex)):
        raise NotPlainData(f"return value of type {type(v).__name__} has no JSON form")
    return v


def _key(k):
    if isinstance(k, (str, int, float, bool)) or k is None:
        return json.dumps(k) if not isinstance(k, str) else k
    raise NotPlainData(f"dict key of type {type(k).__name__} has no JSON form")


def resolve_entry(namespace: dict, name: str):
    """A function the program defined, else a method of LeetCode's `class Solution`,
    else whatever callable has the name (the prelude's `merge` must not win over
    `Solution.merge`)."""
    fn = namespace.get(name)
    if callable(fn) and getattr(getattr(fn, "__code__", None), "co_filename", None) == SOLUTION_FILE:
        return fn
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, name):
        return getattr(solution(), name)
    if callable(fn):
        return fn
    raise NameError(f"entry point {name!r} is not defined")


def run(code, test: dict, report) -> None:
    """Run the program `code` (already compiled) for one test; `report(dict)` once.

    Everything used after the program is either bound to a local before it runs
    (`restore`, `report`) or looked up only after `restore()` has undone whatever the
    program rebound in builtins, sys, json or this module."""
    restore, sys_dict = restore_modules, sys.__dict__
    _disable_tracing(sys_dict)
    outcome = {"status": "ok"}
    kind = test["kind"]
    namespace = {"__name__": "__main__" if kind == "stdio" else "solution", "__file__": "solution.py",
                 "__builtins__": builtins}
    stage = "prelude"
    try:
        if kind == "call":
            exec(PRELUDE_CODE, namespace)
        stage = "program"
        _run_program(code, namespace, kind)
        stage = "test"
        if kind == "stdio":  # judged on its output alone, in the parent
            _flush()
            report(outcome)  # restored by the child before its next test (child.prepare)
            return
        restore()
        _disable_tracing(sys_dict)
        if kind == "call":
            fn = resolve_entry(namespace, test["entry_point"])
            value = fn(*json.loads(test["args"]))
            restore()  # the call ran program code again
            _disable_tracing(sys_dict)
            outcome["value"] = json_plain(value)
        elif kind == "assert":
            _run_assert_test(namespace, test, restore)
    except BaseException as exc:  # noqa: BLE001 - everything the program raises is a fact to report
        restore()
        _disable_tracing(sys_dict)
        outcome = _describe(exc, stage)
    _flush()
    report(outcome)


def _disable_tracing(sys_dict: dict, _settrace=sys.settrace, _setprofile=sys.setprofile,
                     _setrecursionlimit=sys.setrecursionlimit) -> None:
    """No trace or profile hooks: a trace function could jump over a test's asserts.
    (The functions are bound at import: after the first test they are gone from sys.)"""
    _settrace(None)
    _setprofile(None)
    _setrecursionlimit(RECURSION_LIMIT)
    sys_dict.pop("settrace", None)
    sys_dict.pop("setprofile", None)


def _run_program(code, namespace: dict, kind: str) -> None:
    """A stdin script may end itself with exit(0); a function's module may not."""
    try:
        exec(code, namespace)
    except SystemExit as exc:
        if kind != "stdio" or exc.code not in (None, 0):
            raise


def _run_assert_test(namespace: dict, test: dict, restore) -> None:
    """Test code sees pristine builtins and the entry point wrapped so that each call
    is followed by a restore and its return value is plain data; program globals that
    shadow builtins are dropped from its scope."""
    entry = test.get("entry_point")
    if test.get("setup"):  # after the program: MBPP's setup may use the program's classes
        exec(compile(test["setup"], "<setup>", "exec"), namespace)
    pristine = builtins.__dict__
    scope = {k: v for k, v in namespace.items() if k not in pristine}
    scope["__builtins__"] = dict(pristine)
    if entry:
        fn = resolve_entry(namespace, entry)

        def guarded(*args, _fn=fn, _restore=restore, _copy=plain_copy, **kwargs):
            value = _fn(*args, **kwargs)
            _restore()
            return _copy(value)

        scope[entry] = guarded
    exec(compile(test["code"], TEST_FILE, "exec"), scope)


def _describe(exc: BaseException, stage: str) -> dict:
    kind = type(exc).__name__
    out = {"status": "exception", "stage": stage, "exc_type": kind, "exc_msg": safe_str(exc)[:2000]}
    if isinstance(exc, SystemExit):
        out["status"] = "exit"
        out["exit_code"] = exc.code if isinstance(exc.code, int) else 1
    if isinstance(exc, AssertionError):
        frames = traceback.extract_tb(exc.__traceback__)
        out["in_test"] = bool(frames) and frames[-1].filename == TEST_FILE
    out["not_plain"] = isinstance(exc, NotPlainData)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SOLUTION_FILE]
    if frames:
        out["line"] = frames[-1].lineno
    return out


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 - a program's exception may break even str()
        return f"<unprintable {type(exc).__name__}>"


def _flush() -> None:
    for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have closed or replaced it
            pass
