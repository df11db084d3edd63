"""What the idle screen says about the past: uploads still queued, the last session, and
a session set aside (its processing failed: the panel says what to do).

The database is read by the service only while the idle screen shows, at most once per
`REFRESH_S` and afresh each time the panel comes back to idle."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from ghostroll.archive.layout import waiting_for_second_copy
from ghostroll.commands.verify import idle_line, last_result_path
from ghostroll.publish.lifetime import panel_status
from ghostroll.publish.publisher import read_link
from ghostroll.storage.db import COPYING, PUBLISHED, VERIFIED, Database
from ghostroll.storage.session import SessionLayout

REFRESH_S = 30.0


@dataclass(frozen=True)
class IdleFacts:
    queued: int = 0  # sessions waiting to be published
    last_session: str = ""  # "24 Nov 10:42 · 412 new"
    problem: str = ""  # "#3 not processed: ssh in, ghostroll sessions"
    second_copy_waiting: int = 0  # archive configured: sessions without their 2nd copy
    stored_bytes: int = 0  # the originals of all `sessions`, for "space for ~N sessions"
    sessions: int = 0


def last_session_text(created_utc: str, new_shots: int) -> str:
    when = datetime.fromisoformat(created_utc).astimezone()
    return f"{when:%-d %b %H:%M} · {new_shots:,} new"


def with_verify_result(facts: IdleFacts, db_path: Path) -> IdleFacts:
    """Add what the last whole-device `ghostroll verify` found (the boot check runs it:
    "verify: 2 problems · ssh: ghostroll verify"), unless a problem is shown already."""
    if facts.problem:
        return facts
    try:
        result = json.loads(last_result_path(db_path).read_text(encoding="utf-8"))
        return replace(facts, problem=idle_line(result))
    except (OSError, ValueError, AttributeError):
        return facts


def read_idle_facts(db_path: Path, archive: bool = False) -> IdleFacts:
    """From the database; a device that never saw a card has none yet (not created here).
    With an archive target, also how many sessions still wait for their second copy."""
    if not db_path.exists():
        return IdleFacts()
    with Database(db_path) as db:
        queued = len(db.queued_sessions())
        sessions = db.sessions()
        if not sessions:
            return IdleFacts(queued)
        problem = problem_text([s.number for s in sessions if s.process_error])
        shared = [s for s in sessions if s.state == PUBLISHED]
        if not problem and shared:
            problem = last_link_text(SessionLayout(shared[-1].path), datetime.now(UTC))
        last = sessions[-1]
        shots = {row["grp"] for row in db.session_files(last.id) if row["status"] == VERIFIED}
        waiting = waiting_for_second_copy(db.session_copies(s.id) for s in sessions
                                          if s.state != COPYING) if archive else 0
        stored = db.content_bytes()
    return IdleFacts(queued, last_session_text(last.created_utc, len(shots)), problem,
                     waiting, stored, len(sessions))


def last_link_text(layout: SessionLayout, now: datetime) -> str:
    """"link dead until online" / "last link expired" for the last published session."""
    link = read_link(layout)
    return panel_status(link, now) if link is not None else ""


def problem_text(numbers: list[int]) -> str:
    """The panel's line for sessions set aside: which, and where to look."""
    if not numbers:
        return ""
    which = f"#{numbers[0]}" if len(numbers) == 1 else f"{len(numbers)} sessions"
    return f"{which} not processed: ssh in, ghostroll sessions"
