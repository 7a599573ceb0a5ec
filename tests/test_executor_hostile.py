"""Hostile programs: each gets a non-pass verdict, changes nothing on the host, leaves no
process behind, and the executor keeps serving."""

import os
import socket
import threading
from pathlib import Path

import pytest

from core.problem import AssertTest, CallTest, Problem, StdioTest
from core.verdict import MEMORY_LIMIT, PASS, RUNTIME_ERROR, TIMEOUT, WRONG_ANSWER
from executors.config import ExecutorConfig
from executors.judge import Judge
from executors.sandbox import SandboxPlan, bwrap_works

STDIO = Problem(id="double", source="t", statement="print 2n",
                tests=(StdioTest("3\n", "6\n"), StdioTest("5\n", "10\n")))
CALL = Problem(id="double-call", source="t", statement="f(n) = 2n", entry_point="f",
               tests=(CallTest((3,), 6), CallTest((5,), 10)))
ASSERT = Problem(id="double-assert", source="t", statement="f(n) = 2n", entry_point="f",
                 tests=(AssertTest("def check(candidate):\n    assert candidate(3) == 6\n    assert candidate(5) == 10\n"
                                   "    assert len([1, 2]) == 2\n\ncheck(f)\n"),))
GOOD = {STDIO: "print(int(input()) * 2)\n", CALL: "def f(n):\n    return 2 * n\n", ASSERT: "def f(n):\n    return 2 * n\n"}
CFG = ExecutorConfig(timeout_s=1.0, wall_timeout_s=3.0, memory_mb=256, max_output_bytes=1 << 16)

PLANS = {"full": None}
if os.geteuid() == 0:
    # Without seccomp a test can fork: what stops leftovers then is the uid sweep.
    PLANS["no-seccomp"] = SandboxPlan(bwrap=bwrap_works(), setuid=True, seccomp=False, landlock=True)
    PLANS["no-bwrap"] = SandboxPlan(bwrap=False, setuid=True, seccomp=True, landlock=True)


@pytest.fixture(scope="module", params=list(PLANS))
def judge(request):
    with Judge(CFG, slots=1, plan=PLANS[request.param]) as j:
        yield j


def _uid_processes(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
            if str(uid) in uids:
                found.append(int(entry.name))
    return found


def _check(judge, problem, program, allowed):
    result = judge.judge(problem, program)
    assert result.verdict != PASS, result
    assert result.verdict in allowed, result
    uid = judge._slots[0].uid
    if uid is not None:
        assert _uid_processes(uid) == [], "a process of the test's uid survived"
    assert judge.judge(problem, GOOD[problem]).verdict == PASS, "executor stopped serving"
    return result


HOSTILE = {
    "fork_bomb": (STDIO, "import os\nwhile True:\n    os.fork()\n", (RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT, WRONG_ANSWER)),
    "shell_fork_bomb": (STDIO, "import subprocess\nsubprocess.run(['sh', '-c', ':(){ :|:& };:'])\nprint(6)\n",
                        (RUNTIME_ERROR, TIMEOUT, WRONG_ANSWER)),
    "infinite_loop": (STDIO, "while True:\n    pass\n", (TIMEOUT,)),
    "long_c_call": (STDIO, "print(sum(range(10**13)))\n", (TIMEOUT,)),
    "sleep": (CALL, "import time\ndef f(n):\n    time.sleep(100)\n", (TIMEOUT,)),
    "memory_bomb": (STDIO, "x = bytearray(10**10)\n", (MEMORY_LIMIT,)),
    "memory_growth": (STDIO, "a = []\nwhile True:\n    a.append(' ' * 10**6)\n", (MEMORY_LIMIT, TIMEOUT)),
    "output_flood": (STDIO, "while True:\n    print('6' * 1000)\n", (WRONG_ANSWER,)),
    "sys_exit_call": (CALL, "import sys\nsys.exit(0)\n", (RUNTIME_ERROR,)),
    "os_exit_call": (CALL, "import os\nos._exit(0)\n", (RUNTIME_ERROR,)),
    "os_exit_in_function": (ASSERT, "import os\ndef f(n):\n    os._exit(0)\n", (RUNTIME_ERROR,)),
    "exit_before_asserts": (ASSERT, "def f(n):\n    raise SystemExit(0)\n", (RUNTIME_ERROR,)),
    "swallowed_exception": (ASSERT, "import sys\nsys.excepthook = lambda *a: None\ndef f(n):\n    return 0\n",
                            (WRONG_ANSWER,)),
    "early_return": (ASSERT, "def check(candidate):\n    return None\ndef f(n):\n    return 0\n", (WRONG_ANSWER,)),
    "rigged_eq_call": (CALL, "class A:\n    def __eq__(self, o):\n        return True\ndef f(n):\n    return A()\n",
                       (WRONG_ANSWER,)),
    "rigged_eq_assert": (ASSERT, "class A:\n    def __eq__(self, o):\n        return True\n    __hash__ = None\n"
                                 "def f(n):\n    return A()\n", (WRONG_ANSWER,)),
    "rigged_int_subclass": (ASSERT, "class I(int):\n    def __eq__(self, o):\n        return True\n"
                                    "def f(n):\n    return I(0)\n", (WRONG_ANSWER,)),
    "shadow_builtin": (ASSERT, "def len(x):\n    return 2\ndef f(n):\n    return 0\n", (WRONG_ANSWER,)),
    "patch_builtins": (ASSERT, "import builtins\nclass T:\n    def __eq__(s, o):\n        return True\n"
                               "builtins.int = T\ndef f(n):\n    return 0\n", (WRONG_ANSWER,)),
    "patch_harness_by_name": (ASSERT, "import sys\nfor m in list(sys.modules.values()):\n"
                                      "    if hasattr(m, 'plain_copy'):\n        m.plain_copy = lambda v: v\n"
                                      "class A:\n    def __eq__(self, o):\n        return True\n"
                                      "def f(n):\n    return A()\n", (WRONG_ANSWER,)),
    "patch_harness_during_call": (ASSERT, "import sys\nclass A:\n    def __eq__(self, o):\n        return True\n"
                                          "def f(n):\n    for m in list(sys.modules.values()):\n"
                                          "        if hasattr(m, 'plain_copy'):\n            m.plain_copy = lambda v: v\n"
                                          "    return A()\n", (WRONG_ANSWER,)),
    "trace_jump": (ASSERT, "import sys\ndef f(n):\n    sys.settrace(lambda *a: None)\n    return 0\n", (RUNTIME_ERROR,)),
    "kill_parent": (STDIO, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(6)\n", (RUNTIME_ERROR,)),
    "kill_everything": (STDIO, "import os, signal\nos.kill(-1, signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n",
                        (RUNTIME_ERROR,)),
    "setsid_orphan": (STDIO, "import os, time\nos.setsid()\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
                             "print(int(input()) * 2)\n", (RUNTIME_ERROR, WRONG_ANSWER)),
    "close_stdout": (STDIO, "import os\nos.close(1)\nprint(int(input()) * 2)\n", (RUNTIME_ERROR, WRONG_ANSWER)),
    "wait_on_stdin": (STDIO, "input()\ninput()\ninput()\n", (RUNTIME_ERROR,)),
    "deep_recursion": (STDIO, "def r(n):\n    return r(n + 1)\nr(0)\n", (RUNTIME_ERROR,)),
    "deep_c_recursion": (STDIO, "print(eval('[' * 200000 + ']' * 200000))\n", (RUNTIME_ERROR, MEMORY_LIMIT)),
    "ignore_sigterm": (STDIO, "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
                       (TIMEOUT,)),
    "thread_bomb": (STDIO, "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(30,)).start()\n",
                    (RUNTIME_ERROR, MEMORY_LIMIT, TIMEOUT)),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program(judge, name):
    problem, program, allowed = HOSTILE[name]
    _check(judge, problem, program, allowed)


def test_setsid_orphan_leaves_nothing_even_with_fork_allowed(judge):
    # With seccomp on, fork fails; without it the orphan forks and must still be gone.
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint(int(input()) * 2)\n"
    result = judge.judge(STDIO, program)
    uid = judge._slots[0].uid
    if uid is not None:
        assert _uid_processes(uid) == []
    if "seccomp" not in judge.layers:
        assert result.verdict == PASS  # the program is right; only its orphan had to go


def test_writes_outside_the_sandbox_change_nothing(judge, tmp_path):
    targets = [tmp_path / "pwned", Path(__file__).resolve().parent / "pwned", Path("/var/tmp/execrl-pwned")]
    program = "import sys\nok = 0\n" + "".join(
        f"try:\n    open({str(t)!r}, 'w').write('x')\n    ok += 1\nexcept OSError:\n    pass\n" for t in targets
    ) + "print(6 if ok else 0)\n"
    _check(judge, STDIO, program, (WRONG_ANSWER,))
    assert not any(t.exists() for t in targets)


def test_root_only_file_is_unreadable(judge):
    secret = Path("/var/tmp/execrl-secret")
    secret.write_text("6\n")
    secret.chmod(0o600)
    try:
        problem = Problem(id="leak", source="t", statement="s", tests=(StdioTest("", "6\n"),))
        GOOD[problem] = "print(6)\n"
        _check(judge, problem, f"print(open({str(secret)!r}).read())\n", (RUNTIME_ERROR,))
    finally:
        secret.unlink()


def test_cannot_reach_a_loopback_listener(judge):
    """socket imports (the server preloads it); the connection must then fail, and not
    because a module was unreadable: each layer's own rule is tested alone in
    test_executor_layers.py."""
    if not {"bwrap", "seccomp"} & set(judge.layers):
        pytest.skip(f"no layer of {judge.layers} blocks the network")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    program = f"import socket\nprint('imported', flush=True)\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint(6)\n"
    result = _check(judge, STDIO, program, (RUNTIME_ERROR,))
    thread.join()
    server.close()
    assert accepted == []
    assert result.tests[0].actual == "imported\n", result
    assert "OSError" in result.error or "Error" in result.error, result.error
