"""Line coverage whose probes remove themselves, re-armed for every test (Python 3.11).

Slipcover puts a call in front of every line and, in immediate mode, asks each probe
to jump over itself after its first hit.  On Python 3.11 that request never reaches
the bytecode the interpreter runs: 3.11 executes a private, adaptive copy of it
(`co_code_adaptive`, stored inline in the code object), while slipcover patches the
copy `co_code` returns.  Every executed line then keeps paying a call, 1.3-1.5x on a
tight loop.  Here the probe writes its JUMP_FORWARD into the adaptive copy itself, so
after its first hit a line costs one extra jump instruction (about 1.0x), and `start`
writes the NOPs back, so one instrumented program serves all of its tests: no
per-test instrumented copies.

Lines are recorded in a `LineRecord`: an anonymous shared mapping the fork server makes
per program, one byte per (test, line).  A forked child's probes write into it, so the
server reads a test's lines even after it killed the child (a timeout, an output flood,
os._exit, a crash): what a test ran before it was killed is exactly what FGO needs.

The writes touch only the probe's own first instruction, at an offset the instrumenter
recorded, in the child's copy-on-write memory: the server's code objects stay armed.
`self_test` checks the layout this relies on (the adaptive copy lies at
`type(code).__basicsize__` and probes really stop firing) when the server starts;
where it does not hold (another interpreter) the server keeps slipcover's copies.
Runs inside the fork server: standard library and slipcover only.
"""

from __future__ import annotations

import ctypes
import dis
import mmap
import sys
import types

ADAPTIVE_OFFSET = types.CodeType.__basicsize__  # offsetof(PyCodeObject, co_code_adaptive) on 3.11
_NOP, _JUMP_FORWARD = dis.opmap["NOP"], dis.opmap["JUMP_FORWARD"]
_NOT_A_LINE_START = {dis.opmap.get(name) for name in ("RESUME", "RETURN_GENERATOR")} - {None}


class LineRecord:
    """Which lines each test of one program ran, in memory shared by the fork server and
    its children (MAP_SHARED | MAP_ANONYMOUS, made before the fork): per test a row of
    bytes, byte 0 set when the test's record begins, byte L when line L ran.  A row
    whose byte 0 is unset has no record: the test died before its coverage started."""

    def __init__(self, tests: int, max_line: int) -> None:
        self.stride = max_line + 1
        self.memory = mmap.mmap(-1, max(1, tests) * self.stride)

    def begin(self, index: int) -> int:
        """Start test `index`'s row; the offset of its byte 0."""
        offset = index * self.stride
        self.memory[offset] = 1
        return offset

    def mark(self, index: int, lines) -> None:
        """Record `lines` as run by test `index` (used where probes cannot write here)."""
        offset, memory = self.begin(index), self.memory
        for line in lines:
            if 0 < line < self.stride:
                memory[offset + line] = 1

    def lines(self, index: int, candidates=None) -> list[int] | None:
        """The lines test `index` ran (among `candidates` when given: fewer to look at),
        or None when it has no record."""
        row = self.memory[index * self.stride:(index + 1) * self.stride]
        if not row[0]:
            return None
        return [line for line in (candidates or range(1, self.stride)) if 0 < line < self.stride and row[line]]

    def close(self) -> None:
        self.memory.close()


class SelfRemovingProbes:
    """One program's probes: `instrument` once (in the server), then per test (in the
    child) `start(index)`, run, and the lines are in `record` (read by `lines`)."""

    def __init__(self, editor_type, record: LineRecord) -> None:
        self._editor_type = editor_type  # slipcover.bytecode.Editor: inserts calls, fixes jumps and tables
        self._sites: list[tuple] = []  # per probe key: (instrumented code, probe offset, line)
        self._fired: list[int] = []  # addresses of probes disabled during the current test
        self._record = record
        self._row = [0]  # offset of the current test's row in the record
        self._index = 0
        self._hit = self._make_hit()

    def instrument(self, code: types.CodeType) -> types.CodeType:
        """A copy of `code` (and of every nested code object) with a probe per line."""
        editor = self._editor_type(code)
        for index, const in enumerate(code.co_consts):
            if isinstance(const, types.CodeType):
                editor.set_const(index, self.instrument(const))
        hit_index = editor.add_const(self._hit)
        keys, delta = [], 0
        for offset, line in _line_starts(code):
            key = len(self._sites)
            self._sites.append(None)
            keys.append((key, line))
            delta += editor.insert_function_call(offset + delta, hit_index, (editor.add_const(key),))
        new_code = editor.finish()
        for (key, line), offset in zip(keys, editor.get_inserts()):
            self._sites[key] = (new_code, offset, line)
        return new_code

    def start(self, index: int, _memset=ctypes.memset, _nop=_NOP) -> None:
        """Re-arm the probes the previous test fired and begin test `index`'s row.  It
        runs in the child after a program did: what it calls is bound as defaults."""
        for address in self._fired:
            _memset(address, _nop, 1)
        self._fired.clear()
        self._index = index
        self._row[0] = self._record.begin(index)

    def finish(self, index: int) -> None:
        """Nothing to do: the probes wrote the record as the lines ran."""

    def lines(self) -> list[int]:
        """The current test's lines (in-process use: tests and the self test)."""
        return self._record.lines(self._index) or []

    @property
    def fired(self) -> int:
        """Probe calls in the current test: at most one per probe, however often its
        line ran (a line split over several places in the bytecode has a probe in each)."""
        return len(self._fired)

    def _make_hit(self):
        sites, fired, memory, row = self._sites, self._fired, self._record.memory, self._row

        def hit(key, _sites=sites, _fired=fired, _memory=memory, _row=row, _memset=ctypes.memset,
                _base=ADAPTIVE_OFFSET, _id=id, _jump=_JUMP_FORWARD) -> None:
            # Bound as defaults: a program cannot rebind what its own probes call.
            code, offset, line = _sites[key]
            _memory[_row[0] + line] = 1
            address = _id(code) + _base + offset
            _memset(address, _jump, 1)
            _fired.append(address)

        return hit


class SlipcoverCopy:
    """The fallback where self-removing probes do not work: a slipcover-instrumented
    copy of the program for one test.  Immediate mode reports a line on its first hit;
    on Python 3.12+ slipcover's probes are sys.monitoring events that do disable
    themselves, on 3.11 they keep firing (the overhead the class above removes).
    `parent` skips slipcover's bookkeeping of the file's lines for its own reports,
    which we do not use: half the instrumentation time.  Slipcover's probes add to a
    set of its own (in C), so the lines reach the shared record only when the test
    finishes: a test killed before that has no record (coverage unknown)."""

    def __init__(self, slipcover, code: types.CodeType, record: LineRecord) -> None:
        coverage = slipcover.Slipcover(immediate=True, exclude_lines=[])
        self.code = coverage.instrument(code, parent=code)
        self._seen, self._file, self._record = coverage.newly_seen, code.co_filename, record

    def start(self, index: int) -> None:
        """Nothing to re-arm: the copy serves this one test."""

    def finish(self, index: int) -> None:
        self._record.mark(index, self._seen.get(self._file, ()))

    def lines(self) -> list[int]:
        return sorted(self._seen.get(self._file, ()))


def _line_starts(code: types.CodeType):
    """(offset, line) where a probe goes: the first instruction of each line, moved past
    any EXTENDED_ARG prefix run (a probe cannot split one from its instruction)."""
    raw = code.co_code
    for offset, line in dis.findlinestarts(code):
        if not line or raw[offset] in _NOT_A_LINE_START:
            continue
        while offset >= 2 and offset < len(raw) and raw[offset - 2] == dis.opmap["EXTENDED_ARG"]:
            offset += 2
        yield offset, line


_SELF_TEST = """
total = 0
for i in range(50):
    if i % 2:
        total += i
    else:
        total -= 1
"""


def self_test(editor_type) -> bool:
    """Whether self-removing probes work on this interpreter: the adaptive copy lies
    where we write, each line is reported once per test however often it runs, and a
    re-armed program reports its lines again."""
    if sys.version_info[:2] != (3, 11):
        return False
    try:
        code = compile(_SELF_TEST, "<probe-self-test>", "exec")
        if ctypes.string_at(id(code) + ADAPTIVE_OFFSET, len(code.co_code)) != code.co_code:
            return False
        probes = SelfRemovingProbes(editor_type, LineRecord(12, 8))
        instrumented = probes.instrument(code)
        expected = [2, 3, 4, 5, 7]
        for index in range(12):  # past 3.11's warm-up, so the quickened copy is exercised too
            probes.start(index)
            exec(instrumented, {})  # noqa: S102 - our own constant program
            if probes.lines() != expected or probes.fired > len(probes._sites):
                return False
        return True
    except Exception:  # noqa: BLE001 - any surprise means: not on this interpreter
        return False

