"""One executor slot: a fork server process and the pipe protocol to talk to it.

A slot runs one test at a time; an executor owns several (one or more per core).  If
the server dies or stops answering, the slot says so (SlotFailure: our failure, never
the program's) and starts a fresh server on the next request.

Every server reports, when it starts, the layers it actually applies (`layers`) and why
a planned one is not (`missing`): a plan can promise seccomp while the server's
interpreter cannot import pyseccomp.  A server that lacks a planned layer that the
configuration does not allow to be missing is refused (LayersMissing).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time

from executors.sandbox import SandboxPlan, SandboxUnavailable, UidLease, server_command

START_TIMEOUT_S = 60.0


class SlotFailure(RuntimeError):
    """The fork server crashed, hung or answered nonsense."""


class LayersMissing(SandboxUnavailable):
    """A fork server applied fewer sandbox layers than planned, and that was not allowed."""


class ForkServerSlot:
    def __init__(self, plan: SandboxPlan, base_uid: int = 61000, preload: tuple[str, ...] = (),
                 python: str = "", allow_missing: tuple[str, ...] = ()) -> None:
        self.plan = plan
        self._lease = UidLease(base_uid) if plan.setuid else None
        self._preload = list(preload)
        self._python = python
        self._allow_missing = set(allow_missing)
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()
        self._tmp_root = None if plan.bwrap else _private_tmp_root()
        self.info: dict = {}

    @property
    def uid(self) -> int | None:
        return self._lease.uid if self._lease else None

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers the running server reported applying (empty before it started)."""
        return tuple(self.info.get("layers", ()))

    def start(self) -> None:
        """Start the server; LayersMissing if it applies less than planned (and allowed)."""
        config = {"uid": self.uid, "bwrap": self.plan.bwrap, "seccomp": self.plan.seccomp,
                  "landlock": self.plan.landlock, "preload": self._preload}
        if self._tmp_root is not None:
            config["tmp_root"] = self._tmp_root
        self._proc = subprocess.Popen(server_command(self.plan, config, self._python), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, bufsize=0)
        try:
            self.info = self._receive(START_TIMEOUT_S)
        except SlotFailure as exc:
            self._stop()
            raise SlotFailure(f"fork server did not start: {exc}; its log: {self._log_tail()}") from None
        if not self.info.get("ok"):
            raise SlotFailure(f"fork server refused to start: {self.info}")
        missing = [layer for layer in self.plan.layers if layer not in self.layers and layer not in self._allow_missing]
        if missing:
            self._stop()
            reasons = self.info.get("missing", {})
            raise LayersMissing("; ".join(
                f"the sandbox plan has {layer!r} but the fork server did not apply it: "
                f"{reasons.get(layer, 'no reason given')} (add {layer!r} to executor.allow_missing_layers "
                f"to run without it)" for layer in missing))

    def request(self, message: dict, timeout_s: float) -> dict:
        """Send one request and wait for its answer; restart the server after a failure."""
        if self._proc is None or self._proc.poll() is not None:
            try:
                self.start()
            except LayersMissing as exc:  # a restarted server lost a layer: our failure, reported
                raise SlotFailure(str(exc)) from None
        data = json.dumps(message).encode()
        try:
            self._proc.stdin.write(struct.pack(">I", len(data)) + data)
            reply = self._receive(timeout_s)
        except (OSError, SlotFailure) as exc:
            self._stop()
            raise SlotFailure(f"fork server failed: {exc}; its log: {self._log_tail()}") from None
        if "infra_error" in reply:
            raise SlotFailure(f"fork server error: {reply['infra_error']}")
        return reply

    def _receive(self, timeout_s: float) -> dict:
        header = self._read_exact(4, time.monotonic() + timeout_s)
        body = self._read_exact(struct.unpack(">I", header)[0], time.monotonic() + timeout_s)
        return json.loads(body)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        fd = self._proc.stdout.fileno()
        parts, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise SlotFailure("no answer in time")
            data = os.read(fd, n - got)
            if not data:
                raise SlotFailure(f"fork server exited (code {self._proc.poll()})")
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _log_tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:].decode("utf-8", "replace")

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        self._stop()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        self._log.close()
        if self._tmp_root is not None:
            shutil.rmtree(self._tmp_root, ignore_errors=True)


def _private_tmp_root() -> str:
    """Without bwrap's private /tmp: a directory only root can list, where each test
    gets its own subdirectory owned by its uid."""
    root = tempfile.mkdtemp(prefix="execrl-sandbox-")
    os.chmod(root, 0o711)
    return root
