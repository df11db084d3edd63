"""What verify reports: problem kinds (stable: the fault tests match on them), `Problem`,
`Report`, `Options`."""


from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ghostroll.storage import db as dbm
from ghostroll.storage.db import SessionRow

GALLERY_JSON = "gallery.json"  # process.GALLERY_JSON (not imported: it loads the decoders)
DISK_LOCATIONS = (dbm.LOCAL, dbm.ARCHIVE_DISK)

# problem kinds (stable: the fault tests match on them)
DATABASE = "database"
NO_COPY = "no-copy"  # a content counted safe without any verified copy
COPY_MISSING, COPY_SIZE, COPY_DAMAGED, COPY_UNREADABLE = (
    "copy-missing", "copy-size", "copy-damaged", "copy-unreadable")
UNKNOWN_LOCATION = "unknown-location"
ORIGINAL_MISSING, ORIGINAL_SIZE = "original-missing", "original-size"
GALLERY_MISSING, DERIVED_MISSING = "gallery-missing", "derived-missing"
NOT_UPLOADED, OBJECT_MISSING, OBJECT_SIZE = "not-uploaded", "object-missing", "object-size"
BUCKET_PUBLIC, BUCKET_ERROR = "bucket-public", "bucket-error"
SET_ASIDE = "set-aside"
UNUSABLE = "unusable"  # exit 2: configuration, database or --session unusable
STALE_TEMP, UNRECORDED = "stale-temp", "unrecorded"
# warning kinds (exit 0: degraded, not wrong)
OFFLINE, NOT_CHECKED = "offline", "not-checked"
PARTIAL_WRITE = "partial-write"  # a `.<name>.tmp` of session.write_*_atomic or share.zip


@dataclass(frozen=True)
class Problem:
    kind: str
    session: str | None  # session id, or None for the base folder / database
    path: str | None  # a file, an object (s3://bucket/key) or the database
    message: str
    fix: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    sessions: list[SessionRow] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [asdict(p) for p in self.problems],
                "warnings": [asdict(p) for p in self.warnings],
                "checked": dict(sorted(self.checked.items())), "repaired": self.repaired}


@dataclass(frozen=True)
class Options:
    local: bool = False  # no bucket requests
    read_data: bool = False  # re-hash every disk copy
    restart: bool = False  # --read-data: forget the checkpoint of an interrupted pass
    session: SessionRow | None = None  # limit every check to this session
    archive_offline: str | None = None  # an archive disk's folder that is not mounted now


HashProgress = Callable[[int, int, int, int], None]  # (copies done, of, bytes done, of)
