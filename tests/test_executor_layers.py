"""Each sandbox layer, by itself, does what it claims, and results name the layers the
fork servers applied, not the ones planned.

The network programs first import socket (the fork server preloads it, so the import
works even where the test's uid cannot read the interpreter) and print each step: a
test passes only when the layer under test is what stopped the connection."""

import errno
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from core.problem import Problem, StdioTest
from core.verdict import PASS
from executors.config import ExecutorConfig
from executors.judge import Judge
from executors.sandbox import SandboxPlan, bwrap_works
from executors.slot import LayersMissing

CFG = ExecutorConfig(timeout_s=2.0, wall_timeout_s=5.0)
NET_PROGRAM = """import socket
print('imported')
try:
    s = socket.socket()
except OSError as e:
    print('socket', e.errno)
else:
    try:
        s.connect(('127.0.0.1', {port}))
        print('connected')
    except OSError as e:
        print('connect', e.errno)
"""


class Listener:
    """A loopback TCP listener on the host that records whether anyone connected."""

    def __enter__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.server.settimeout(1.0)
        self.port = self.server.getsockname()[1]
        self.accepted: list = []
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()
        return self

    def _accept(self):
        try:
            self.accepted.append(self.server.accept())
        except OSError:
            pass

    def __exit__(self, *exc):
        self.thread.join()
        for conn, _ in self.accepted:
            conn.close()
        self.server.close()


def _network_output(plan: SandboxPlan, expected: str) -> tuple[str, list]:
    problem = Problem(id="net", source="t", statement="s", tests=(StdioTest("", expected),))
    with Listener() as listener, Judge(CFG, slots=1, plan=plan) as judge:
        result = judge.judge(problem, NET_PROGRAM.format(port=listener.port))
    output = expected if result.verdict == PASS else (result.tests[0].actual or result.error)
    return output, listener.accepted


def test_without_a_network_layer_the_program_connects():
    """The control: with only rlimits the same program reaches the listener, so the
    tests below are failures of the connection, not of the program."""
    plan = SandboxPlan(bwrap=False, setuid=False, seccomp=False, landlock=False)
    output, accepted = _network_output(plan, "imported\nconnected\n")
    assert output == "imported\nconnected\n"
    assert len(accepted) == 1


def test_seccomp_alone_refuses_the_socket_call():
    plan = SandboxPlan(bwrap=False, setuid=False, seccomp=True, landlock=False)
    output, accepted = _network_output(plan, f"imported\nsocket {errno.EPERM}\n")
    assert output == f"imported\nsocket {errno.EPERM}\n", "the socket() call itself must fail with EPERM"
    assert accepted == []


def test_seccomp_under_the_tests_uid_refuses_the_socket_call():
    """The same with setuid and landlock: the import still works (preloaded), so what
    fails is seccomp's rule, not a module the uid cannot read."""
    if os.geteuid() != 0:
        pytest.skip("setuid needs root")
    plan = SandboxPlan(bwrap=False, setuid=True, seccomp=True, landlock=True)
    output, accepted = _network_output(plan, f"imported\nsocket {errno.EPERM}\n")
    assert output == f"imported\nsocket {errno.EPERM}\n"
    assert accepted == []


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_bwrap_alone_has_no_route_to_the_hosts_loopback():
    plan = SandboxPlan(bwrap=True, setuid=False, seccomp=False, landlock=False)
    refused = {f"imported\nconnect {errno.ECONNREFUSED}\n", f"imported\nconnect {errno.ENETUNREACH}\n"}
    output, accepted = _network_output(plan, f"imported\nconnect {errno.ECONNREFUSED}\n")
    assert output in refused, "socket() works in bwrap; the connection must fail in its own network namespace"
    assert accepted == []


def _interpreter_without_pyseccomp() -> str:
    """The base interpreter under this venv: the same Python without the venv's
    packages (pyseccomp, landlock, slipcover): a fork server that cannot build seccomp."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.prefix == sys.base_prefix or not candidate.is_file():
        pytest.skip("no interpreter without the venv's packages to start a fork server with")
    import subprocess

    found = subprocess.run([str(candidate), "-I", "-c", "import pyseccomp"], capture_output=True)
    if found.returncode == 0:
        pytest.skip(f"{candidate} can import pyseccomp")
    return str(candidate)


def test_a_server_that_cannot_build_seccomp_is_refused_or_reported():
    python = _interpreter_without_pyseccomp()
    with Judge(CFG, slots=1) as judge:
        planned = judge.plan.layers
        assert "seccomp" in planned, planned
        assert judge.layers == planned  # this venv's server applies the whole plan
        assert judge.judge(Problem(id="p", source="t", statement="s", tests=(StdioTest("", "1\n"),)),
                           "print(1)\n").sandbox_layers == planned
    with pytest.raises(LayersMissing, match=r"'seccomp'.*pyseccomp.*allow_missing_layers"):
        Judge(ExecutorConfig(python=python), slots=1)
    allowed = ExecutorConfig(python=python, allow_missing_layers=["seccomp", "landlock"])
    with Judge(allowed, slots=1) as judge:
        assert judge.plan.layers == planned
        problem = Problem(id="p", source="t", statement="s", tests=(StdioTest("", "1\n"),))
        result = judge.judge(problem, "print(1)\n", coverage=True)
    assert result.verdict == PASS
    assert "seccomp" not in result.sandbox_layers and "landlock" not in result.sandbox_layers
    assert "rlimits" in result.sandbox_layers
    assert not result.coverage_known  # that interpreter has no slipcover either
