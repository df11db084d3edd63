"""What a run still has to do after its card phase, answered from the database and the
sessions' link files alone, so the nothing-new path imports neither Pillow nor boto3."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ghostroll.config import Config
from ghostroll.publish.linkfile import due_for_resign
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database


@dataclass(frozen=True)
class Pending:
    process: bool  # a complete session not yet processed (and not set aside)
    publish: bool  # a processed session not yet published, queued again, or a link to re-sign


def pending(db: Database, cfg: Config, now: datetime | None = None) -> Pending:
    sessions = db.sessions()
    process = any(s.state == dbm.COPIED and not s.process_error for s in sessions)
    publish = process or bool(db.queued_sessions()) or any(
        s.state == dbm.PROCESSED for s in sessions) or bool(due_for_resign(
        sessions, cfg.s3.presign_expiry_seconds, now or datetime.now(UTC)))
    return Pending(process, publish)
