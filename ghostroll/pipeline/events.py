"""The card phase told in the protocol's own messages: the card worker sends them to the
service, `ghostroll run --events` prints them (one JSON line each), so a script reads
exactly what the appliance consumes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from ghostroll.appliance import protocol as p
from ghostroll.card.ingest import IngestResult

PROGRESS_EVERY_S = 0.5  # copying progress at most this often; phase changes always


class ThrottledProgress:
    """Passes the card phase's progress on to `send`, with the session id once known."""

    def __init__(self, send: Callable[[p.Message], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send, self.clock = send, clock
        self.last = 0.0
        self.session_id: str | None = None

    def __call__(self, progress: p.Progress) -> None:
        now = self.clock()
        if (now - self.last < PROGRESS_EVERY_S and progress.phase == "copying"
                and progress.files_read < progress.files_to_read):
            return
        self.last = now
        self.send(replace(progress, elapsed_s=round(progress.elapsed_s, 3),
                          session_id=self.session_id))


def card_outcome(result: IngestResult) -> p.Message:
    """How the card phase ended: `done`, or `failed` with its reason."""
    session_id = result.session.id if result.session else None
    if result.card_error:
        return p.Failed(reason="card_removed", message=result.card_error, session_id=session_id)
    if result.disk_full:
        return p.Failed(reason="disk_full", message=result.disk_full, session_id=session_id)
    if result.cancelled:
        return p.Failed(reason="cancelled", message="cancelled: verified files are kept",
                        session_id=session_id)
    return p.Done(session_id=session_id, new=result.new, skipped=result.skipped,
                  failed=result.failed, bytes_new=result.bytes_new,
                  seconds=round(result.seconds, 3), errors=result.errors[:20])
