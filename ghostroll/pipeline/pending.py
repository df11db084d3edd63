"""What a run still has to do after its card phase, answered from the database alone,
so the nothing-new path imports neither Pillow nor boto3."""

from __future__ import annotations

from dataclasses import dataclass

from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database


@dataclass(frozen=True)
class Pending:
    process: bool  # a complete session not yet processed (and not set aside)
    publish: bool  # a processed session not yet published, or one queued again


def pending(db: Database) -> Pending:
    sessions = db.sessions()
    process = any(s.state == dbm.COPIED and not s.process_error for s in sessions)
    publish = process or bool(db.queued_sessions()) or any(
        s.state == dbm.PROCESSED for s in sessions)
    return Pending(process, publish)
