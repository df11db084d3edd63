"""Temp files of copies in flight, owned by the run that writes them.

Every run that copies into `<base>/.incoming/` takes an exclusive flock on its own
`<token>.lock` there and names its temp files `<token>-<n>.part`. A temp file is stale
only when no living process holds its owner's lock (the kernel drops an flock when its
holder dies, kill -9 included), so two runs on one base never delete each other's work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ghostroll.errors import CardError
from ghostroll.storage.session import INCOMING


class IncomingDir:
    """This run's claim on `<base>/.incoming/`: temp names nobody else uses."""

    def __init__(self, base: Path) -> None:
        self.dir = base / INCOMING
        self.token = secrets.token_hex(6)
        self._count = 0
        self._lock_fd: int | None = None

    def __enter__(self) -> IncomingDir:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Locked before it gets its name: a scan never sees this run's lock unheld.
        pending = self.dir / f"{self.token}.locking"
        fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, self.dir / f"{self.token}.lock")
        self._lock_fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            (self.dir / f"{self.token}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def temp(self) -> Path:
        self._count += 1
        return self.dir / f"{self.token}-{self._count}.part"


@contextlib.contextmanager
def held_lock(base: Path, name: str) -> Iterator[bool]:
    """Try to take `<base>/.locks/<name>.lock` without waiting; yields whether it was
    taken (held until the block ends, or until the process dies). The lock files are
    never deleted: deleting a lock file races with a process about to take it."""
    folder = base / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    fd = os.open(folder / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def card_lock(base: Path, volume_id: str) -> Iterator[None]:
    """One run per card at a time (two would resume the same session)."""
    with held_lock(base, f"card-{volume_id}") as taken:
        if not taken:
            raise CardError(f"card {volume_id} is being copied by another GhostRoll run right "
                            "now; wait for it to finish (nothing was done)")
        yield


def stale_temps(base: Path) -> Iterator[Path]:
    """Temp files (and lock files) whose owning run is gone."""
    folder = base / INCOMING
    if not folder.is_dir():
        return
    live: set[str] = set()
    dead: list[Path] = []
    for lock in folder.glob("*.lock"):
        if _held(lock):
            live.add(lock.stem)
        else:
            dead.append(lock)
    for part in folder.glob("*.part"):
        if part.name.split("-", 1)[0] not in live:
            yield part
    yield from dead


def live_runs(base: Path) -> int:
    """How many living runs are copying into `base` right now."""
    folder = base / INCOMING
    return sum(1 for lock in folder.glob("*.lock") if _held(lock)) if folder.is_dir() else 0


def clear_stale(base: Path) -> int:
    """Remove what dead runs left; never another living run's files."""
    removed = 0
    for path in stale_temps(base):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _held(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may just have taken
    return False
