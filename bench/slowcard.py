"""A slow card for the benchmarks: a read-only FUSE passthrough of a folder (e.g. the
FUSE mount of a card image) that serves at most `rate` bytes per second over all files,
like a USB 2 card reader. It proves overlap (CPU work hidden behind the reads), not a
Zero 2 W's speed. fusepy (PyPI) over libfuse 2; see docs/dependencies.md.

    python bench/slowcard.py SOURCE MOUNTPOINT --mb-s 40     (foreground, Ctrl-C ends)"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fuse import FUSE, FuseOSError, Operations


class Throttle:
    """Token bucket shared by every read: `rate` bytes/s, bursts of at most 1 MiB."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(self.next_free, now - (1 << 20) / self.rate)
            self.next_free = start + n / self.rate
            wait = self.next_free - now
        if wait > 0:
            time.sleep(wait)


class SlowReadOnly(Operations):  # type: ignore[misc]
    def __init__(self, root: Path, rate: float) -> None:
        self.root = str(root)
        self.throttle = Throttle(rate)
        self.served = 0  # content bytes read through the mount

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        st = os.lstat(self._path(path))
        return {key: getattr(st, key) for key in (
            "st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_atime", "st_mtime",
            "st_ctime")}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC):
            raise FuseOSError(errno.EROFS)
        return os.open(self._path(path), os.O_RDONLY)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        data = os.pread(fh, size, offset)
        self.throttle.take(len(data))
        self.served += len(data)
        return data

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._path(path))
        return {key: getattr(st, key) for key in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
            "f_flag", "f_frsize", "f_namemax")}


def served_file(mountpoint: Path) -> Path:
    """Where the passthrough writes how many content bytes it served, once unmounted."""
    return mountpoint.with_name(mountpoint.name + ".served")


@contextlib.contextmanager
def slow_mount(source: Path, mountpoint: Path, mb_s: float) -> Iterator[Path]:
    """`source` served read-only at `mb_s` MB/s on `mountpoint` by a child process;
    after it, `served_file(mountpoint)` holds the bytes it served."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, str(source), str(mountpoint),
                             "--mb-s", str(mb_s)])
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the slow card did not mount on {mountpoint}")
            time.sleep(0.05)
        yield mountpoint
    finally:
        subprocess.run(["fusermount", "-u", str(mountpoint)], check=False)
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--mb-s", type=float, required=True, help="read rate, MB/s (1e6)")
    args = parser.parse_args()
    fs = SlowReadOnly(args.source.resolve(), args.mb_s * 1e6)
    FUSE(fs, str(args.mountpoint), foreground=True, ro=True, nothreads=False,
         max_read=131072, big_writes=False)
    served_file(args.mountpoint).write_text(f"{fs.served}\n")


if __name__ == "__main__":
    main()
