"""`ghostroll work --events`: the service's background job in a child process, so a
crash in image decoding can never take the panel down. Processes every complete
session, then drains the publish queue, printing one `protocol` message per line (the
messages the service's machine consumes): `work_progress` (processing, publishing),
`link`, `work_done` (url empty: no bucket configured), `work_waiting` (offline, clock,
processing stopped by a full disk), `work_failed`.

With `--link SESSION` it only signs that session's share link (a local operation).
With `--stream` it first reads the originals the card worker announced (`protocol.Recorded`
lines after the config overrides, passed on by the service's `feed.py`) from stdin and
derives and uploads each at once (`pipeline/stream.py`), printing nothing; at the end of
stdin (the copy is over) it archives, processes and publishes as above, reusing what the
stream made."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from ghostroll.appliance import protocol as p
from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode
from ghostroll.storage.db import Database, SessionRow

if TYPE_CHECKING:
    from ghostroll.process import Ready
    from ghostroll.publish.publisher import PublishEvent


def _emit(out: TextIO, message: p.Message) -> None:
    out.write(message.to_json() + "\n")
    out.flush()


def run_work(cfg: Config, out: TextIO = sys.stdout, link_only: str | None = None,
             announced: BinaryIO | None = None) -> int:
    """Exit 3 when something waits (offline, or processing stopped by a full disk): the
    service runs it again later. A session set aside is skipped; the others go on.
    `announced`: the stream of recorded originals to derive and upload first."""
    from ghostroll.process import process_pending

    with Database(cfg.storage.db_path) as db:
        if link_only:
            return _link(cfg, db, link_only, out)
        client = None
        if cfg.s3.enabled:  # one S3 client for the stream and publishing
            from ghostroll.publish.s3client import make_client
            client = make_client(cfg.s3)
        ready, failed = (_stream(cfg, db, announced, client) if announced is not None
                         else (None, {}))
        if cfg.archive.archive_dir is not None:
            _archive(cfg, db, out)
        results = process_pending(cfg, db, lambda sid, d, t: _emit(
            out, p.WorkProgress("processing", d, t, sid)), ready)
        stopped = next((r.stopped for r in results if r.stopped), None)
        if not cfg.s3.enabled:
            for result in results:
                if not (result.stopped or result.set_aside):
                    _emit(out, p.WorkDone(photos=result.made, session_id=result.session_id))
        code = _publish(cfg, db, out, failed, client) if client is not None else ExitCode.OK
        if cfg.s3.enabled and cfg.s3.upload_originals:  # the bucket target
            from ghostroll.archive.bucket import record_bucket_copies
            record_bucket_copies(cfg, db)
        if cfg.archive.archive_dir is not None:  # sessions just published may go now
            from ghostroll.archive.prune import prune
            prune(cfg, db)
        if stopped:
            _emit(out, p.WorkWaiting(stopped))
            return ExitCode.QUEUED
        return code


def _archive(cfg: Config, db: Database, out: TextIO) -> None:
    """The second copy first; a missing or full archive disk never stops the rest. The
    sessions it completes are announced at once (the receipt turns to "2 copies")."""
    from ghostroll.archive.disk import archive_pending
    from ghostroll.errors import ArchiveError

    assert cfg.archive.archive_dir is not None
    try:
        result = archive_pending(db, cfg.archive.archive_dir, cfg.storage.base_dir)
    except ArchiveError as exc:
        logging.getLogger("ghostroll.archive").warning("archive: %s", exc)
        return
    if result.sessions_done:
        _emit(out, p.ArchiveDone(session_ids=result.sessions_done))


def _stream(cfg: Config, db: Database, announced: BinaryIO,
            client: Any | None) -> tuple[Ready, dict[str, str]]:
    """Derive (and upload) each announced original until the input ends. Each is checked
    against the database first: only a recorded, verified copy is ever used."""
    from ghostroll.card.ingest import Recorded
    from ghostroll.pipeline.stream import Stream
    from ghostroll.storage import db as dbm

    sessions: dict[str, SessionRow | None] = {}
    with Stream(cfg, client) as stream:
        for line in announced:
            try:
                message = p.decode(line)
            except p.ProtocolError:
                continue
            if not isinstance(message, p.Recorded):
                continue
            if message.session_id not in sessions:
                sessions[message.session_id] = db.session(message.session_id)
            session = sessions[message.session_id]
            row = db.session_file(message.session_id, message.rel_path) if session else None
            if session is None or row is None or row["status"] != dbm.VERIFIED \
                    or row["sha256"] != message.sha256:
                continue
            stream.recorded(Recorded(session, message.rel_path, Path(message.stored),
                                     message.kind, message.group, message.sha256,
                                     message.size))
    return stream.ready, stream.upload_failed


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


def _publish(cfg: Config, db: Database, out: TextIO, failed_before: dict[str, str],
             client: Any) -> int:
    from ghostroll.publish.publisher import drain

    def report(e: PublishEvent) -> None:
        for message in publish_messages(e):
            _emit(out, message)

    result = drain(cfg, db, client, report, failed_before=failed_before)
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
