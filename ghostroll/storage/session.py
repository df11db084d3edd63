"""A session on disk: its id, its folder layout and its manifest.

    <base>/<session-id>/
        originals/DCIM/...      verified copies, card structure preserved
        derived/share/, derived/thumbs/, derived/share.zip
        index.html              local gallery
        manifest.json           one entry per card file
        ghostroll.log           what happened, for people
        share.txt, share-qr.png once a link exists
"""

from __future__ import annotations

import grp
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ghostroll.card.copier import fsync_dir

INCOMING = ".incoming"  # temp files live here, on the same filesystem, never counted
APPLIANCE_GROUP = "ghostroll"  # the appliance's units run as User=/Group=ghostroll


def new_session_id(now: datetime | None = None) -> str:
    """`shoot-YYYY-MM-DD_HHMMSS_<random>` in UTC; the random part keeps two sessions
    in the same second (or a Pi whose clock restarted at 1970) apart."""
    now = now or datetime.now(UTC)
    return f"shoot-{now.astimezone(UTC):%Y-%m-%d_%H%M%S}_{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SessionLayout:
    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def originals(self) -> Path:
        return self.root / "originals"

    @property
    def derived(self) -> Path:
        return self.root / "derived"

    @property
    def share_dir(self) -> Path:
        return self.derived / "share"

    @property
    def thumbs_dir(self) -> Path:
        return self.derived / "thumbs"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def log(self) -> Path:
        return self.root / "ghostroll.log"

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def share_txt(self) -> Path:
        return self.root / "share.txt"

    @property
    def share_qr(self) -> Path:
        return self.root / "share-qr.png"

    def original(self, rel_path: str) -> Path:
        """Where a card file's verified copy lives. `rel_path` comes from our own
        directory walk, so it has no `..` parts; refuse it anyway if it ever does."""
        parts = PurePosixPath(rel_path).parts
        if not parts or any(p in ("..", "") for p in parts) or rel_path.startswith("/"):
            raise ValueError(f"refusing unsafe card path {rel_path!r}")
        return self.originals.joinpath(*parts)

    def create(self) -> None:
        for folder in (self.originals, self.share_dir, self.thumbs_dir):
            folder.mkdir(parents=True, exist_ok=True)


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never half of one, even after a crash.
    The file gets exactly `mode` (whatever the umask); on failure (a full disk) the temp
    file is removed and the old file, if any, stays as it was."""
    write_bytes_atomic(path, text.encode("utf-8"), mode)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode)


def private_mode(group: str | None = None) -> int:
    """The mode of files that hold working share links or what leads to them (share.txt,
    share-qr.png, link.json, status.json, the database): anyone who reads one can open the
    gallery. 0600; 0640 on the appliance (the process's group is `ghostroll`), so the
    admin, a member of that group, reads them over SSH. `group` overrides the lookup."""
    if group is None:
        try:
            group = grp.getgrgid(os.getegid()).gr_name
        except KeyError:
            group = ""
    return 0o640 if group == APPLIANCE_GROUP else 0o600
