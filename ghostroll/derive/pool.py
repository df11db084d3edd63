"""Many derivatives in parallel, with bounded memory.

Workers are threads (Pillow and libheif release the GIL while decoding and resizing).
Before a job starts it must fit a decoded-pixel budget: its cost is estimated from the
file header (`sources.estimate_cost`: a 24 MP JPEG drafted to 1/2 scale costs ~60 MB
with its resized copies, a 12 MP HEIC decoded in full ~125 MB). No job is larger than
the budget: one that would be is refused by the opener (`TooLarge`) before decoding.

The workers run at a lower CPU priority (`WORKER_NICE`) than the rest: the copy of the
card, which the photographer waits on to pull it, never waits for them for a core
(measured on 2 cores, card C: "safe to remove" at ~2.5 s instead of ~3.1 s, the whole
run unchanged)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ghostroll.card.media import Kind
from ghostroll.config import ImagesConfig
from ghostroll.derive import sources
from ghostroll.derive.images import DeriveJob, DeriveResult, derive_one
from ghostroll.errors import ProcessingStopped
from ghostroll.memory import return_freed_memory

WORKER_NICE = 5  # added to a worker thread's nice value (and its ffmpeg children's)


def _lower_priority() -> None:
    """Linux schedules each thread on its own: a worker thread's nice value is its own.
    (Elsewhere a thread id is no process id: nothing is changed.)"""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):  # refused here: the same work, at equal priority
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE)


class Budget:
    """A counting semaphore in bytes; a request larger than the total waits for an
    empty budget and then runs alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, cost: int) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + cost <= self.total)
            self.used += cost
            return cost

    def release(self, cost: int) -> None:
        with self._cond:
            self.used -= cost
            self._cond.notify_all()


def estimate_cost(job: DeriveJob, images: ImagesConfig) -> int:
    """Bytes to reserve for `job`, at most the whole budget (the opener refuses more)."""
    budget = images.decode_budget_mb << 20
    if job.kind == Kind.VIDEO:
        return 8 << 20
    try:
        cost = sources.estimate_cost(job.source, job.kind, images.share_max_long_edge)
    except Exception:  # unreadable headers are the worker's to report, with a message
        return 16 << 20
    return min(cost, budget)


class Deferred(Exception):
    """A job its pool's gate held back: made later (by processing), not now."""


class DerivePool:
    """Derivatives made in parallel under one memory budget, as jobs arrive (the
    streaming pipeline submits each picture as soon as its original is recorded).
    After the first environmental failure (`ProcessingStopped`) no further job starts;
    a job `gate` refuses when it is its turn ends in `Deferred`."""

    def __init__(self, images: ImagesConfig,
                 on_result: Callable[[DeriveResult], None] | None = None,
                 gate: Callable[[DeriveJob], bool] | None = None) -> None:
        return_freed_memory()
        self.images = images
        self.on_result = on_result
        self.gate = gate
        self.budget = Budget(images.decode_budget_mb << 20)
        self.lock = threading.Lock()
        self.halted = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=images.process_workers,
                                           thread_name_prefix="ghostroll-derive",
                                           initializer=_lower_priority)

    def submit(self, job: DeriveJob) -> Future[DeriveResult]:
        return self.executor.submit(self._run, job)

    def _run(self, job: DeriveJob) -> DeriveResult:
        if self.halted.is_set():  # the disk failed under another job: do no more
            raise ProcessingStopped("processing stopped", errno.ECANCELED)
        if self.gate is not None and not self.gate(job):
            raise Deferred(str(job.source))
        cost = self.budget.acquire(estimate_cost(job, self.images))
        try:
            result = derive_one(job, self.images)
        except ProcessingStopped:
            self.halted.set()
            raise
        finally:
            self.budget.release(cost)
        if self.on_result is not None:
            with self.lock:
                self.on_result(result)
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def __enter__(self) -> DerivePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def derive_many(jobs: Sequence[DeriveJob], images: ImagesConfig,
                on_result: Callable[[DeriveResult], None] | None = None) -> list[DeriveResult]:
    """Results in job order; `on_result` is called as each one finishes."""
    with DerivePool(images, on_result) as pool:
        futures = [pool.submit(job) for job in jobs]
    # the first environmental failure, not the "stopped" of the jobs cancelled after it
    for future in futures:
        exc = future.exception()
        if isinstance(exc, ProcessingStopped) and exc.errno != errno.ECANCELED:
            raise exc
    return [future.result() for future in futures]
