"""The one sequence both `ghostroll run` and the appliance's `ghostroll work` follow:
stream (each recorded original derived, and its derivatives uploaded, while the card is
still read) → archive (the second copy before anything else) → process (every session
whose copy is complete, reusing what the stream made) → publish.

`run_card` does it in one process, beside the card phase. `run_announced` is the
appliance's half: the card worker copies, verifies and records, and announces each
recorded original on the work child's stdin; the stream starts on each as it arrives.
Both end in `finish`. What they tell the user goes through a `Reporter` (text lines for
the CLI, protocol messages for the service)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ghostroll.card.ingest import IngestResult, ProgressFn, Recorded, ingest_card
from ghostroll.card.volume import identify
from ghostroll.config import Config
from ghostroll.pipeline.early import EarlyLinks, OneClient
from ghostroll.pipeline.pending import Pending, pending
from ghostroll.storage.db import Database, SessionRow

if TYPE_CHECKING:
    from ghostroll.archive.receipt import ArchiveOutcome
    from ghostroll.pipeline.stream import Stream
    from ghostroll.process import ProcessResult, Ready
    from ghostroll.publish.publisher import DrainResult, PublishEvent


class Reporter(Protocol):
    def processing(self, session_id: str, done: int, total: int) -> None: ...

    def publishing(self, event: PublishEvent) -> None: ...

    def archived(self, session_ids: list[str]) -> None: ...


@dataclass
class Finished:
    processed: list[ProcessResult] = field(default_factory=list)
    publish: DrainResult | None = None  # None: nothing was published in this run
    archive: ArchiveOutcome | None = None  # only when a card phase ran


@dataclass
class Streamed:
    """What the stream leaves for processing and publishing: its derivatives (complete),
    and its uploads, which may still be going out while processing runs: `settle` waits
    for them (then `upload_failed` is complete)."""
    ready: Ready | None = None
    upload_failed: dict[str, str] = field(default_factory=dict)
    settle: Callable[[], None] = lambda: None

    @classmethod
    def of(cls, stream: Stream) -> Streamed:
        stream.derivations_done()
        return cls(stream.ready, stream.upload_failed, stream.close)


def run_card(path: Path, cfg: Config, reporter: Reporter, progress: ProgressFn, *,
             volume_id: str | None = None, label: str | None = None,
             publish: bool = True) -> tuple[IngestResult, Finished]:
    """The card phase with the stream beside it, then `finish`. When the card brings
    nothing new and nothing is pending, neither Pillow nor boto3 is imported."""
    volume = identify(path, volume_id, label)
    uploads = cfg.s3.enabled and publish
    client = OneClient(cfg)
    stream = StreamStarter(cfg, client if uploads else None)

    with Database(cfg.storage.db_path) as db:
        links = EarlyLinks(cfg, client) if uploads else None

        def session_started(session: SessionRow) -> None:
            stream.start()  # the first new original was read: it will need the stream
            if links is not None:
                links(session)

        try:
            ingest = ingest_card(path, cfg, db, volume, progress=progress,
                                 on_session=session_started,
                                 on_recorded=lambda rec: stream.get().recorded(rec))
        except BaseException:
            stream.close()
            raise
        finally:
            if links is not None:
                links.wait()  # the copy is over: waiting costs it nothing
        try:
            done = finish(cfg, db, reporter, pending(db, cfg), stream.streamed(),
                          client if uploads else None, ingest)
        finally:
            stream.close()
    return ingest, done


class StreamStarter:
    """The stream of `run_card`, built on a thread of its own once the card brings
    something new (importing Pillow and boto3, starting the derive pool and the upload
    child cost ~0.2 s that the first copy need not wait for); never built otherwise."""

    def __init__(self, cfg: Config, client: Callable[[], Any] | None) -> None:
        self.cfg, self.client = cfg, client
        self.thread: threading.Thread | None = None
        self.stream: Stream | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._build, name="ghostroll-stream-start",
                                           daemon=True)
            self.thread.start()

    def _build(self) -> None:
        try:
            from ghostroll.pipeline.stream import Stream
            self.stream = Stream(self.cfg, self.client() if self.client else None)
        except BaseException as exc:  # raised where the stream is used: the card phase
            self.error = exc

    def get(self) -> Stream:
        self.start()
        assert self.thread is not None
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.stream is not None
        return self.stream

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.stream is not None:
            self.stream.close()

    def streamed(self) -> Streamed:
        if self.thread is not None:
            self.thread.join()
        return Streamed() if self.stream is None else Streamed.of(self.stream)


def run_announced(cfg: Config, db: Database, reporter: Reporter,
                  announced: BinaryIO | None, client: Any | None) -> Finished:
    """The work child: stream what the card worker announces until its input ends (the
    copy is over), then `finish` everything pending, announced or left from before."""
    streamed = (stream_announced(cfg, db, announced, client) if announced is not None
                else Streamed())
    return finish(cfg, db, reporter, Pending(process=True, publish=True), streamed,
                  (lambda: client) if client is not None else None, None)


def finish(cfg: Config, db: Database, reporter: Reporter, todo: Pending, streamed: Streamed,
           client: Callable[[], Any] | None, ingest: IngestResult | None) -> Finished:
    """Archive → process → publish. `client` None: nothing is published in this run;
    `ingest`: the card phase this follows (its archive receipt is part of the result)."""
    done = Finished()
    try:
        if cfg.archive.archive_dir is not None:  # the second copy before anything else,
            streamed.settle()  # the stream's last uploads included
            if ingest is not None:
                from ghostroll.archive.receipt import archive_after_card
                done.archive = archive_after_card(cfg, db, ingest)
            else:
                _archive(cfg, db, reporter)
        if todo.process:  # (while the stream's last uploads go out)
            from ghostroll.process import process_pending
            done.processed = process_pending(cfg, db, reporter.processing, streamed.ready)
    finally:
        streamed.settle()
    if client is not None and todo.publish:
        from ghostroll.publish.publisher import drain

        done.publish = drain(cfg, db, client(), reporter.publishing,
                             failed_before=streamed.upload_failed)
        if ingest is not None:
            from ghostroll.archive.receipt import after_publish
            done.archive = after_publish(cfg, db, ingest, done.archive)
        elif cfg.s3.upload_originals:  # the bucket target
            from ghostroll.archive.bucket import record_bucket_copies
            record_bucket_copies(cfg, db)
    if ingest is None and cfg.archive.archive_dir is not None:
        from ghostroll.archive.prune import prune
        prune(cfg, db)  # after publishing: a session just published may go in this run
    return done


def _archive(cfg: Config, db: Database, reporter: Reporter) -> None:
    """The second copy first; a missing or full archive disk never stops the rest. The
    sessions it completes are told at once (the receipt turns to "2 copies")."""
    from ghostroll.archive.disk import archive_pending
    from ghostroll.errors import ArchiveError

    assert cfg.archive.archive_dir is not None
    try:
        result = archive_pending(db, cfg.archive.archive_dir, cfg.storage.base_dir)
    except ArchiveError as exc:
        logging.getLogger("ghostroll.archive").warning("archive: %s", exc)
        return
    if result.sessions_done:
        reporter.archived(result.sessions_done)


def stream_announced(cfg: Config, db: Database, announced: BinaryIO,
                     client: Any | None) -> Streamed:
    """Derive (and upload) each announced original until the input ends. Each is checked
    against the database first: only a recorded, verified copy is ever used."""
    from ghostroll.appliance import protocol as p
    from ghostroll.pipeline.stream import Stream
    from ghostroll.storage import db as dbm

    sessions: dict[str, SessionRow | None] = {}
    stream = Stream(cfg, client)
    try:
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
            stream.recorded(Recorded.from_message(session, message))
    except BaseException:
        stream.close()
        raise
    return Streamed.of(stream)  # its last uploads go on while processing runs
