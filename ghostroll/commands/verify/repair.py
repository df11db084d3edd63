"""`--repair`: redo what can be redone (derivatives, uploads); never deletes a copy."""


from __future__ import annotations

from collections import defaultdict

from ghostroll.commands.verify.model import (
    DERIVED_MISSING,
    GALLERY_MISSING,
    OBJECT_MISSING,
    OBJECT_SIZE,
    STALE_TEMP,
    Report,
)
from ghostroll.config import Config
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database


def repair_what_can_be_redone(cfg: Config, db: Database, report: Report) -> list[str]:
    """Only what GhostRoll can make again from what it holds: stale temp files removed
    (never a living run's), sessions with missing share images set back to be processed,
    objects missing from the bucket forgotten by the upload ledger so the next publish
    sends them. Originals are never touched: a lost one needs a backup or its card."""
    from ghostroll.storage.incoming import clear_stale

    done: list[str] = []
    kinds = {p.kind for p in report.problems}
    if STALE_TEMP in kinds:
        done.append(f"removed {clear_stale(cfg.storage.base_dir)} stale temp file(s)")
    remake = sorted({p.session for p in report.problems
                     if p.kind in (DERIVED_MISSING, GALLERY_MISSING) and p.session})
    for sid in remake:
        queued = db.publish_entry(sid) is not None
        db.set_session_state(sid, dbm.COPIED)
        if queued:
            db.enqueue_publish(sid)
        done.append(f"{sid}: will be processed again{' and published' if queued else ''} "
                    "by `ghostroll work` (the appliance runs it by itself)")
    resend: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in report.problems:
        if p.kind in (OBJECT_MISSING, OBJECT_SIZE) and p.session and p.path:
            bucket, _, key = p.path.removeprefix("s3://").partition("/")
            resend[(p.session, bucket)].add(key)
    for (sid, bucket), keys in sorted(resend.items()):
        db.upload_ledger(cfg.s3.endpoint_id, bucket).forget(keys)
        db.enqueue_publish(sid)
        done.append(f"{sid}: {len(keys)} object(s) will be uploaded again by "
                    "`ghostroll publish`")
    return done
