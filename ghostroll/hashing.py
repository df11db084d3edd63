"""SHA-256 of a file on disk: the one way GhostRoll hashes a file it is not streaming."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
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
    """sha256_file, read once per version of the file in this process (or never, when
    its writer said what it wrote: `remember_sha256`): the streaming pipeline and the
    publishing after it ask for the same derivatives' hashes. A version is the inode,
    size and modification time: files are replaced by rename, never rewritten in place."""
    version = _version(path)
    with _lock:
        digest = _known.get(version)
        if digest is not None:
            _known.move_to_end(version)
            return digest
    digest = sha256_file(path)
    _remember(version, digest)
    return digest


def remember_sha256(path: Path, digest: str, written: os.stat_result) -> None:
    """The hash of what was just written to `path` (`written`: the stat of the file
    renamed there, never to be rewritten), from the bytes in hand: no one reads the file
    again to learn it."""
    _remember(_version(path, written), digest)


Version = tuple[str, int, int, int]
_known: OrderedDict[Version, str] = OrderedDict()
_lock = threading.Lock()
KNOWN_MAX = 1 << 14  # versions remembered (a card's derivatives, and then some)


def _version(path: Path, st: os.stat_result | None = None) -> Version:
    st = os.stat(path) if st is None else st
    return os.fspath(path), st.st_ino, st.st_size, st.st_mtime_ns


def _remember(version: Version, digest: str) -> None:
    with _lock:
        _known[version] = digest
        _known.move_to_end(version)
        while len(_known) > KNOWN_MAX:
            _known.popitem(last=False)
