"""Database vocabulary: session/file/copy states and the frozen rows queries return."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# session states
COPYING, COPIED, PROCESSED, PUBLISHED = "copying", "copied", "processed", "published"
# publish_queue states
QUEUED, RETRY, PUBLISHED_Q = "queued", "retry", "published"
UNSHARED_Q = "unshared"  # its link revoked: not published again unless asked
# session_files statuses
VERIFIED, DUPLICATE, FAILED = "verified", "duplicate", "failed"
# copies: where a content is kept, and what became of that copy
LOCAL, ARCHIVE_DISK, BUCKET = "local", "archive-disk", "bucket"
COPY_VERIFIED, COPY_PRUNED = "verified", "pruned"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Ingested:
    """A verified copy to record: its card path, content and where the copy is. `stored`
    is the copy's absolute path; `stored_path` its path under the session's originals
    when that differs from the card path (a second content under one card path, or a
    case-insensitive disk)."""
    session_id: str
    volume_id: str
    rel_path: str
    size: int
    mtime_ns: int
    sha256: str
    kind: str
    group: str
    stored: Path
    stored_path: str | None = None


@dataclass(frozen=True)
class SessionRow:
    number: int
    id: str
    path: Path
    created_utc: str
    volume_id: str
    volume_label: str
    source: str
    state: str
    finished_utc: str | None
    process_error: str | None = None  # set aside: processing failed unexpectedly


@dataclass(frozen=True)
class CopyRow:
    sha256: str
    location: str  # LOCAL | ARCHIVE_DISK | BUCKET
    target: str  # absolute path, or "endpoint bucket key" for a bucket
    state: str  # COPY_VERIFIED | COPY_PRUNED
    size: int
    recorded_utc: str


@dataclass(frozen=True)
class SeenRow:
    size: int
    mtime_ns: int
    sha256: str
    kind: str


def _session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        number=row["number"], id=row["id"], path=Path(row["path"]),
        created_utc=row["created_utc"], volume_id=row["volume_id"],
        volume_label=row["volume_label"], source=row["source"], state=row["state"],
        finished_utc=row["finished_utc"], process_error=row["process_error"])
