"""Real card images for tests and benchmarks: FAT32/exFAT made with dosfstools /
exfatprogs, filled with mtools (never through a read-write mount), and mounted
read-only through FUSE on a loop device (this machine class has no vfat/exfat kernel
driver; the kernel mount path is proven in the VM system test).

Needs root (losetup, FUSE mounts) and the Debian packages dosfstools, exfatprogs,
mtools, fusefat, exfat-fuse."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOOLS = {"vfat": ("mkfs.vfat", "mcopy", "fusefat", "losetup"),
         "exfat": ("mkfs.exfat", "mcopy", "mount.exfat-fuse", "losetup")}


def missing_tools(fs: str) -> list[str]:
    return [t for t in TOOLS[fs] if shutil.which(t) is None
            and not Path("/sbin", t).exists() and not Path("/usr/sbin", t).exists()]


def make_image(image: Path, source: Path, fs: str = "vfat", size_mb: int | None = None,
               label: str = "auto-import") -> Path:
    """A superfloppy card image holding `source`'s DCIM/ (and PRIVATE/ if present)."""
    content = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    size_mb = size_mb or max(64, int(content * 1.3 / 2**20) + 48)
    with image.open("wb") as fh:
        fh.truncate(size_mb << 20)
    if fs == "vfat":
        _run(["mkfs.vfat", "-F", "32", "-n", label.upper()[:11], str(image)])
    else:
        _run(["mkfs.exfat", "-L", label, str(image)])
    tops = [p for p in sorted(source.iterdir()) if p.name.upper() in ("DCIM", "PRIVATE")]
    if fs == "vfat":
        _run(["mcopy", "-s", "-p", "-m", "-i", str(image), *map(str, tops), "::/"],
             env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    else:
        _fill_exfat(image, tops)
    return image


def _fill_exfat(image: Path, tops: list[Path]) -> None:
    """mtools has no exFAT: fill the fresh image through a read-write exfat-fuse mount
    (fixture building only; the card under test is always mounted read-only)."""
    loop = _run(["losetup", "--find", "--show", str(image)]).strip()
    target = Path(tempfile.mkdtemp(prefix="ghostroll-fill-"))
    try:
        _run(["mount", "-t", "exfat-fuse", loop, str(target)])
        try:
            for top in tops:
                shutil.copytree(top, target / top.name)
            os.sync()
        finally:
            unmount(target)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)
        target.rmdir()


@contextmanager
def mounted(image: Path, mountpoint: Path, fs: str = "vfat") -> Iterator[Path]:
    """Mount a card image read-only through FUSE on a read-only loop device."""
    loop = _run(["losetup", "--find", "--show", "--read-only", str(image)]).strip()
    mountpoint.mkdir(parents=True, exist_ok=True)
    try:
        if fs == "vfat":
            _run(["fusefat", "-o", "ro,nosuid,nodev,noexec", loop, str(mountpoint)])
        else:
            _run(["mount", "-t", "exfat-fuse", "-o", "ro,nosuid,nodev,noexec", loop,
                  str(mountpoint)])
        _wait_mounted(mountpoint)
        try:
            yield mountpoint
        finally:
            unmount(mountpoint)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)


def unmount(mountpoint: Path) -> None:
    """Unmount, also when the FUSE daemon is gone (then the mount point is stale and
    os.path.ismount says False, so ask /proc/mounts instead)."""
    for _ in range(50):
        if not _listed(mountpoint):
            return
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def _listed(mountpoint: Path) -> bool:
    target = str(mountpoint)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return any(line.split()[1] == target for line in fh if len(line.split()) > 1)


def fuse_pid(mountpoint: Path) -> int | None:
    """PID of the FUSE daemon serving `mountpoint` (to pull the card for real)."""
    target = str(mountpoint)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        names = [c.decode(errors="replace") for c in cmdline]
        if names and target in names and any("fuse" in n or "fat" in n for n in names[:1]):
            return int(proc.name)
    return None


def _wait_mounted(mountpoint: Path) -> None:
    for _ in range(100):
        if os.path.ismount(mountpoint):
            return
        time.sleep(0.05)
    raise RuntimeError(f"FUSE mount at {mountpoint} did not appear")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout
