"""`ghostroll work --events`: the service's background job in a child process, so a
crash in image decoding can never take the panel down. Processes every complete
session, then drains the publish queue, printing one `protocol` message per line (the
messages the service's machine consumes): `work_progress` (processing, publishing),
`link`, `work_done` (url empty: no bucket configured), `work_waiting` (offline, clock,
processing stopped by a full disk), `work_failed`.

With `--link SESSION` it only signs that session's share link (a local operation)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

from ghostroll.appliance import protocol as p
from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode
from ghostroll.storage.db import Database

if TYPE_CHECKING:
    from ghostroll.publish.publisher import PublishEvent


def _emit(out: TextIO, message: p.Message) -> None:
    out.write(message.to_json() + "\n")
    out.flush()


def run_work(cfg: Config, out: TextIO = sys.stdout, link_only: str | None = None) -> int:
    """Exit 3 when something waits (offline, or processing stopped by a full disk): the
    service runs it again later. A session set aside is skipped; the others go on."""
    from ghostroll.process import process_pending

    with Database(cfg.storage.db_path) as db:
        if link_only:
            return _link(cfg, db, link_only, out)
        if cfg.archive.archive_dir is not None:
            _archive(cfg, db)
        results = process_pending(cfg, db, lambda sid, d, t: _emit(
            out, p.WorkProgress("processing", d, t, sid)))
        stopped = next((r.stopped for r in results if r.stopped), None)
        if not cfg.s3.enabled:
            for result in results:
                if not (result.stopped or result.set_aside):
                    _emit(out, p.WorkDone(photos=result.made, session_id=result.session_id))
        code = _publish(cfg, db, out) if cfg.s3.enabled else 0
        if cfg.s3.enabled and cfg.s3.upload_originals:  # the bucket target
            from ghostroll.archive.bucket import record_bucket_copies
            record_bucket_copies(cfg, db)
        if stopped:
            _emit(out, p.WorkWaiting(stopped))
            return ExitCode.QUEUED
        return code


def _archive(cfg: Config, db: Database) -> None:
    """The second copy first; a missing or full archive disk never stops the rest."""
    from ghostroll.archive.disk import archive_pending
    from ghostroll.archive.prune import prune
    from ghostroll.errors import ArchiveError

    assert cfg.archive.archive_dir is not None
    try:
        archive_pending(db, cfg.archive.archive_dir, cfg.storage.base_dir)
    except ArchiveError as exc:
        logging.getLogger("ghostroll.archive").warning("archive: %s", exc)
    prune(cfg, db)


def _link(cfg: Config, db: Database, session_id: str, out: TextIO) -> int:
    from ghostroll.job import early_link
    from ghostroll.publish.publisher import load_link
    from ghostroll.storage.session import SessionLayout

    session = db.session(session_id)
    if session is None or not cfg.s3.enabled:
        return ExitCode.OK
    early_link(cfg, db, session_id)
    link = load_link(SessionLayout(session.path), cfg.s3.presign_expiry_seconds)
    if link is not None:
        _emit(out, p.LinkReady(link.url, link.expires.isoformat(), session_id))
    return ExitCode.OK


def _publish(cfg: Config, db: Database, out: TextIO) -> int:
    from ghostroll.publish.publisher import drain
    from ghostroll.publish.s3client import make_client

    def report(e: PublishEvent) -> None:
        for message in publish_messages(e):
            _emit(out, message)

    result = drain(cfg, db, make_client(cfg.s3), report)
    if result.waiting:
        _emit(out, p.WorkWaiting(result.waiting))
        return ExitCode.QUEUED
    return ExitCode.PARTIAL if result.failed else ExitCode.OK


def publish_messages(e: PublishEvent) -> list[p.Message]:
    """What one publishing event tells the service (pure)."""
    out: list[p.Message] = []
    expires = e.link.expires.isoformat() if e.link is not None else None
    if e.link is not None:
        out.append(p.LinkReady(e.link.url, expires, e.session_id))
    if e.stage == "uploading":
        out.append(p.WorkProgress("publishing", e.done, e.total, e.session_id))
    elif e.stage == "done":
        out.append(p.WorkDone(e.total, e.link.url if e.link else None, expires, e.session_id))
    elif e.stage == "waiting":
        out.append(p.WorkWaiting(e.message))
    elif e.stage == "failed":
        out.append(p.WorkFailed(e.message))
    return out
