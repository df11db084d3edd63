"""Which card is this? A stable volume id and label for a mounted path.

The id must be the same every time the same card comes back, whatever the mount point,
so it is the FAT/exFAT volume serial, written like udev's ID_FS_UUID ("ABCD-1234").
The per-card unit passes udev's value; for `ghostroll run PATH` we find the block device
behind the mount in /proc/self/mountinfo and read the serial from its boot sector
(read-only, 512 bytes). When neither is possible (a plain folder, no permission) the id
falls back to the folder's real path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Volume:
    id: str  # "fat:ABCD-1234", "exfat:ABCD-1234", or "path:/real/path"
    label: str
    device: str | None = None


def identify(path: Path, volume_id: str | None = None, label: str | None = None,
             dev_disk: Path = Path("/dev/disk")) -> Volume:
    mount = _mount_of(path.resolve())
    device, fstype = (mount[1], mount[2]) if mount else (None, "")
    if volume_id:
        return Volume(volume_id, label or _default_label(path), device)
    if device and device.startswith("/dev/"):
        uuid = _udev_link(dev_disk / "by-uuid", device)
        if uuid:
            prefix = "exfat" if "exfat" in fstype else "fat"
            udev_label = _udev_link(dev_disk / "by-label", device)
            return Volume(f"{prefix}:{uuid.upper()}",
                          label or udev_label or _default_label(path), device)
        parsed = _read_boot_sector(device)
        if parsed is not None:
            fs_id, fs_label = parsed
            return Volume(fs_id, label or fs_label or _default_label(path), device)
    return Volume(f"path:{path.resolve()}", label or _default_label(path), device)


def _udev_link(folder: Path, device: str) -> str | None:
    """The name of the udev symlink in `folder` (/dev/disk/by-uuid, by-label) that
    points at `device`: readable without any permission on the device itself."""
    try:
        target = os.path.realpath(device)
        for link in folder.iterdir():
            if os.path.realpath(link) == target:
                return link.name.encode().decode("unicode_escape")
    except OSError:
        return None
    return None


def _default_label(path: Path) -> str:
    return path.resolve().name or str(path)


def parse_boot_sector(sector: bytes) -> tuple[str, str] | None:
    """(id, label) from a FAT12/16/32 or exFAT boot sector; None if neither."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return None
    if sector[3:11] == b"EXFAT   ":
        serial = int.from_bytes(sector[100:104], "little")
        return f"exfat:{serial >> 16:04X}-{serial & 0xFFFF:04X}", ""
    if sector[82:90] == b"FAT32   ":
        serial_at, label_at = 67, 71
    elif sector[54:59] in (b"FAT12", b"FAT16", b"FAT  "):
        serial_at, label_at = 39, 43
    else:
        return None
    serial = int.from_bytes(sector[serial_at:serial_at + 4], "little")
    label = sector[label_at:label_at + 11].decode("ascii", "replace").strip()
    if label.upper() == "NO NAME":
        label = ""
    return f"fat:{serial >> 16:04X}-{serial & 0xFFFF:04X}", label


def _read_boot_sector(device: str) -> tuple[str, str] | None:
    try:
        fd = os.open(device, os.O_RDONLY)
    except OSError:
        return None
    try:
        return parse_boot_sector(os.pread(fd, 512, 0))
    except OSError:
        return None
    finally:
        os.close(fd)


def _mount_of(path: Path) -> tuple[str, str, str] | None:
    """(mount point, source, fstype) of the mount holding `path` (/proc/self/mountinfo)."""
    best: tuple[str, str, str] | None = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        point = fields[4].encode().decode("unicode_escape")
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, tail[1], tail[0])
    return best
