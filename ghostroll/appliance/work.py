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
stream made. The sequence itself is `pipeline/flow.py`'s, shared with `ghostroll run`;
this module turns it into messages and an exit code."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO, TextIO

from ghostroll.appliance import protocol as p
from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode
from ghostroll.pipeline import flow
from ghostroll.storage.db import Database

if TYPE_CHECKING:
    from ghostroll.publish.publisher import PublishEvent


def _emit(out: TextIO, message: p.Message) -> None:
    out.write(message.to_json() + "\n")
    out.flush()


class Messages:
    """The pipeline's progress as protocol messages, one per line on `out`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def send(self, message: p.Message) -> None:
        _emit(self.out, message)

    def processing(self, session_id: str, done: int, total: int) -> None:
        _emit(self.out, p.WorkProgress("processing", done, total, session_id))

    def publishing(self, event: PublishEvent) -> None:
        for message in publish_messages(event):
            _emit(self.out, message)

    def archived(self, session_ids: list[str]) -> None:
        _emit(self.out, p.ArchiveDone(session_ids=session_ids))


def run_work(cfg: Config, out: TextIO = sys.stdout, link_only: str | None = None,
             announced: BinaryIO | None = None) -> int:
    """Exit 3 when something waits (offline, or processing stopped by a full disk): the
    service runs it again later. A session set aside is skipped; the others go on.
    `announced`: the stream of recorded originals to derive and upload first."""
    with Database(cfg.storage.db_path) as db:
        if link_only:
            return _link(cfg, db, link_only, out)
        client = None
        if cfg.s3.enabled:  # one S3 client for the stream and publishing
            from ghostroll.publish.s3client import make_client
            client = make_client(cfg.s3)
        done = flow.run_announced(cfg, db, Messages(out), announced, client)
    stopped = next((r.stopped for r in done.processed if r.stopped), None)
    for message in finished_messages(cfg, done):
        _emit(out, message)
    code = ExitCode.OK
    if done.publish is not None and done.publish.waiting:
        _emit(out, p.WorkWaiting(done.publish.waiting))
        code = ExitCode.QUEUED
    elif done.publish is not None and done.publish.failed:
        code = ExitCode.PARTIAL
    if stopped:
        _emit(out, p.WorkWaiting(stopped))
        return ExitCode.QUEUED
    return code


def finished_messages(cfg: Config, done: flow.Finished) -> list[p.Message]:
    """Without a bucket a processed session is done when its gallery is made (with one,
    publishing says `work_done`)."""
    if cfg.s3.enabled:
        return []
    return [p.WorkDone(photos=r.made, session_id=r.session_id) for r in done.processed
            if not (r.stopped or r.set_aside)]


def _link(cfg: Config, db: Database, session_id: str, out: TextIO) -> int:
    from ghostroll.pipeline.early import early_link
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
