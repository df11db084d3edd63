"""share.zip: the share images, stored as they are (JPEGs do not compress).

Entries are named as on the card (`DSC_0002.jpg`; a second `DSC_0002` from another folder
becomes `DSC_0002 (2).jpg`) and dated with the capture time the camera recorded, so a
recipient importing the archive gets the photos' own names and dates."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from ghostroll import faults
from ghostroll.hashing import sha256_unchanged

# An undated entry: a fixed time, so the same photos give the same bytes (idempotent uploads)
UNDATED = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ZipEntry:
    path: Path
    name: str  # in the archive
    captured: datetime | None = None  # the camera's wall-clock time, written as is


def entry_names(card_names: list[str], suffix: str = ".jpg") -> list[str]:
    """Archive names for share images of these card file names, in order: the card's
    stem with `suffix`, numbered only where two would collide (case-insensitively, as
    the recipient's disk may be). Pure."""
    taken: set[str] = set()
    names = []
    for card_name in card_names:
        stem = PurePosixPath(card_name).stem or "photo"
        name, n = f"{stem}{suffix}", 2
        while name.lower() in taken:
            name, n = f"{stem} ({n}){suffix}", n + 1
        taken.add(name.lower())
        names.append(name)
    return names


def zip_time(captured: datetime | None) -> tuple[int, int, int, int, int, int]:
    """A zip timestamp is local wall-clock time: the camera's, unconverted."""
    if captured is None or captured.year < 1980:
        return UNDATED
    return (captured.year, captured.month, captured.day, captured.hour, captured.minute,
            captured.second - captured.second % 2)


def write_share_zip(files: list[ZipEntry], dest: Path) -> Path:
    """Written to a temp file, then renamed. On any failure (a full disk) the temp file
    is removed and an older zip stays. Hashed at once for the upload that follows (it
    is still in the page cache, and processing runs while the stream's last uploads go
    out: publishing would otherwise read it all again before sending it)."""
    faults.fault("zip")
    temp = dest.with_name(f".{dest.name}.tmp")
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_STORED) as archive:
            for entry in sorted(files, key=lambda f: f.name):
                info = zipfile.ZipInfo(entry.name, date_time=zip_time(entry.captured))
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with entry.path.open("rb") as src, archive.open(info, "w") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sha256_unchanged(dest)
    return dest
