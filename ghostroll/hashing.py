"""SHA-256 of a file on disk: the one way GhostRoll hashes a file it is not streaming."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path, *, from_disk: bool = False,
                on_bytes: Callable[[int], object] | None = None) -> str:
    """The file's sha256, `CHUNK` bytes at a time. `from_disk`: its clean pages are
    dropped from the page cache first, so what is hashed is what the disk holds;
    `on_bytes` gets the size of each chunk read."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        if from_disk:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    finally:
        os.close(fd)
    return digest.hexdigest()


def sha256_unchanged(path: Path) -> str:
    """sha256_file, read once per version of the file in this process: the streaming
    pipeline and the publishing after it ask for the same derivatives' hashes. A version
    is the inode, size and modification time: files are replaced by rename, never
    rewritten in place."""
    st = os.stat(path)
    return _sha256_of(os.fspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 14)
def _sha256_of(path: str, _ino: int, _size: int, _mtime_ns: int) -> str:
    return sha256_file(Path(path))
