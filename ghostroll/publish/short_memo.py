"""Whether a bucket serves short links (`short_links = "auto"`), remembered next to the
database in `<db>.short-links` so a link made during the copy needs no round trip.

An answer is a fact with a date, not forever: "no policy" is asked again after an hour
(the user may be applying it right now), "policy present" after a day. `ghostroll
doctor` and `ghostroll setup` write the answer they just read, so a run after them
uses it at once."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ghostroll.config import S3Config
from ghostroll.storage.session import write_text_atomic

TTL = {True: timedelta(days=1), False: timedelta(hours=1)}


def memo_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".short-links")


def memo_key(s3: S3Config) -> str:
    return f"{s3.s3_endpoint_url}|{s3.s3_bucket}"


def fresh_answer(entry: Any, now: datetime) -> bool | None:
    """The remembered answer while it is fresh (pure); None: ask the bucket. Entries of
    the old format (a bare true/false, kept forever) count as stale."""
    if not isinstance(entry, dict) or not isinstance(entry.get("answer"), bool):
        return None
    try:
        checked = datetime.fromisoformat(entry["checked"])
    except (KeyError, TypeError, ValueError):
        return None
    if checked.tzinfo is None or not timedelta(0) <= now - checked < TTL[entry["answer"]]:
        return None
    return entry["answer"]


def _read(path: Path) -> dict[str, Any]:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def recall(db_path: Path, s3: S3Config, now: datetime) -> bool | None:
    return fresh_answer(_read(memo_path(db_path)).get(memo_key(s3)), now)


def remember(db_path: Path, s3: S3Config, answer: bool, now: datetime) -> None:
    """Record an answer just read from the bucket (best effort: a read-only or missing
    state directory only means the next run asks again)."""
    path = memo_path(db_path)
    known = _read(path)
    known[memo_key(s3)] = {"answer": answer, "checked": now.isoformat()}
    with contextlib.suppress(OSError):
        write_text_atomic(path, json.dumps(known) + "\n")
