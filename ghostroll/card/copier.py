"""Copying one card file: read it exactly once, hash while copying, make it durable,
then verify what is on disk.

`copy_to_temp` streams card → temp file with SHA-256 on the way, fsyncs (unless the
caller makes many copies durable at once: `card/sealer.py`), and reports how many card
bytes it read; a file that changes while it is read is refused, not half-copied.
`commit_new` moves the temp file to a name nothing holds yet (it never replaces a file:
a recorded original is never overwritten) and fsyncs the directory (or leaves that to
the caller). `verify` drops the copy from the page cache and re-hashes it, so the check
reads what is on the disk, not what is still in memory."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ghostroll import faults
from ghostroll.card.media import HEAD_BYTES
from ghostroll.errors import (
    CardRemovedError,
    DiskFullError,
    FileChangedError,
    VerifyError,
    is_disk_full,
)
from ghostroll.hashing import CHUNK, sha256_file

CARD_GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOENT,
                              errno.ESTALE, errno.ENOTCONN, errno.EBADF})


@dataclass(frozen=True)
class Copied:
    temp: Path
    sha256: str
    size: int
    head: bytes  # first bytes, for content sniffing without another read


class ByteCounter:
    """Card bytes read, across threads (honest accounting for the benchmark)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.card_bytes = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.card_bytes += n


def copy_to_temp(src: Path, temp: Path, expected_size: int, counter: ByteCounter,
                 cancel: threading.Event | None = None, sync: bool = True) -> Copied:
    """Stream `src` into `temp` (created exclusively), hashing as it goes; fsynced unless
    `sync` is false (the caller then fsyncs it before anything relies on it)."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    temp.parent.mkdir(parents=True, exist_ok=True)
    try:
        src_fd = os.open(src, os.O_RDONLY)
    except OSError as exc:
        raise _card_error(src, exc) from exc
    try:
        before = os.fstat(src_fd)
        _advise_sequential(src_fd)
        out_fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise InterruptedError("cancelled")
                try:
                    chunk = os.read(src_fd, CHUNK)
                except OSError as exc:
                    raise _card_error(src, exc) from exc
                if not chunk:
                    break
                counter.add(len(chunk))
                if len(head) < HEAD_BYTES:
                    head += chunk[:HEAD_BYTES - len(head)]
                digest.update(chunk)
                _write_all(out_fd, chunk, temp)
                size += len(chunk)
                faults.fault("copy.chunk")
                faults.delay("copy.chunk", len(chunk) / CHUNK)
            card_stat = os.fstat(src_fd)
            os.utime(out_fd, ns=(card_stat.st_atime_ns, card_stat.st_mtime_ns))
            if sync:
                faults.fault("copy.fsync")
                os.fsync(out_fd)
        finally:
            os.close(out_fd)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        os.close(src_fd)
    if (size, card_stat.st_mtime_ns) != (before.st_size, before.st_mtime_ns) \
            or size != expected_size:
        temp.unlink(missing_ok=True)
        _raise_changed_or_gone(src, size, expected_size)
    return Copied(temp, digest.hexdigest(), size, head)


def _raise_changed_or_gone(src: Path, size: int, expected_size: int) -> None:
    try:
        os.stat(src)
    except OSError as exc:
        raise _card_error(src, exc) from exc
    raise FileChangedError(
        f"{src}: changed while it was being copied (read {size} bytes, the card listed "
        f"{expected_size})")


def commit_new(temp: Path, final: Path, sha256: str, sync_dir: bool = True) -> Path:
    """Move a finished copy to `final`, or beside it as `name~2.ext`, `name~3.ext`...
    when that name is taken, and make the rename durable; returns where it landed.
    Never replaces a file: whatever holds a name (a recorded original, another
    spelling of it on a case-insensitive disk, a crashed run's unrecorded copy) stays.
    An unrecorded copy with exactly this content (`sha256`, the temp file's hash) is
    taken over instead of duplicated.
    The card's lock makes the existence check and the rename one step. With `sync_dir`
    false the caller fsyncs the folder (once for many renames)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    faults.fault("copy.commit")
    for candidate in _names(final):
        if os.path.lexists(candidate):
            if _holds(candidate, temp.stat().st_size, sha256):
                temp.unlink()
                return candidate
            continue
        os.rename(temp, candidate)
        if sync_dir:
            fsync_dir(candidate.parent)
        return candidate
    raise FileExistsError(f"{final}: no free name for another copy")


def _names(final: Path, tries: int = 1000) -> Iterator[Path]:
    """`final`, then `name~2.ext`...: made one at a time (the first is almost always free)."""
    yield final
    stem, dot, ext = final.name.partition(".")
    for n in range(2, tries):
        yield final.with_name(f"{stem}~{n}{dot}{ext}")


def _holds(existing: Path, size: int, sha256: str) -> bool:
    try:
        return existing.is_file() and existing.stat().st_size == size \
            and sha256_file(existing) == sha256
    except OSError:
        return False


def verify(path: Path, expected_sha256: str) -> None:
    """Re-read the copy from disk (page cache dropped first) and compare hashes."""
    faults.fault("verify")
    actual = sha256_file(path, from_disk=True)
    if actual != expected_sha256:
        raise VerifyError(f"{path}: copy does not match the card (sha256 {actual}"
                          f" != {expected_sha256}); it was not counted and will be copied again")


def fsync_dir(path: Path) -> None:
    fsync_path(path, os.O_DIRECTORY)


def fsync_path(path: Path, flags: int = 0) -> None:
    """fsync a file (or, with O_DIRECTORY, a folder) by name; Linux allows it read-only."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_filesystem(path: Path) -> None:
    """Write back everything dirty on `path`'s filesystem in one go (syncfs(2)): one
    journal commit for a batch of new files, where an fsync per file commits once per
    file. Only a speed-up: failures are ignored, as the fsync of each file that follows
    reports that file's own write errors."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            syncfs(fd)
        finally:
            os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(f"the session disk is full while writing {path}") from exc
            raise
        view = view[written:]


def _advise_sequential(fd: int) -> None:
    with contextlib.suppress(OSError):  # FUSE may refuse advice; it is only a hint
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _card_error(src: Path, exc: OSError) -> Exception:
    if exc.errno in CARD_GONE_ERRNOS:
        return CardRemovedError(
            f"{src}: {exc.strerror or exc} (card removed or failing?); verified files are "
            "kept, insert the card again to resume")
    return exc
