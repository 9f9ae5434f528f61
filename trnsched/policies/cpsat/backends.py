"""Where independent packing tasks (packing.py) run: in this process, in a pool
of local processes (`--backend local`, the default), or as Ray tasks
(`--backend ray`: a local Ray started for the command, or the cluster at
`--ray-address`).

Every backend returns the answers in the order of the tasks, and a task's
answer in deterministic mode depends on the task alone, so the same inputs and
settings give the same placement on any backend and any number of machines.
A backend is opened once per command (`session`; or, called outside one, per
decision that needs it) and closed when it ends: the pool's processes, or the
Ray runtime it started, go with it.
"""
from __future__ import annotations

import gc
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Protocol

from trnsched.inputs.errors import InputError
from trnsched.policies.cpsat.packing import PackAnswer, PackTask, solve_task
from trnsched.problem import SolverConfig

BACKENDS = ("local", "ray")


class Backend(Protocol):
    name: str
    slots: int          # tasks that run at once

    def run(self, tasks: list[PackTask]) -> list[PackAnswer]: ...
    def close(self) -> None: ...


class InProcess:
    """One task after another, here: one worker, or a single task."""
    name = "local"
    slots = 1

    def run(self, tasks: list[PackTask]) -> list[PackAnswer]:
        return [solve_task(t) for t in tasks]

    def close(self) -> None:
        pass


class LocalPool:
    """A pool of `slots` processes, started at the first batch that has more than
    one task.  Forked, not spawned: a spawned or fork-server child runs the
    caller's main script again, which breaks a library user's script without a
    `__main__` guard.  The fork happens between solves, when CP-SAT has joined
    its threads; the collector's objects are frozen first, so that a child's
    collections do not touch (and copy) the parent's millions of objects."""
    name = "local"

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.pool: ProcessPoolExecutor | None = None

    def run(self, tasks: list[PackTask]) -> list[PackAnswer]:
        if len(tasks) <= 1:
            return [solve_task(t) for t in tasks]
        if self.pool is None:
            gc.freeze()
            self.pool = ProcessPoolExecutor(max_workers=self.slots, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_leave_interrupts_to_the_parent)
        return list(self.pool.map(solve_task, tasks))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            gc.unfreeze()


def _leave_interrupts_to_the_parent() -> None:
    """Ctrl-C (and a SIGTERM to the process group) reaches every worker too: the
    command stops the pool itself (a task ends within its limit of a fraction
    of a second, interrupts.py), where a worker that died of it would break the
    pool and print a traceback of its own."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


class RayBackend:
    """Ray tasks of one CPU each.  Without an address, a local Ray of `slots`
    CPUs is started for the command and stopped after it; with one, the tasks
    join that cluster (whose nodes need the same trnsched and OR-Tools for the
    same answers) and the connection is closed after it.  How many tasks a
    batch holds is set by --workers either way; a Ray this process has already
    started is used as it is."""
    name = "ray"

    def __init__(self, address: str | None, slots: int) -> None:
        ray = ray_module()
        self.ray, self.slots = ray, slots
        self.started = not ray.is_initialized()
        if self.started:
            try:
                if address is None:
                    # "local": a new Ray of its own, never a cluster that RAY_ADDRESS
                    # or a stale /tmp/ray/ray_current_cluster points at.
                    ray.init(address="local", num_cpus=slots, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                self.close()
                where = f"join Ray at {address}" if address else "start a local Ray"
                raise InputError(f"could not {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                                 field="ray_address" if address else "backend") from None
        self.remote = ray.remote(num_cpus=1, max_retries=1)(solve_task)

    def run(self, tasks: list[PackTask]) -> list[PackAnswer]:
        return self.ray.get([self.remote.remote(t) for t in tasks])

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def ray_module():
    """Ray, or a one-line error saying how to install it (checked before any work)."""
    try:
        import ray
    except ImportError:
        raise InputError("needs Ray, which is not installed: pip install 'trnsched[ray]'", field="backend") from None
    return ray


_ACTIVE: ContextVar[Backend | None] = ContextVar("trnsched_backend", default=None)


@contextmanager
def session(config: SolverConfig) -> Iterator[None]:
    """The backend for a whole command: opened at its start, so that a Ray that
    cannot be started or joined fails before any work, and shared by every
    decision in it (a replay's too), then closed."""
    with _opened(config) as backend:
        token = _ACTIVE.set(backend)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


@contextmanager
def open_backend(config: SolverConfig) -> Iterator[Backend]:
    """The command's backend (`session`), or one of the settings' own, closed
    when the block ends."""
    active = _ACTIVE.get()
    if active is not None:
        yield active
        return
    with _opened(config) as backend:
        yield backend


@contextmanager
def _opened(config: SolverConfig) -> Iterator[Backend]:
    if config.backend == "ray":
        backend: Backend = RayBackend(config.ray_address, config.workers)
    elif config.backend == "local":
        backend = LocalPool(config.workers) if config.workers > 1 else InProcess()
    else:
        raise ValueError(f"unknown backend {config.backend!r}; choose from {', '.join(BACKENDS)}")
    try:
        yield backend
    finally:
        backend.close()
