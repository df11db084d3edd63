"""Run `ghostroll` in this process and SIGKILL it at a chosen point.

    python -m tests.support.crash_runner POINT N ghostroll-args...

POINT is where the Nth call dies, for real (SIGKILL, no cleanup):
  fsync     the Nth os.fsync (file data or directory during copy/commit)
  in_tx     inside the Nth "ingested" DB transaction, before it commits
  after_tx  right after the transaction that recorded the Nth new file committed
  verify    during the Nth verification read-back
  read      at the Nth chunk read from the card (mid-file)
  upload    at the Nth batch of uploads while publishing
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from ghostroll import cli
from ghostroll.card import copier
from ghostroll.storage.db import Database


def _dies_on(n: int, func: Callable[..., Any], after: bool = False) -> Callable[..., Any]:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = func(*args, **kwargs)
        if calls == n and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def _dies_after_entry(n: int, record: Callable[..., Any]) -> Callable[..., Any]:
    """Copies are recorded in batches, as many as were sealed together: count files."""
    recorded = 0

    def wrapper(db: Database, entries: list[Any]) -> None:
        nonlocal recorded
        record(db, entries)
        recorded += len(entries)
        if recorded >= n:
            os.kill(os.getpid(), signal.SIGKILL)

    return wrapper


def main() -> int:
    point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if point == "fsync":
        copier.os.fsync = _dies_on(n, os.fsync)  # type: ignore[attr-defined]
    elif point == "in_tx":
        Database._session_file = _dies_on(n, Database._session_file)  # type: ignore[method-assign]
    elif point == "after_tx":
        Database.record_ingested = _dies_after_entry(n, Database.record_ingested)  # type: ignore[method-assign]
    elif point == "verify":
        from ghostroll.card import sealer
        sealer.verify = _dies_on(n, copier.verify)
    elif point == "upload":
        from ghostroll.publish import publisher
        publisher.upload_all = _dies_on(n, publisher.upload_all)
    elif point == "read":
        real_read = os.read
        copier.os.read = _dies_on(n, real_read)  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown point {point}")
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
