"""Ctrl-C and SIGTERM during a command (DESIGN.md, "Time, interrupts and exit
codes").

While `catching()` is active, SIGINT and SIGTERM only set `Interrupts.signal`
and stop every CP-SAT search under way.  CP-SAT runs in C++ with the main
thread inside it, where no Python signal handler can run, so the C-level
handler's wake-up byte (signal.set_wakeup_fd) is read by a watcher thread,
which calls `stop_search` on the registered solvers.  The clock then reports
the time as spent (policies/cpsat/clock.py), every phase ends at once, and the
command decides: write nothing and exit 130/143, or, with `--on-interrupt
best`, return the best answer so far marked as interrupted.  CP-SAT's own
SIGINT catching is turned off (it stopped one search and let the rest run on).
"""
from __future__ import annotations

import signal
import socket
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """Raised between stages once a signal has arrived and no answer is wanted."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class Interrupts:
    """The one record of a signal received, and the searches to stop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._solvers: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.RLock()     # the main thread's handler may run while it holds it

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def register(self, solver) -> None:
        """A CP-SAT solver about to search: stopped at once if a signal arrives
        (or has arrived)."""
        with self._lock:
            self._solvers.add(solver)
            if self.signal is not None:
                solver.stop_search()

    def arrived(self, signum: int) -> None:
        with self._lock:
            if self.signal is None:
                self.signal = signum
            for solver in list(self._solvers):
                solver.stop_search()

    def check(self) -> None:
        """Between stages: raise Interrupted once a signal has arrived."""
        if self.signal is not None:
            raise Interrupted(self.signal)


INTERRUPTS = Interrupts()


@contextmanager
def catching() -> Iterator[Interrupts]:
    """SIGINT and SIGTERM recorded and searches stopped, for the block; the
    previous handlers afterwards.  In the main thread only (signals are)."""
    if threading.current_thread() is not threading.main_thread():
        yield INTERRUPTS
        return
    INTERRUPTS.signal = None
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                data = reader.recv(16)
            except OSError:
                return
            for byte in data:
                if byte in EXIT_CODES:
                    INTERRUPTS.arrived(byte)

    watcher = threading.Thread(target=watch, name="trnsched-signals", daemon=True)
    watcher.start()
    for s in SIGNALS:
        # The Python-level handler only records: the watcher has stopped the searches.
        signal.signal(s, lambda signum, frame: INTERRUPTS.arrived(signum))
    try:
        yield INTERRUPTS
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_fd)
        done.set()
        try:
            writer.send(b"\0")      # wake the watcher so that it sees `done`
        except OSError:
            pass
        watcher.join(timeout=1.0)
        writer.close()
        reader.close()
