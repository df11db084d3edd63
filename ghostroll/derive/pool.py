"""Many derivatives in parallel, with bounded memory.

Workers are threads (Pillow and libheif release the GIL while decoding and resizing).
Before a job starts it must fit a decoded-pixel budget: its cost is estimated from the
file header (a 24 MP JPEG drafted to 1/2 scale costs ~18 MB, a 33 MP HIF decoded in
full ~100 MB), and a job larger than the whole budget runs alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ghostroll.config import ImagesConfig
from ghostroll.derive.images import DeriveJob, DeriveResult, derive_one
from ghostroll.derive.sources import target_size
from ghostroll.media import Kind

BYTES_PER_PIXEL = 4  # decoded RGB(A) plus the resized copy, roughly
RAW_PREVIEW_COST = 40 << 20


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
    if job.kind == Kind.VIDEO:
        return 8 << 20
    if job.kind == Kind.RAW:
        return RAW_PREVIEW_COST
    try:
        with Image.open(job.source) as image:
            width, height = image.size
            if image.format in ("JPEG", "MPO"):
                tw, th = target_size(width, height, images.share_max_long_edge)
                scale = max(1, min(8, width // max(tw, 1), height // max(th, 1)))
                scale = 1 << (scale.bit_length() - 1)  # DCT scaling is by 1/2, 1/4, 1/8
                width, height = width // scale, height // scale
    except Exception:  # unreadable headers are the worker's to report, with a message
        return 16 << 20
    return width * height * BYTES_PER_PIXEL


def derive_many(jobs: Sequence[DeriveJob], images: ImagesConfig,
                on_result: Callable[[DeriveResult], None] | None = None) -> list[DeriveResult]:
    """Results in job order; `on_result` is called as each one finishes."""
    budget = Budget(images.decode_budget_mb << 20)
    lock = threading.Lock()

    def run(job: DeriveJob) -> DeriveResult:
        cost = budget.acquire(estimate_cost(job, images))
        try:
            result = derive_one(job, images)
        finally:
            budget.release(cost)
        if on_result is not None:
            with lock:
                on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=images.process_workers,
                            thread_name_prefix="ghostroll-derive") as pool:
        return list(pool.map(run, jobs))
