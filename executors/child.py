"""The test child: one forked, confined process runs a program's tests one after another.

A fork and its confinement (Landlock, rlimits, setuid, seccomp) cost about 2.5 ms on
our machines, more than most tests; paying them once per program instead of once per
test is most of the executor's speed.  Tests stay isolated where it matters:
- each test runs the program from scratch in a fresh namespace, with its own stdin (a
  memory file), fresh sys.stdin/stdout/stderr objects, fd 1 and 2 re-pointed at the
  server's pipes, no file descriptors left from the previous test, an emptied working
  directory, and its own CPU-time allowance (the server enforces it, watch.py);
- the guarded modules (harness.GUARDED_MODULES) are restored after every program;
- the server times each test on its own CPU time (with a wall-clock backstop), records
  its executed lines in memory it shares with the child, attributes output to the test that
  was running (the child waits for a go byte between tests, after the server has read
  everything the previous test wrote), and kills the child on a timeout, an output
  flood or a malformed report; a child that dies mid-test is replaced by a fresh one
  for the remaining tests.
What a program carries into its own later tests (threads it started, state it hid in
an unguarded module) can only change its own verdicts, never reveal an expected output:
expected outputs never enter the sandbox.

Runs inside the fork server (standard library only).  Everything a later test needs is
bound here before the first program runs, so a program that rebinds `os.read` or
`io.open` cannot steer the harness of the next test.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import struct
import sys

import confine
import harness

FD_RES, FD_CTL, FD_OUT, FD_ERR = 3, 4, 5, 6  # reports, go bytes, spare copies of fd 1 and 2
FIRST_FREE_FD = 7
EXIT_SETUP_FAILED = 70
EXIT_STALE = 72  # a later test could not be prepared: the server runs it in a fresh child
# One BLAS/OpenMP thread: a test's CPU time counts all its threads, and a fork server
# that imports numpy later (forkserver.IMPORTED_ON_DEMAND) must not start a thread pool.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **SINGLE_THREADED}
# Bound at import, in the server, before any program exists ("child" is a guarded module,
# so these names are restored after every program too).
_dup2, _closerange, _chdir, _read, _close = os.dup2, os.closerange, os.chdir, os.read, os.close
_memfd_create, _lseek, _exit = os.memfd_create, os.lseek, os._exit
_getrusage, _getrlimit, _setrlimit = resource.getrusage, resource.getrlimit, resource.setrlimit
_RUSAGE_SELF, _RLIMIT_CPU, _RLIM_INFINITY = resource.RUSAGE_SELF, resource.RLIMIT_CPU, resource.RLIM_INFINITY
_open, _sys_dict = io.open, sys.__dict__
_scandir, _unlink, _rmtree = os.scandir, os.unlink, shutil.rmtree


def frame(message: dict, _dumps=json.dumps, _pack=struct.pack, _repr=repr) -> bytes:
    """4-byte big-endian length, then the JSON body (every pipe of the server uses it).
    Its helpers are bound as defaults: a program cannot rebind them before its report."""
    data = _dumps(message, default=_repr).encode()
    return _pack(">I", len(data)) + data


def write_all(fd: int, data: bytes, _write=os.write, _memoryview=memoryview) -> None:
    view = _memoryview(data)
    while view:
        view = view[_write(fd, view):]


class TestChild:
    """Everything the child needs from the server, captured at fork time."""

    def __init__(self, server, tests: list, limits: dict, pipes: dict, nonce: str, first_index: int) -> None:
        self._restore = harness.restore_modules  # the snapshot's closure, bound before any program
        self.server, self.tests, self.limits = server, tests, limits
        self.pipes, self.nonce, self.first_index = pipes, nonce, first_index
        self.per_test_cpu = int(limits["timeout_s"]) + 1

    def main(self) -> None:
        """Confine, run every test, exit; never returns (the caller _exits on a bug)."""
        try:
            self.confine()
        except BaseException as exc:  # noqa: BLE001 - our failure, reported as such
            self._setup_failed(exc)
        for offset, (test, code, coverage) in enumerate(self._test_steps()):
            if offset and not self._go():
                _exit(0)  # the server is done with us
            try:
                self.prepare(test, offset, coverage)
            except BaseException as exc:  # noqa: BLE001
                if offset:  # the previous test broke something: a fresh child runs this one
                    _exit(EXIT_STALE)
                self._setup_failed(exc)  # in a fresh child it is our failure
            harness.run(code, test, self._reporter(self.first_index + offset, coverage))
        _exit(0)

    @staticmethod
    def _go() -> bool:
        """Wait for the server's go byte; a program that closed our pipe gets its next
        test run by a fresh child."""
        try:
            return bool(_read(FD_CTL, 1))
        except OSError:
            _exit(EXIT_STALE)

    def _setup_failed(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {harness.safe_str(exc)}"
        write_all(FD_RES, frame({"status": "sandbox_error", "exc_msg": message,
                                 "nonce": self.nonce, "index": self.first_index}))
        _exit(EXIT_SETUP_FAILED)

    def confine(self) -> None:
        server, pipes = self.server, self.pipes
        os.setsid()
        if server.landlock is not None:  # before closerange: it needs the ruleset's fd
            server.landlock.apply()
        for fd, (name, end) in {1: ("out", 1), 2: ("err", 1), FD_RES: ("res", 1), FD_CTL: ("ctl", 0),
                                FD_OUT: ("out", 1), FD_ERR: ("err", 1)}.items():
            os.dup2(pipes[name][end], fd)
        os.closerange(FIRST_FREE_FD, 1 << 16)
        os.chdir(server.workdir)  # the environment is the server's, set once (sandbox_environment)
        confine.set_limits(
            cpu_s=self.per_test_cpu * len(self.tests) + 1,
            address_space=server.vm_size + self.limits["memory_mb"] * (1 << 20),
            file_bytes=self.limits.get("file_bytes", 16 << 20),
            open_files=self.limits.get("open_files", 64),
            processes=self.limits.get("processes", 32) if server.uid is not None else None,
        )
        if server.uid is not None:
            confine.drop_privileges(server.uid, server.gid)
        if server.seccomp is not None:
            server.seccomp.install()

    def _test_steps(self) -> list[tuple]:
        """(test, code, coverage hooks or None) per test, as the server loaded them.  The
        hooks are the coverage's `start` and `finish`, bound now, before any program runs
        (a program that rebinds the class's methods cannot steer a later test's)."""
        codes = self.server.codes[self.first_index:]
        return [(test, code, None if coverage is None else (coverage.start, coverage.finish))
                for test, (code, coverage) in zip(self.tests, codes)]

    def _reporter(self, index: int, coverage):
        """The only way a test's result leaves the child: one framed message per test,
        written after the test's output has been flushed to fd 1.  Executed lines do not
        travel in it: the probes wrote them into the server's shared LineRecord as they
        ran (a killed test keeps them); `finish` completes the record where they could not."""
        streams, start = self.streams, self.cpu_at_start
        nonce = self.nonce
        finish = _no_coverage if coverage is None else coverage[1]  # (start, finish): see _test_steps

        def report(outcome: dict, _frame=frame, _write_all=write_all, _getrusage=_getrusage,
                   _self=_RUSAGE_SELF, _BaseException=BaseException) -> None:
            # Everything here is bound before the program ran: a stdio program's report
            # is written before the guarded modules are restored.
            for stream in streams:
                try:
                    stream.flush()
                except _BaseException:  # noqa: BLE001 - the program may have closed it
                    pass
            usage = _getrusage(_self)
            finish(index)
            outcome["cpu_s"] = usage.ru_utime + usage.ru_stime - start
            outcome["nonce"], outcome["index"] = nonce, index
            _write_all(FD_RES, _frame(outcome))

        return report

    def prepare(self, test: dict, offset: int, coverage) -> None:
        """Give the next test a clean process: stdin, std streams, fds, directory, CPU
        allowance, re-armed coverage.  Raises when the previous test broke something
        this cannot mend."""
        if offset:
            self._restore()  # what the previous program rebound in the guarded modules
            _dup2(FD_OUT, 1)
            _dup2(FD_ERR, 2)
            _closerange(FIRST_FREE_FD, 1 << 16)
            empty_dir(self.server.workdir)
            _chdir(self.server.workdir)
        _point_stdin(test.get("input", "") if test["kind"] == "stdio" else "")
        usage = _getrusage(_RUSAGE_SELF)
        self.cpu_at_start = usage.ru_utime + usage.ru_stime
        _, hard = _getrlimit(_RLIMIT_CPU)
        soft = int(self.cpu_at_start) + self.per_test_cpu
        _setrlimit(_RLIMIT_CPU, (soft if hard == _RLIM_INFINITY else min(soft, hard), hard))
        self.streams = _fresh_std_streams(self.server.stream_encoding)
        if coverage is not None:
            start_coverage, _ = coverage
            start_coverage(self.first_index + offset)  # re-arm fired probes, begin this test's record


def _no_coverage(index: int) -> None:
    """The reporter's `finish` when no coverage was asked for."""


def sandbox_environment(workdir: str) -> None:
    """The environment every test sees; the server sets it on itself once, so children
    inherit it instead of rebuilding it per fork."""
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, **SANDBOX_ENV})


def _point_stdin(data: str) -> None:
    """stdin from a memory file: no pipe to keep fed, EOF right after the input."""
    fd = _memfd_create("stdin")
    write_all(fd, data.encode())
    _lseek(fd, 0, 0)
    _dup2(fd, 0)
    _close(fd)


def _fresh_std_streams(encoding: dict) -> tuple:
    """New sys.stdin/stdout/stderr over fds 0-2: no read-ahead left from the previous
    test's input, no stream object that test closed or replaced."""
    stdin = _open(0, "r", closefd=False, **encoding["stdin"])
    stdout = _open(1, "w", closefd=False, **encoding["stdout"])
    stderr = _open(2, "w", buffering=1, closefd=False, **encoding["stderr"])  # line-buffered, as Python sets it
    for name, stream in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        _sys_dict[name] = stream
        _sys_dict[f"__{name}__"] = stream
    return stdout, stderr


def vm_size() -> int:
    """This interpreter's own address space: the memory limit is on top of it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def stream_encoding() -> dict:
    """The encodings the interpreter chose for its standard streams (read by the server
    at start-up, so children build theirs the same way)."""
    return {name: {"encoding": getattr(sys, f"__{name}__").encoding, "errors": getattr(sys, f"__{name}__").errors}
            for name in ("stdin", "stdout", "stderr")}


def empty_dir(path: str) -> None:
    """Remove what a test left in a directory (whatever its modes, as far as we may)."""
    with _scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    _unlink(entry.path)
                except OSError:
                    pass

