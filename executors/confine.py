"""Confinement applied inside the sandbox to each test's child process, just after fork.

Runs in the fork server's interpreter (see forkserver.py), so it imports only the
standard library plus, when present, `pyseccomp` and `landlock`.  The order matters:
rlimits and Landlock first (they need no privilege), then dropping to the slot's
unprivileged uid (RLIMIT_NPROC only binds non-root users, and a uid of its own is what
lets the server kill every leftover process of a test with one kill(-1)), then seccomp
last, because its filter also forbids the calls made before it.  The expensive parts
(the Landlock ruleset, the BPF program) are built once per slot by the server.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import tempfile

CLONE_THREAD = 0x00010000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
# Syscalls a judged program never needs; each fails with EPERM instead of killing the
# process, so the program sees an ordinary OSError and gets an ordinary runtime_error.
DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "ptrace", "process_vm_readv", "process_vm_writev", "kill", "tkill", "tgkill",
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "reboot",
    "kexec_load", "init_module", "finit_module", "delete_module", "swapon", "swapoff",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "fork", "vfork",
    "iopl", "ioperm", "setpriority", "sched_setaffinity", "userfaultfd", "personality",
)


def layer_errors() -> dict[str, str | None]:
    """Why each optional layer cannot be applied by this interpreter (None: it can).
    The fork server reports these; the host plans with them too."""
    errors: dict[str, str | None] = {"seccomp": None, "landlock": None}
    try:
        import pyseccomp  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means: not here, and why
        errors["seccomp"] = f"{type(exc).__name__}: {exc}"
    try:
        import landlock

        if landlock.landlock_abi_version() < 1:
            errors["landlock"] = "the kernel has no Landlock (ABI version < 1)"
    except Exception as exc:  # noqa: BLE001
        errors["landlock"] = f"{type(exc).__name__}: {exc}"
    return errors


def available_layers() -> dict[str, bool]:
    """Which optional layers this interpreter can apply."""
    return {name: error is None for name, error in layer_errors().items()}


def bwrap_missing() -> str | None:
    """None when this process runs inside bubblewrap's namespaces: pid 1 of its PID
    namespace is bwrap and the only network interface is loopback; else what shows it
    does not (seen from inside, not taken from the plan)."""
    try:
        with open("/proc/1/comm") as f:
            init = f.read().strip()
        with open("/proc/net/dev") as f:
            interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    except OSError as exc:
        return f"cannot inspect the namespaces ({exc})"
    if init != "bwrap":
        return f"no PID namespace of bwrap's (pid 1 is {init!r})"
    if interfaces != ["lo"]:
        return f"no private network namespace (interfaces: {', '.join(interfaces)})"
    return None


def as_uid(uid: int, gid: int, check) -> str | None:
    """Run `check()` in a forked helper that dropped to `uid`; None if both worked, else
    the error (the server's start-up uses it to see what its tests' uid can do)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        message = b""
        try:
            os.close(read_end)
            drop_privileges(uid, gid)
            check()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"{type(exc).__name__}: {exc}".encode()[:4000]
        finally:
            os.write(write_end, message)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        message = f.read()
    os.waitpid(pid, 0)
    return message.decode("utf-8", "replace") or None


def read_stdlib() -> None:
    """Raises unless this process can read the interpreter's standard library (an
    interpreter under root's home is not readable by an unprivileged uid)."""
    directory = os.path.dirname(os.__file__)
    os.listdir(directory)
    with open(os.path.join(directory, "os.py"), "rb") as f:
        f.read(1)


def set_limits(cpu_s: int, address_space: int, file_bytes: int, open_files: int, processes: int | None) -> None:
    """Per-test rlimits.  RLIMIT_CPU (whole seconds, above the test's limit) backs up the
    server's per-test CPU-time check for threads that burn several cores; address space
    catches memory bombs; no core dumps."""
    limits = [
        (resource.RLIMIT_CPU, cpu_s, cpu_s + 1),
        (resource.RLIMIT_AS, address_space, address_space),
        (resource.RLIMIT_FSIZE, file_bytes, file_bytes),
        (resource.RLIMIT_NOFILE, open_files, open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if processes is not None:
        limits.append((resource.RLIMIT_NPROC, processes, processes))
    for which, soft, hard in limits:
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            hard = min(hard, old_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))


def landlock_ruleset(writable_dir: str):
    """Read and execute anywhere, write only below `writable_dir`.  Built once per slot
    by the server; each child only has to apply it."""
    import landlock

    read_only = landlock.FSAccess.EXECUTE | landlock.FSAccess.READ_FILE | landlock.FSAccess.READ_DIR
    ruleset = landlock.Ruleset()
    ruleset.allow("/", rules=read_only)
    ruleset.allow(writable_dir)
    # apply() looks up prctl and landlock_restrict_self through lru caches: fill them
    # here, or every child builds both ctypes prototypes again (80 page faults each).
    from landlock import plumbing

    plumbing.get_prctl()
    plumbing.get_restrict_self()
    return ruleset


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, "setuid did not take effect")


def seccomp_program() -> "SeccompProgram":
    """No network, no new processes (threads still allowed), no signals to other
    processes, no ptrace, no kernel or namespace tricks.  Compiled to BPF once per slot
    with libseccomp; each child installs the ready program with one prctl."""
    import pyseccomp as seccomp

    filt = seccomp.SyscallFilter(seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(deny, name)
        except Exception:
            continue  # a syscall this architecture does not have
    # clone without CLONE_THREAD is fork; clone3 hides its flags in memory, so refuse it
    # with ENOSYS and let libc fall back to clone, whose flags the filter can read.
    filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as f:
        filt.export_bpf(f)
        f.seek(0)
        return SeccompProgram(f.read())


class SeccompProgram:
    """A compiled BPF filter and the ctypes structure prctl(PR_SET_SECCOMP) takes."""

    def __init__(self, bpf: bytes) -> None:
        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        self._buffer = ctypes.create_string_buffer(bpf, len(bpf))
        self._fprog = SockFprog(len(bpf) // 8, ctypes.addressof(self._buffer))
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in every child

    def install(self) -> None:
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
