"""Choosing the sandbox's layers for this host, and the command that starts a fork server.

Layers, strongest first, each used when the host allows it:
  bwrap      new network, PID, IPC, UTS (and cgroup) namespaces; the whole filesystem
             read-only with a private /tmp
  setuid     every test runs as an unprivileged uid of its slot's own (needs root)
  rlimits    address space, CPU time, file size, open files, processes, no core dumps
  landlock   writes only inside the test's private directory (Linux >= 5.13)
  seccomp    no sockets, no fork, no signals to other processes, no ptrace, no mounts
GPU nodes are often containers without user namespaces or the right to make new ones:
bwrap fails there and the rest still holds.  With none of bwrap or seccomp available the
executor refuses to run unless the configuration says `allow_unsandboxed: true`.
This is the plan; what is reported is what each fork server says it applied when it
started (slot.py compares the two and refuses a layer that went missing).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from executors.confine import available_layers

FORKSERVER = Path(__file__).resolve().parent / "forkserver.py"
NAMESPACE_FLAGS = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
UID_LOCK_DIR = Path("/tmp/execrl-uids")


class SandboxUnavailable(RuntimeError):
    """The configured sandbox cannot run here, and running without it was not allowed."""


@dataclass(frozen=True)
class SandboxPlan:
    """What a slot's fork server is asked to run under (its own report of what it
    applied is what results carry)."""

    bwrap: bool
    setuid: bool
    seccomp: bool
    landlock: bool

    @property
    def layers(self) -> tuple[str, ...]:
        names = [("bwrap", self.bwrap), ("setuid", self.setuid), ("rlimits", True),
                 ("landlock", self.landlock), ("seccomp", self.seccomp)]
        return tuple(name for name, on in names if on)


def plan_sandbox(mode: str, allow_unsandboxed: bool) -> SandboxPlan:
    """Pick the layers for `mode` ("auto", "bwrap", "seccomp", "none")."""
    optional = _optional_layers()
    root = os.geteuid() == 0
    if mode == "none":
        if not allow_unsandboxed:
            raise SandboxUnavailable("executor.sandbox is 'none' but executor.allow_unsandboxed is false")
        return SandboxPlan(bwrap=False, setuid=False, seccomp=False, landlock=False)
    use_bwrap = mode in ("auto", "bwrap") and bwrap_works()
    if mode == "bwrap" and not use_bwrap:
        raise SandboxUnavailable("executor.sandbox is 'bwrap' but bubblewrap is missing or cannot create namespaces here "
                                 "(install the 'bubblewrap' package, or use sandbox: seccomp)")
    plan = SandboxPlan(bwrap=use_bwrap, setuid=root, seccomp=optional["seccomp"], landlock=optional["landlock"])
    if not (plan.bwrap or plan.seccomp) and not allow_unsandboxed:
        raise SandboxUnavailable(
            f"no sandbox layer beyond rlimits is available (sandbox: {mode}; bubblewrap unusable, pyseccomp missing); "
            "install bubblewrap or pyseccomp, or set executor.allow_unsandboxed: true to run programs unconfined")
    return plan


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """bwrap is installed and can create our namespaces on this host (tried once)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    cmd = [exe, "--ro-bind", "/", "/", "--dev", "/dev", *NAMESPACE_FLAGS, "--", "true"]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=1)
def _optional_layers() -> dict[str, bool]:
    return available_layers()


def server_command(plan: SandboxPlan, config: dict, interpreter: str = "") -> list[str]:
    """The command line of one fork server: the interpreter (this one unless given),
    wrapped in bwrap if planned."""
    python = [interpreter or sys.executable, "-I", str(FORKSERVER), json.dumps(config)]
    if not plan.bwrap:
        return python
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--tmpfs", "/tmp", *NAMESPACE_FLAGS, "--new-session"]
    # No --die-with-parent: it is tied to the *thread* that started bwrap, and slots are
    # restarted from worker threads.  The server exits when its stdin closes instead.
    cmd += _masked_binds([str(Path(interpreter).resolve().parent.parent)] if interpreter else [])
    return cmd + ["--", *python]


def _masked_binds(interpreters: list[str]) -> list[str]:
    """The sandbox gets an empty private /tmp, and /root (when private) is hidden behind
    an empty tmpfs too; bind back, read-only, what the server needs from under them: the
    interpreter (pyenv lives in /root), execrl itself (a Ray job's working directory is
    unpacked under /tmp), site-packages.  Intermediate directories are made 0755, or the
    test's unprivileged uid could not reach them."""
    needed = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, FORKSERVER.parent.parent, *sys.path,
                                          *interpreters) if p}
    binds = []
    for mask in _masks():
        under = sorted({p for p in needed if p.is_relative_to(mask) and p != mask and p.exists()})
        if mask != Path("/tmp"):
            binds += ["--tmpfs", str(mask)]
        made: set[Path] = set()
        for path in _outermost(under):
            for parent in reversed(path.relative_to(mask).parents[:-1]):
                if parent not in made:
                    binds += ["--perms", "0755", "--dir", str(mask / parent)]
                    made.add(parent)
            binds += ["--ro-bind", str(path), str(path)]
    return binds


def _masks() -> list[Path]:
    masks = [Path("/tmp")]
    if Path("/root").is_dir() and not os.stat("/root").st_mode & 0o005:
        masks.append(Path("/root"))
    return masks


def _outermost(paths: list[Path]) -> list[Path]:
    kept: list[Path] = []
    for p in sorted(paths, key=lambda x: len(x.parts)):
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


class UidLease:
    """An unprivileged uid held by one slot for its lifetime (a lock file per uid), so
    that killing 'every process of this uid' after a test never touches another slot."""

    def __init__(self, base_uid: int, span: int = 4096) -> None:
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        for uid in range(base_uid, base_uid + span):
            fd = os.open(UID_LOCK_DIR / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise SandboxUnavailable(f"no free sandbox uid in {base_uid}..{base_uid + span - 1}")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
