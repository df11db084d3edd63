"""What a run still has to do after its card phase, answered from the database and the
sessions' link files alone, so the nothing-new path imports neither Pillow nor boto3."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ghostroll.config import Config
from ghostroll.publish.lifetime import resign_due
from ghostroll.publish.linkfile import read_link
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database
from ghostroll.storage.session import SessionLayout


@dataclass(frozen=True)
class Pending:
    process: bool  # a complete session not yet processed (and not set aside)
    publish: bool  # a processed session not yet published, queued again, or a link to re-sign


def pending(db: Database, cfg: Config, now: datetime | None = None) -> Pending:
    sessions = db.sessions()
    process = any(s.state == dbm.COPIED and not s.process_error for s in sessions)
    publish = process or bool(db.queued_sessions()) or any(
        s.state == dbm.PROCESSED for s in sessions) or _resign_due(cfg, sessions, now)
    return Pending(process, publish)


def _resign_due(cfg: Config, sessions: list[dbm.SessionRow], now: datetime | None) -> bool:
    """A published session's short link whose signature runs out soon (`drain` re-signs)."""
    now = now or datetime.now(UTC)
    for session in sessions:
        if session.state != dbm.PUBLISHED:
            continue
        link = read_link(SessionLayout(session.path))
        if link is not None and resign_due(link, cfg.s3.presign_expiry_seconds, now):
            return True
    return False
