"""Making new copies durable in batches, beside the thread that reads the card.

The card thread streams each new file into a temp file (hashing as it reads) and hands
it over here without waiting for the disk. This thread takes whatever has queued since
its last round (a batch: one file when the disk keeps up, dozens when it does not) and
for it, in this order:
1. writes the filesystem back once (syncfs), then fsyncs each temp file (cheap by then;
   it reports that file's own write errors);
2. re-reads each copy from the disk with its page cache dropped and compares hashes;
3. renames each verified copy into the session (`commit_new`: never over another file)
   and fsyncs each folder once;
4. hands the batch to `record` (the card phase's: one transaction, on this thread's own
   database connection), so a copy under its final name is unrecorded for milliseconds
   only, whatever the card thread is reading meanwhile.
The card thread then counts and announces what was recorded. A file's data is
durable before its name appears in the session, and its name before its record: a crash
anywhere leaves at most unrecorded copies, which the next run takes over (same content)
or clears (temp files). One journal commit per batch instead of three per file: on an
SD card that is the difference between ~0.5 ms and ~20 ms a file."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ghostroll import faults
from ghostroll.card.copier import (
    Copied,
    commit_new,
    flush_filesystem,
    fsync_dir,
    fsync_path,
    verify,
)
from ghostroll.card.scan import CardFile
from ghostroll.errors import DiskFullError, is_disk_full

log = logging.getLogger("ghostroll.ingest")

MAX_BATCH = 64  # files made durable together at most (bounds the wait for the first)
MAX_WAITING = 256  # unsealed temp files before the card thread waits for the disk


@dataclass(frozen=True)
class Handoff:
    """A complete temp copy of one card file, and the name it should have."""
    copied: Copied
    card_file: CardFile
    kind: str
    final: Path


@dataclass(frozen=True)
class Sealed:
    """A handoff made durable and verified (`stored`: where it landed), or why not."""
    handoff: Handoff
    stored: Path | None = None
    error: Exception | None = None


Record = Callable[[list["Sealed"]], list["Sealed"]]


class Sealer:
    """One background thread sealing handoffs in batches; results come back in order.
    `record` gets each sealed batch and returns it with what it could not record marked
    as failed."""

    def __init__(self, record: Record | None = None) -> None:
        self._record = record
        self._jobs: queue.Queue[Handoff | None] = queue.Queue(maxsize=MAX_WAITING)
        self._done: queue.Queue[Sealed] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ghostroll-seal", daemon=True)
        self._thread.start()

    def put(self, handoff: Handoff) -> None:
        self._jobs.put(handoff)

    def results(self) -> list[Sealed]:
        """Everything sealed so far, without waiting."""
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def finish(self) -> None:
        """Seal what was handed over, then stop."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        last = False
        while not last:
            batch, last = self._next_batch()
            if batch:
                for sealed in self._recorded(seal(batch)):
                    self._done.put(sealed)

    def _recorded(self, results: list[Sealed]) -> list[Sealed]:
        if self._record is None:
            return results
        try:
            return self._record(results)
        except Exception as exc:  # a bug: still each copy's failure, never a silent loss
            log.exception("unexpected failure recording a sealed batch")
            return unrecorded(results, exc)

    def _next_batch(self) -> tuple[list[Handoff], bool]:
        first = self._jobs.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False


def unrecorded(results: list[Sealed], error: Exception) -> list[Sealed]:
    """`results` with every sealed copy marked as failed by `error`: a batch whose record
    was refused stays unrecorded (the next run takes its copies over)."""
    return [Sealed(r.handoff, error=error) if r.stored is not None else r for r in results]


def seal(batch: list[Handoff]) -> list[Sealed]:
    """Steps 1-3 of the module's docstring for one batch. Never raises: a file's failure
    (or an unexpected one) is its result, with its temp file removed."""
    flush_filesystem(batch[0].copied.temp.parent)
    results = [_seal_one(handoff) for handoff in batch]
    failed_folders: dict[Path, Exception] = {}
    for folder in {r.stored.parent for r in results if r.stored is not None}:
        try:
            fsync_dir(folder)
        except OSError as exc:
            failed_folders[folder] = _disk_error(exc)
    # a name not yet durable is not recorded: the next run takes that copy over
    return [Sealed(r.handoff, error=failed_folders[r.stored.parent])
            if r.stored is not None and r.stored.parent in failed_folders else r
            for r in results]


def _seal_one(handoff: Handoff) -> Sealed:
    temp = handoff.copied.temp
    try:
        faults.fault("copy.fsync")
        fsync_path(temp)
        verify(temp, handoff.copied.sha256)
        return Sealed(handoff, stored=commit_new(temp, handoff.final, handoff.copied.sha256,
                                                 sync_dir=False))
    except OSError as exc:  # VerifyError included
        temp.unlink(missing_ok=True)
        return Sealed(handoff, error=_disk_error(exc))
    except Exception as exc:  # a bug must still be this file's failure, never a lost file
        temp.unlink(missing_ok=True)
        log.exception("unexpected failure sealing %s", handoff.card_file.rel_path)
        return Sealed(handoff, error=exc)


def _disk_error(exc: OSError) -> Exception:
    if is_disk_full(exc):
        return DiskFullError(f"the session disk is full ({exc.strerror or exc})")
    return exc
