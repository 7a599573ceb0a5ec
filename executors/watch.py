"""The server's side of one test child: time each test, collect its output, read its report.

The child (child.py) runs tests one after another and writes one framed report per test
on its result pipe.  This watcher enforces each test's time limit on the child's CPU time
(user + system, read from /proc/<pid>/stat), so a verdict does not depend on how busy the
machine is, with a wall-clock backstop for programs that sleep or block; it reads stdout
and stderr as they come (the child never blocks on a full pipe), caps output, and when a
report arrives drains what that test printed before telling the child to go on.  It
ends a child that overruns, floods, writes a report it cannot trust, or dies; the facts
gathered up to then (one dict per test that ran) go back to the server, which starts a
fresh child for the tests that remain.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import time

from child import EXIT_STALE  # the child could not prepare a later test

RESULT_CAP = 64 << 20
STDERR_CAP = 1 << 16
EXIT_GRACE_S = 0.2
MIN_CPU_POLL_S = 0.005
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class TestOutput:
    """stdout and stderr of the test that is running, with their byte counts."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[bytes]] = {"out": [], "err": []}
        self.sizes = {"out": 0, "err": 0}

    def add(self, name: str, data: bytes) -> None:
        self.chunks[name].append(data)
        self.sizes[name] += len(data)

    def text(self, name: str, cap: int, tail: bool = False) -> str:
        data = b"".join(self.chunks[name])
        data = data[-cap:] if tail else data[:cap]
        return data.decode("utf-8", "replace")


class ChildWatch:
    def __init__(self, pid: int, fds: dict[str, int], ctl_fd: int, limits: dict, nonce: str,
                 first_index: int, count: int, start: float) -> None:
        self.pid, self.ctl_fd, self.limits = pid, ctl_fd, limits
        self.nonce, self.index, self.end_index = nonce, first_index, first_index + count
        self.first_index = first_index
        self.out_cap = limits["max_output_bytes"]
        self.open_fds = {fd: name for name, fd in fds.items()}
        self.runs: list[dict] = []
        self.output = TestOutput()
        self.results = bytearray()
        self.cpu_limit, self.wall_limit = limits["timeout_s"], limits["wall_timeout_s"]
        self.cpu_start = 0.0  # the child's CPU time when the running test began
        self._begin_test(start)
        self.exiting = False

    def _begin_test(self, now: float) -> None:
        """Clocks for the next test.  CPU time cannot grow faster than the wall clock for
        a single thread, so it is first looked at when the whole limit has passed in wall
        time; threads burning more are stopped by the child's RLIMIT_CPU."""
        self.test_start = now
        self.wall_deadline = now + self.wall_limit
        self.cpu_check_at = now + self.cpu_limit

    def watch(self) -> list[dict]:
        """Facts for each test this child ran, in order; the child is dead on return."""
        pidfd = os.pidfd_open(self.pid)
        try:
            self._loop(pidfd)
        finally:
            os.close(pidfd)
        return self.runs

    def _loop(self, pidfd: int) -> None:
        while True:
            now = time.perf_counter()
            if now >= self.wall_deadline:
                return self._end_test({"timed_out": True, "limit": "wall", "limit_s": self.wall_limit})
            if now >= self.cpu_check_at:
                used = self._cpu_total() - self.cpu_start
                if used >= self.cpu_limit:
                    return self._end_test({"timed_out": True, "limit": "cpu", "limit_s": self.cpu_limit})
                self.cpu_check_at = now + max(self.cpu_limit - used, MIN_CPU_POLL_S)
            remaining = min(self.wall_deadline, self.cpu_check_at) - now
            ready, _, _ = select.select(list(self.open_fds) + [pidfd], [], [], remaining)
            if self._read(ready):
                return self._end_test({"output_limited": True})
            if not self._take_reports():
                return
            if pidfd in ready:
                return self._child_exited()

    def _read(self, ready: list) -> bool:
        """Read each ready pipe once; True when stdout went past its cap."""
        for fd in ready:
            name = self.open_fds.get(fd)
            if name is None:
                continue
            data = os.read(fd, 1 << 16)
            if data:
                self._store(name, data)
            else:
                del self.open_fds[fd]
        return self.output.sizes["out"] > self.out_cap

    def _store(self, name: str, data: bytes) -> None:
        if name == "res":
            self.results += data
        else:
            self.output.add(name, data)

    def _take_reports(self) -> bool:
        """Handle every complete report; False once this child is finished with."""
        while len(self.results) >= 4:
            size = struct.unpack(">I", self.results[:4])[0]
            if size > RESULT_CAP:
                self._end_test({})
                return False
            if len(self.results) < 4 + size:
                return True
            body, self.results = bytes(self.results[4:4 + size]), self.results[4 + size:]
            if not self._take_report(body):
                return False
        return True

    def _take_report(self, body: bytes) -> bool:
        result = _parse_report(body, self.nonce, self.index)
        if result is None:  # garbage on our pipe: the program wrote it; trust nothing more
            self._end_test({})
            return False
        self._drain()
        now = time.perf_counter()
        self.runs.append(self._facts({"result": result, "wall_s": now - self.test_start,
                                      "cpu_s": result.pop("cpu_s", None)}))
        self.index += 1
        self.output = TestOutput()
        if self.index == self.end_index or result.get("status") == "sandbox_error":
            self.exiting = True  # it exits by itself; the server reaps it (await_exit)
            return False
        self.cpu_start = self._cpu_total()  # it waits for our go byte now: its clock stands still
        self._begin_test(now)
        try:
            os.write(self.ctl_fd, b"g")
        except OSError:  # the program closed the child's end: a fresh child runs the rest
            self._kill_and_reap()
            return False
        return True

    def _child_exited(self) -> None:
        """The child ended before its last report: whatever it left in the pipes, then the
        running test is charged with the exit (unless it was only failing to prepare a
        later test, which a fresh child will run)."""
        _, status, rusage = os.wait4(self.pid, 0)
        self._drain(include_results=True)
        if not self._take_reports() or self.index == self.end_index:
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STALE and self.index > self.first_index:
            return
        self.runs.append(self._facts(self._exit_facts(status, rusage)))

    def _end_test(self, facts: dict) -> None:
        """Kill the child and charge the running test (timeout, flood or a bad report)."""
        _, status, rusage = self._kill_and_reap()
        self._drain()
        self.runs.append(self._facts({**self._exit_facts(status, rusage), **facts}))

    def _exit_facts(self, status: int, rusage) -> dict:
        facts = {"exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                 "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
        if rusage is not None:
            facts["cpu_s"] = rusage.ru_utime + rusage.ru_stime - self.cpu_start
        if facts["signal"] == signal.SIGXCPU:  # the child's RLIMIT_CPU backstop
            facts.update(timed_out=True, limit="cpu", limit_s=self.cpu_limit)
        return facts

    def _cpu_total(self) -> float:
        """The child's user + system CPU seconds, all its threads (0 once it is reaped)."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15

    def _kill_and_reap(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            return os.wait4(self.pid, 0)
        except ChildProcessError:  # reaped already (it exited on its own)
            return self.pid, 0, None

    def _facts(self, facts: dict) -> dict:
        base = {"timed_out": False, "output_limited": False, "exit_code": None, "signal": None, "result": None,
                "wall_s": time.perf_counter() - self.test_start,
                "stdout": self.output.text("out", self.out_cap),
                "stderr": self.output.text("err", 4096, tail=True)}
        return {**base, **facts}

    def _drain(self, include_results: bool = False) -> None:
        """Read what is already in the pipes, without waiting on anyone."""
        caps = {"out": self.out_cap, "err": STDERR_CAP, "res": RESULT_CAP}
        for fd, name in list(self.open_fds.items()):
            if name == "res" and not include_results:
                continue
            while (len(self.results) if name == "res" else self.output.sizes[name]) <= caps[name]:
                ready, _, _ = select.select([fd], [], [], 0)
                if not ready:
                    break
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                self._store(name, data)


def await_exit(pid: int) -> None:
    """Reap a child that is exiting by itself (faster than killing it); kill it if it has
    not exited within a moment (a program may have left a thread that blocks _exit)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not select.select([pidfd], [], [], EXIT_GRACE_S)[0]:
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass
    finally:
        os.close(pidfd)


def _parse_report(raw: bytes, nonce: str, index: int) -> dict | None:
    """The harness's report for test `index`, or None when there is none we can trust."""
    try:
        result = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(result, dict) or result.pop("nonce", None) != nonce or result.pop("index", None) != index:
        return None
    return result
