"""The fork server: one long-lived, sandboxed interpreter per executor slot.

Started once per slot (inside bubblewrap when the host allows it) it imports everything
a test needs, then for every program forks a child that confines itself once and runs
the program's tests one after another (child.py), while the server watches each test's
clock and output (watch.py).  A fork costs about a millisecond on our machines and a
fresh interpreter tens; that is the executor's speed.  The server itself never runs
untrusted code: it compiles, forks, watches, and makes sure nothing a program started
survives it.  A child that dies mid-test is replaced by a fresh one for the tests left.

Protocol on stdin/stdout: 4-byte big-endian length, then a JSON object, each way.
  start-up -> {"ok": true, "layers": [...applied], "missing": {layer: why}, "coverage": mode, ...}
  {"op": "judge", "program": str, "coverage": bool, "tests": [...], "limits": {...}}
      -> {"ok": true, "executable_lines": [...], "coverage": bool, "runs": [facts, ...]}
       | {"ok": false, "compile_error": str}
One request per program keeps the pipe round trips off the per-test path.  `runs` stops
after a test that timed out (one timeout bounds what a hanging program costs).  With
coverage each run's "lines" is read from the program's LineRecord after its child is
gone (None: that test left no record).
This file runs as a script with only the standard library (+ slipcover, pyseccomp,
landlock when installed) so the sandbox needs nothing of execrl but this directory.
"""

from __future__ import annotations

import ctypes
import dis
import gc
import json
import os
import signal
import struct
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import child  # noqa: E402
import confine  # noqa: E402
import harness  # noqa: E402
import lineprobes  # noqa: E402
import watch  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36
# Imported before the first fork: children inherit them, so a program's imports cost
# nothing.  `socket` is here so that the layers that block the network (seccomp, bwrap)
# are what stops a program's connection, never an import that happens to fail.
PRELOAD = (
    "typing collections itertools functools heapq bisect math string re sys os json "
    "random fractions decimal statistics operator copy datetime array queue dataclasses "
    "enum numbers cmath textwrap struct io traceback calendar unicodedata hashlib "
    "abc contextlib pprint time threading socket"
).split()
# Where the tests' uid cannot read the interpreter (no bwrap, Python under /root), a
# program can import only what is already loaded: then also what competitive-programming
# solutions import beyond the list above (measured on the APPS, TACO, MBPP and LeetCode
# references).
UNREADABLE_PRELOAD = (
    "types atexit gc __future__ secrets base64 binascii weakref copyreg pickle inspect ast "
    "platform sortedcontainers"
).split()
# Heavy modules few programs use: there, the server imports them the first time a
# program's source names them, and keeps them for later programs.  Preloaded at start,
# numpy made every fork of every program 1.3-1.8 ms slower (a third of a small program's
# time); imported in each child it cost a numpy program about 200 ms.
IMPORTED_ON_DEMAND = {"numpy": ("numpy", "numpy.random", "numpy.fft", "numpy.polynomial")}


def main() -> None:
    config = json.loads(sys.argv[1])
    checks = HostChecks(config)
    started = time.perf_counter()
    names = PRELOAD + config.get("preload", []) + (UNREADABLE_PRELOAD if checks.stdlib_unreadable else [])
    os.environ.update(child.SINGLE_THREADED)  # before any preload can start a BLAS thread pool
    preloaded = [name for name in names if _try_import(name)]
    preload_s = time.perf_counter() - started
    slipcover = _import_slipcover()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    harness.snapshot_modules()
    server = Server(config, slipcover, checks)
    gc.freeze()  # start-up objects never get collected: children do not touch (copy) their pages
    _send({"ok": True, "pid": os.getpid(), **server.describe(), "preloaded": preloaded, "preload_s": preload_s})
    while True:
        request = _receive()
        if request is None:
            return
        try:
            reply = server.handle(request)
        except Exception as exc:  # noqa: BLE001 - reported to the host as our failure
            reply = {"infra_error": f"{type(exc).__name__}: {exc}"}
        _send(reply)


def _try_import(name: str) -> bool:
    try:
        __import__(name)
        return True
    except ImportError:
        return False


class HostChecks:
    """What this server can actually apply, checked from inside before any program runs:
    bwrap's namespaces (seen from within), whether the tests' uid can be taken and can
    read the interpreter's standard library.  `missing` says why a planned layer is not."""

    def __init__(self, config: dict) -> None:
        self.missing: dict[str, str] = {}
        if config.get("bwrap"):
            reason = confine.bwrap_missing()
            if reason:
                self.missing["bwrap"] = reason
        self.bwrap = bool(config.get("bwrap")) and "bwrap" not in self.missing
        uid, gid = config.get("uid"), config.get("gid", config.get("uid"))
        self.uid = self.gid = None
        self.stdlib_unreadable = False
        if uid is not None:
            reason = confine.as_uid(uid, gid, lambda: None)
            if reason:
                self.missing["setuid"] = f"cannot become uid {uid}: {reason}"
            else:
                self.uid, self.gid = uid, gid
                self.stdlib_unreadable = confine.as_uid(uid, gid, confine.read_stdlib) is not None


def _import_slipcover():
    try:
        import slipcover
        import slipcover.bytecode  # noqa: F401 - the editor self-removing probes use

        return slipcover
    except ImportError:
        return None


class Server:
    def __init__(self, config: dict, slipcover, checks: HostChecks) -> None:
        self.checks = checks
        self.uid, self.gid = checks.uid, checks.gid
        errors = confine.layer_errors()
        self.missing = dict(checks.missing)
        for layer in ("seccomp", "landlock"):
            if config.get(layer, True) and errors[layer]:
                self.missing[layer] = errors[layer]
        self.slipcover = slipcover
        self.self_removing_probes = slipcover is not None and lineprobes.self_test(slipcover.bytecode.Editor)
        self.workdir = _make_workdir(config.get("tmp_root") or tempfile.gettempdir(), self.uid, self.gid)
        use_landlock = config.get("landlock", True) and errors["landlock"] is None
        use_seccomp = config.get("seccomp", True) and errors["seccomp"] is None
        self.landlock = confine.landlock_ruleset(self.workdir) if use_landlock else None
        self.seccomp = confine.seccomp_program() if use_seccomp else None
        self.stream_encoding = child.stream_encoding()
        child.sandbox_environment(self.workdir)
        os.chdir(self.workdir)
        self.codes: list[tuple] = []  # per test of the loaded program: (code, its line coverage or None)
        self.record: lineprobes.LineRecord | None = None  # the loaded program's executed lines, per test
        self.executable: list[int] = []
        self.vm_size = 0

    def describe(self) -> dict:
        """The layers this server applies to every test, as built, and why any that was
        asked for is not (the host compares them with its plan)."""
        applied = [("bwrap", self.checks.bwrap), ("setuid", self.uid is not None), ("rlimits", True),
                   ("landlock", self.landlock is not None), ("seccomp", self.seccomp is not None)]
        return {"layers": [name for name, on in applied if on], "missing": self.missing,
                "coverage": self.coverage_mode(), "stdlib_unreadable": self.checks.stdlib_unreadable}

    def coverage_mode(self) -> str | None:
        if self.slipcover is None:
            return None
        return "self-removing probes" if self.self_removing_probes else "slipcover copy per test"

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "judge":
            return self.judge(request)
        if op == "ping":
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def judge(self, request: dict) -> dict:
        loaded = self.load(request["program"], bool(request.get("coverage")), len(request["tests"]))
        if not loaded["ok"]:
            return loaded
        tests, runs = request["tests"], []
        while len(runs) < len(tests):
            batch = self.run_child(tests, len(runs), request["limits"])
            if not batch:
                return {"infra_error": f"test child made no progress at test {len(runs)}"}
            runs += batch
            if runs[-1]["timed_out"]:
                break
        if self.record is not None:  # read after the children are gone: killed tests keep their lines
            for index, run in enumerate(runs):
                run["lines"] = self.record.lines(index, self.executable)
        return {**loaded, "runs": runs, "coverage": self.record is not None}

    def load(self, program: str, coverage: bool, tests: int) -> dict:
        """Compile once per program; every child inherits the code objects.  With
        coverage the program is instrumented here, where the pages are warm, rather than
        in each child, where every allocation is a fault: once, with self-removing
        probes that each test re-arms (lineprobes.py), or else one slipcover copy per
        test (a slipcover probe reports its line only the first time it fires).  The
        lines land in a LineRecord shared with the children, made here per program."""
        self.codes = []
        if self.record is not None:
            self.record.close()
            self.record = None
        try:
            code = compile(program, harness.SOLUTION_FILE, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
            return {"ok": False, "compile_error": f"{type(exc).__name__}: {exc}"}
        self.executable = executable = sorted(_code_lines(code))
        if self.checks.stdlib_unreadable:
            self._import_on_demand(program)
        if coverage and self.slipcover is not None:
            self.record = lineprobes.LineRecord(tests, max(executable, default=0))
        if self.record is not None and self.self_removing_probes:
            probes = lineprobes.SelfRemovingProbes(self.slipcover.bytecode.Editor, self.record)
            self.codes = [(probes.instrument(code), probes)] * tests
        elif self.record is not None:
            copies = [lineprobes.SlipcoverCopy(self.slipcover, code, self.record) for _ in range(tests)]
            self.codes = [(copy.code, copy) for copy in copies]
        else:
            self.codes = [(code, None)] * tests
        return {"ok": True, "executable_lines": executable}

    def _import_on_demand(self, program: str) -> None:
        """Import the heavy modules a program names (IMPORTED_ON_DEMAND) into the server,
        once, so that its children, whose uid cannot read them, find them loaded.  The
        server never runs program code, so its modules are still pristine: the guarded
        modules' snapshot is taken again and the new objects frozen, as at start-up."""
        wanted = [module for name, modules in IMPORTED_ON_DEMAND.items() if name in program
                  for module in modules if module not in sys.modules]
        if wanted:
            for module in wanted:
                _try_import(module)
            harness.snapshot_modules()
            gc.freeze()

    def run_child(self, tests: list, first: int, limits: dict) -> list[dict]:
        """Fork one child for tests[first:]; facts for those it ran (at least one)."""
        if len(self.codes) < len(tests):
            raise RuntimeError("run before a successful load")
        nonce = os.urandom(16).hex()
        pipes = {name: os.pipe() for name in ("out", "err", "res", "ctl")}
        self.vm_size = child.vm_size()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child must never return into the server's loop
            try:
                child.TestChild(self, tests[first:], limits, pipes, nonce, first).main()
            except BaseException:  # noqa: BLE001 - a bug of ours: leave its trace on stderr
                traceback.print_exc()
            finally:
                os._exit(71)
        for name, (read_end, write_end) in pipes.items():
            os.close(read_end if name == "ctl" else write_end)
        fds = {name: ends[0] for name, ends in pipes.items() if name != "ctl"}
        watcher = watch.ChildWatch(pid, fds, pipes["ctl"][1], limits, nonce, first, len(tests) - first, start)
        try:
            runs = watcher.watch()
        finally:
            for fd in [*fds.values(), pipes["ctl"][1]]:
                os.close(fd)
            if watcher.exiting:  # it reported its last test: let it exit (cheaper than a kill)
                watch.await_exit(pid)
            self._kill_leftovers(pid)
            child.empty_dir(self.workdir)
        return runs

    def _kill_leftovers(self, pid: int) -> int:
        """Kill the child's process group, then (as the slot's uid) every process of that
        uid: a program that called setsid and forked is gone too.  Reap what died (the
        server is the subreaper, so orphans come back to it).  Under seccomp a test
        cannot fork at all, so the uid sweep is skipped there."""
        _killpg(pid)
        if self.uid is not None and self.seccomp is None:
            killer = os.fork()
            if killer == 0:
                _sweep_uid(self.uid, self.gid)
            os.waitpid(killer, 0)
        reaped = 0
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return reaped
            reaped += 1


def _sweep_uid(uid: int, gid: int) -> None:
    """In a forked helper: become `uid` and SIGKILL every process of it until none is
    left (a fork bomb keeps forking while the first sweep runs); never returns."""
    try:
        os.setgid(gid)
        os.setuid(uid)
        for _ in range(1000):
            os.kill(-1, signal.SIGKILL)
    except OSError:
        pass  # ESRCH: nothing left to kill
    os._exit(0)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _make_workdir(tmp_root: str, uid: int | None, gid: int | None) -> str:
    """The slot's private directory, the only place its tests may write."""
    workdir = tempfile.mkdtemp(prefix="execrl-work-", dir=tmp_root)
    if uid is not None:
        os.chown(workdir, uid, gid)
    return workdir


def _code_lines(code) -> set[int]:
    """Lines that hold bytecode, in the module and every nested function or class."""
    lines = {line for _, line in dis.findlinestarts(code) if line}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            lines |= _code_lines(const)
    return lines


def _receive() -> dict | None:
    header = _read_exact(4)
    if header is None:
        return None
    body = _read_exact(struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)


def _read_exact(n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        data = os.read(0, n - got)
        if not data:
            return None
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _send(message: dict) -> None:
    child.write_all(1, child.frame(message))


if __name__ == "__main__":
    main()
