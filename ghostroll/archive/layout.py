"""What an archive disk looks like and what the copies mean (pure: no I/O, no clock).

    <archive>/YYYY/YYYY-MM-DD <album>/IMG_0001.JPG ...   the card's file names
    <archive>/YYYY/YYYY-MM-DD <album>/SHA256SUMS         `sha256sum -c` proves the folder
    <archive>/YYYY/YYYY-MM-DD <album>/ghostroll-archive.json   the session it holds
    <archive>/.incoming/                                 temp files of copies in flight

A second session of the same day and album gets `YYYY-MM-DD <album> (2)`; the folder
belongs to the session its manifest names, so an interrupted archive resumes there."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from pathlib import PurePosixPath
from typing import Any

from ghostroll.storage.db import COPY_VERIFIED, LOCAL, CopyRow, SessionRow

MANIFEST = "ghostroll-archive.json"
SUMS = "SHA256SUMS"
MANIFEST_FORMAT = 1
_UNSAFE = str.maketrans({c: "_" for c in '/\\:*?"<>|\0'})


def album_name(session: SessionRow) -> str:
    """The folder's album part: the card's label (a photographer names cards by job),
    made safe for FAT/exFAT/ext4 names."""
    name = " ".join(session.volume_label.translate(_UNSAFE).split()).strip(". ")
    return name[:60] or "Photos"


def session_folder(created_utc: str, album: str, n: int = 1,
                   tz: tzinfo | None = None) -> PurePosixPath:
    """`YYYY/YYYY-MM-DD <album>` (the date where the photographer is: `tz`, default the
    system's), `... (n)` for the nth session claiming the same name."""
    when = datetime.fromisoformat(created_utc.replace("Z", "+00:00")).astimezone(tz)
    name = f"{when:%Y-%m-%d} {album}" + (f" ({n})" if n > 1 else "")
    return PurePosixPath(f"{when:%Y}", name)


def file_name(card_path: str) -> str:
    """The name on the archive disk: the card's file name, without the camera folders."""
    return PurePosixPath(card_path).name


def sums_text(entries: Iterable[tuple[str, str]]) -> str:
    """`sha256sum` output for (name, sha256): names with a backslash or a newline are
    escaped the way `sha256sum -c` reads them."""
    lines = []
    for name, sha in sorted(entries):
        if "\\" in name or "\n" in name:
            escaped = name.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"\\{sha}  {escaped}")
        else:
            lines.append(f"{sha}  {name}")
    return "".join(line + "\n" for line in lines)


def manifest(session: SessionRow, album: str, files: list[dict[str, Any]],
             complete: bool) -> dict[str, Any]:
    """The folder describes itself: enough to rebuild the session (`ghostroll restore`)."""
    return {"format": MANIFEST_FORMAT, "session_id": session.id,
            "session_number": session.number, "created_utc": session.created_utc,
            "volume": {"id": session.volume_id, "label": session.volume_label},
            "source": session.source, "album": album, "complete": complete,
            "files": files}


def copies_held(shas: Iterable[str], copies: Iterable[CopyRow]) -> int:
    """How many verified copies every one of the contents `shas` has at least (the
    receipt's number); 0 for no contents."""
    count: dict[str, int] = {sha: 0 for sha in shas}
    if not count:
        return 0
    for copy in copies:
        if copy.state == COPY_VERIFIED and copy.sha256 in count:
            count[copy.sha256] += 1
    return min(count.values())


def waiting_for_second_copy(sessions: Iterable[tuple[set[str], list[CopyRow]]]) -> int:
    """How many sessions (their contents, their copies) still have a content without a
    verified copy outside the device."""
    return sum(1 for shas, copies in sessions
               if shas and copies_held(shas, (c for c in copies if c.location != LOCAL)) < 1)


def receipt(copies: int) -> str:
    """What the photographer may do with the card, from the copy count."""
    if copies >= 2:
        return f"{copies} copies ✓ · safe to format"
    if copies == 1:
        return "1 copy · safe to remove"
    return "not safe yet: keep the card"
