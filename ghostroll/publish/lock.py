"""Only one process uploads at a time: an flock on a file next to the database.

The kernel drops the lock when its holder dies (even by SIGKILL), so a crash never
leaves a stale lock behind, and `ghostroll publish` over SSH cannot race the service."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ghostroll.errors import PublishError


class PublishBusy(PublishError):
    """Another process holds the publish lock."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".publish.lock")


@contextlib.contextmanager
def publish_lock(db_path: Path, wait: bool = False) -> Iterator[None]:
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise PublishBusy(f"another GhostRoll process (pid {holder}) is publishing; "
                              "it will publish this session too") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
