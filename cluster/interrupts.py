"""Ctrl-C that waits for a step which must not be cut in half.

A learner update changes weights and optimizer state in many small steps (and, with a
learner group, runs in other processes that a KeyboardInterrupt in the driver does not
stop).  Cut in the middle, the checkpoint written on Ctrl-C would hold a half-updated
policy next to a batch marked untrained.  The same holds, on a smaller scale, for the
driver's own bookkeeping (drawing a batch advances the data order and the curriculum's
RNG; reporting changes the curriculum and clears what was owed).  Inside `deferred_interrupt()` the first
SIGINT is remembered and raised as KeyboardInterrupt when the block ends, so the
interrupt lands on a clean boundary; a second SIGINT raises at once and marks the state
`torn`, and then no checkpoint must be written from it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Torn:
    """Set when an impatient second Ctrl-C broke into a deferred block."""

    def __init__(self) -> None:
        self.torn = False


@contextmanager
def deferred_interrupt(state: Torn, log=print, what: str = "the learner update") -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere there is nothing to defer
        return
    pending = []

    def handler(signum, frame) -> None:
        if pending:
            state.torn = True
            raise KeyboardInterrupt
        pending.append(signum)
        log(f"interrupt: finishing {what} first (Ctrl-C again to stop at once, without a checkpoint)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt
