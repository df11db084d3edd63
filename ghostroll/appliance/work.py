"""`ghostroll work --events`: the service's background job in a child process, so a
crash in image decoding can never take the panel down. Processes every complete
session, then drains the publish queue, printing one JSON object per line:

    {"stage": "processing", "done": 3, "total": 40, "session_id": "..."}
    {"stage": "link", "url": "...", "expires": "2026-12-01T10:52:00+00:00", "session_id": ...}
    {"stage": "uploading", "done": 12, "total": 40, "session_id": "..."}
    {"stage": "done", "url": "...", "photos": 40, "session_id": "..."}
    {"stage": "waiting", "reason": "offline: ..."}   (also: processing stopped, disk full)
    {"stage": "failed", "message": "..."}
    {"stage": "local", "photos": 40, "session_id": "..."}   (no bucket configured)

With `--link SESSION` it only signs that session's share link (a local operation).
With `--stream` it first reads the originals the card worker announced (`protocol.Recorded`
lines, passed on by the service's `feed.py`) from stdin and derives and uploads each at
once (`pipeline/stream.py`), printing nothing; at the end of stdin (the copy is over) it
processes and publishes as above, reusing what it made."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from ghostroll.config import Config
from ghostroll.storage.db import Database, SessionRow

if TYPE_CHECKING:
    from ghostroll.process import Ready


def _emit(out: TextIO, **fields: object) -> None:
    out.write(json.dumps(fields, default=str) + "\n")
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
        results = process_pending(cfg, db, lambda sid, d, t: _emit(
            out, stage="processing", done=d, total=t, session_id=sid), ready)
        stopped = next((r.stopped for r in results if r.stopped), None)
        if not cfg.s3.enabled:
            for result in results:
                if not (result.stopped or result.set_aside):
                    _emit(out, stage="local", photos=result.made, session_id=result.session_id)
        code = _publish(cfg, db, out, failed, client) if client is not None else 0
        if stopped:
            _emit(out, stage="waiting", reason=stopped)
            return 3
        return code


def _stream(cfg: Config, db: Database, announced: BinaryIO,
            client: Any | None) -> tuple[Ready, dict[str, str]]:
    """Derive (and upload) each announced original until the input ends. Each is checked
    against the database first: only a recorded, verified copy is ever used."""
    from ghostroll.appliance import protocol as p
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
        return 0
    early_link(cfg, db, session_id)
    link = load_link(SessionLayout(session.path), cfg.s3.presign_expiry_seconds)
    if link is not None:
        _emit(out, stage="link", url=link.url, expires=link.expires.isoformat(),
              session_id=session_id)
    return 0


def _publish(cfg: Config, db: Database, out: TextIO, failed_before: dict[str, str],
             client: Any) -> int:
    from ghostroll.publish.publisher import PublishEvent, drain

    def report(e: PublishEvent) -> None:
        fields: dict[str, object] = {"stage": e.stage, "session_id": e.session_id,
                                     "done": e.done, "total": e.total}
        if e.link is not None:
            fields.update(url=e.link.url, expires=e.link.expires.isoformat())
        if e.stage == "done":
            fields["photos"] = e.total
        if e.message:
            fields["reason" if e.stage == "waiting" else "message"] = e.message
        _emit(out, **fields)

    result = drain(cfg, db, client, report, failed_before=failed_before)
    if result.waiting:
        _emit(out, stage="waiting", reason=result.waiting)
        return 3
    return 1 if result.failed else 0
