"""The card phase: list the card, copy what is new once, verify it, remember it.

Order of durability for every new file (the crash-safety argument):
1. stream card → `<base>/.incoming/<random>.part`, hashing;
2. if the content is already known: delete the temp file, remember the card path;
3. else hand it to the sealer thread (`sealer.py`), which makes it durable, re-reads it
   from disk and compares hashes, then renames it into `<session>/originals/...` and
   fsyncs the folder (in batches, while this thread reads the next files);
4. only then, on the sealer thread and its own connection, one SQLite transaction
   records the content, the card path and the session entry of every file of the batch;
   this thread counts and announces them. A crash before 4 leaves at most unrecorded
   copies: temp files are cleared, a copy under its final name is taken over by the next
   run (same content) and never replaced.

A session is created only when the first new content or failure appears, and an
unfinished session of the same card is resumed rather than a new one started."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ghostroll.appliance.protocol import Progress
from ghostroll.appliance.protocol import Recorded as RecordedMessage
from ghostroll.card.copier import ByteCounter, Copied, copy_to_temp
from ghostroll.card.media import classify
from ghostroll.card.plan import plan_card
from ghostroll.card.scan import CardFile, CardListing, scan_card
from ghostroll.card.sealer import Handoff, Sealed, Sealer, unrecorded
from ghostroll.card.volume import Volume
from ghostroll.config import Config
from ghostroll.errors import (
    CardRemovedError,
    DatabaseError,
    DiskFullError,
    FileChangedError,
    VerifyError,
)
from ghostroll.logs import session_log_handler
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.incoming import IncomingDir, card_lock, clear_stale
from ghostroll.storage.session import SessionLayout, new_session_id, write_json_atomic

log = logging.getLogger("ghostroll.ingest")


@dataclass(frozen=True)
class Recorded:
    """One original verified and recorded: from here on it may be derived and shared."""
    session: SessionRow
    rel_path: str  # on the card
    stored: Path  # the verified copy
    kind: str
    group: str
    sha256: str
    size: int
    # card bytes not copied yet: what the card phase still needs on the session disk,
    # which whatever starts on this original must leave free
    card_bytes_left: int = 0

    def message(self) -> RecordedMessage:
        """As the card worker announces it to the service's work child."""
        return RecordedMessage(
            session_id=self.session.id, rel_path=self.rel_path, stored=str(self.stored),
            kind=self.kind, group=self.group, sha256=self.sha256, size=self.size,
            card_bytes_left=self.card_bytes_left)

    @classmethod
    def from_message(cls, session: SessionRow, m: RecordedMessage) -> Recorded:
        return cls(session, m.rel_path, Path(m.stored), m.kind, m.group, m.sha256, m.size,
                   m.card_bytes_left)


@dataclass
class IngestResult:
    volume: Volume
    session: SessionRow | None = None
    discovered: int = 0
    new: int = 0
    duplicates: int = 0
    known: int = 0
    failed: int = 0
    junk: int = 0
    bytes_new: int = 0
    card_bytes_read: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    card_error: str | None = None  # the card phase stopped early (pulled card, I/O error)
    disk_full: str | None = None
    cancelled: bool = False

    @property
    def skipped(self) -> int:
        return self.duplicates + self.known

    @property
    def complete(self) -> bool:
        return not (self.card_error or self.disk_full or self.cancelled)


# the card socket's progress message is also what `ghostroll run` draws its bar from
ProgressFn = Callable[[Progress], None]


class CardIngest:
    """One run of the card phase over a mounted card (or folder)."""

    def __init__(self, root: Path, config: Config, db: Database, volume: Volume,
                 progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None,
                 on_session: Callable[[SessionRow], None] | None = None,
                 stop: threading.Event | None = None,
                 on_recorded: Callable[[Recorded], None] | None = None) -> None:
        self.root = root
        self.config = config
        self.db = db
        self.volume = volume
        self.progress_fn = progress
        self.cancel = cancel or threading.Event()
        # Set together with `cancel` when the system stops the copy (the card's device
        # went away, shutdown): the session stays open and resumes on the next insert.
        self.stop = stop or threading.Event()
        self.base = config.storage.base_dir
        self.counter = ByteCounter()
        self.result = IngestResult(volume=volume)
        self.layout: SessionLayout | None = None
        self._early_duplicates: list[tuple[str, int, str, str, str]] = []
        self.pending_hashes: set[str] = set()  # handed to the sealer, not recorded yet
        self.waiting_duplicates: dict[str, list[tuple[CardFile, str]]] = {}
        self.state = Progress(phase="scanning")
        self.started = time.monotonic()
        self._log_handler: logging.Handler | None = None
        self.on_session = on_session
        self.on_recorded = on_recorded
        self._spelling: dict[Path, Path] = {}  # folder under originals -> as on disk
        self._sealer_db: Database | None = None  # the sealer thread's own connection

    # ------------------------------------------------------------ public

    def run(self) -> IngestResult:
        self.base.mkdir(parents=True, exist_ok=True)
        try:
            with card_lock(self.base, self.volume.id):
                self._run()
        finally:
            self.result.seconds = time.monotonic() - self.started
            self.result.card_bytes_read = self.counter.card_bytes
            self._emit(phase="done")
            if self._log_handler is not None:
                log.removeHandler(self._log_handler)
                self._log_handler.close()
        return self.result

    # ------------------------------------------------------------ steps

    def _run(self) -> None:
        self._emit()
        listing = scan_card(self.root)
        self.result.discovered = len(listing.files)
        self.result.junk = len(listing.junk)
        self.result.errors.extend(listing.problems)
        plan = plan_card(listing.files, self.db.seen_on_volume(self.volume.id))
        self.result.known = len(plan.known)
        self._emit(phase="copying", files_total=len(listing.files),
                   files_to_read=len(plan.to_read), bytes_to_read=plan.bytes_to_read,
                   known=len(plan.known))
        resumed = self.db.unfinished_session(self.volume.id)
        if resumed is not None:
            self._open_session(resumed)
        if plan.to_read:
            self._check_space(plan.space_needed(self.config.storage.free_space_margin_mb << 20))
            self._copy_all(plan.to_read)
        if self.result.session is None and self.config.storage.always_create_session:
            self._ensure_session()
        if self.result.session is not None:
            self._finish_session(listing, plan.known)

    def _check_space(self, needed: int) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.base).free
        if free < needed:
            message = (f"not enough space in {self.base}: this card needs up to "
                       f"{_gb(needed)} (with a {self.config.storage.free_space_margin_mb} MB "
                       f"margin), {_gb(free)} is free; free some space or use a larger disk. "
                       "Nothing was copied; the card is untouched.")
            raise DiskFullError(message)

    def _copy_all(self, files: tuple[CardFile, ...]) -> None:
        with IncomingDir(self.base) as incoming:
            clear_stale(self.base)
            self._copy_files(files, incoming)

    def _copy_files(self, files: tuple[CardFile, ...], incoming: IncomingDir) -> None:
        sealer = Sealer(self._record_sealed)
        try:
            self._copy_each(files, incoming, sealer)
        except DiskFullError as exc:  # the database's disk: nothing more can be recorded
            self._disk_full(exc)
        finally:
            sealer.finish()
            if self._sealer_db is not None:
                self._sealer_db.close()
            try:
                self._drain(sealer)
            except DiskFullError as exc:
                self._disk_full(exc)  # copies left unrecorded are taken over by the next
                #                       run (same content), never stored twice

    def _disk_full(self, exc: DiskFullError) -> None:
        if self.result.disk_full is None:
            self.result.disk_full = str(exc)
            log.error("%s", exc)

    def _copy_each(self, files: tuple[CardFile, ...], incoming: IncomingDir,
                   sealer: Sealer) -> None:
        for card_file in files:
            self._drain(sealer)
            if self.result.disk_full is not None:
                break
            if self.cancel.is_set():
                self._interrupted()
                break
            self._emit(current=card_file.rel_path)
            try:
                card_file, copied = self._read(card_file, incoming)
            except FileChangedError as exc:
                self._failed(card_file, classify(card_file.rel_path, b""),
                             f"changed twice while it was being copied (is something "
                             f"still writing it?); not copied: insert the card again "
                             f"to copy it ({exc})")
                continue
            except InterruptedError:
                self._interrupted()
                break
            except CardRemovedError as exc:
                self.result.card_error = str(exc)
                log.error("card phase stopped: %s", exc)
                break
            except DiskFullError as exc:
                self._disk_full(exc)
                break
            except OSError as exc:
                self._failed(card_file, classify(card_file.rel_path, b""),
                             f"cannot read: {exc.strerror or exc}")
                continue
            self._place(card_file, copied, sealer)

    def _read(self, card_file: CardFile, incoming: IncomingDir) -> tuple[CardFile, Copied]:
        """Copy one card file to a temp file; a file that changed while it was read is
        read once more with what the card says now (raises FileChangedError twice)."""
        source = self.root / card_file.source
        try:
            return card_file, copy_to_temp(source, incoming.temp(), card_file.size,
                                           self.counter, self.cancel, sync=False)
        except FileChangedError as exc:
            log.warning("%s; reading it again", exc)
        st = source.stat()
        card_file = replace(card_file, size=st.st_size, mtime_ns=st.st_mtime_ns)
        return card_file, copy_to_temp(source, incoming.temp(), card_file.size, self.counter,
                                       self.cancel, sync=False)

    def _interrupted(self) -> None:
        if not self.stop.is_set():
            self.result.cancelled = True
            return
        self.result.card_error = (
            "the copy was stopped (card removed or the system shutting down); verified "
            "files are kept, insert the card again to resume")
        log.error("card phase stopped: %s", self.result.card_error)

    def _place(self, card_file: CardFile, copied: Copied, sealer: Sealer) -> None:
        kind = classify(card_file.rel_path, copied.head)
        self._emit(files_read=self.state.files_read + 1,
                   bytes_read=self.state.bytes_read + copied.size)
        if copied.sha256 in self.pending_hashes:
            # Same content earlier on this card, not verified yet: it counts as safe
            # only once that copy has verified.
            copied.temp.unlink(missing_ok=True)
            self.waiting_duplicates.setdefault(copied.sha256, []).append((card_file, kind))
            return
        if self.db.is_known(copied.sha256):
            copied.temp.unlink(missing_ok=True)
            self._duplicate(card_file, copied.sha256, kind)
            return
        layout = self._ensure_session()
        self.pending_hashes.add(copied.sha256)
        sealer.put(Handoff(copied, card_file, kind, layout.original(card_file.rel_path)))

    def _as_on_disk(self, path: Path) -> Path:
        """`path` with its folders spelled as the disk has them: on a case-insensitive
        disk `dcim/100canon/` lands in an existing `DCIM/100CANON/`, and the record must
        name what a directory listing shows."""
        assert self.layout is not None
        root = self.layout.originals
        folder = path.parent.relative_to(root)
        if folder not in self._spelling:
            self._spelling[folder] = spelled_on_disk(root, folder)
        return self._spelling[folder] / path.name

    def _record_sealed(self, results: list[Sealed]) -> list[Sealed]:
        """On the sealer thread, the moment a batch's names are durable: its copies
        recorded in one transaction (on that thread's own connection). A batch the
        database refuses (a full disk, a lock held too long) comes back failed: its
        copies stay unrecorded, and the next run takes them over."""
        session = self.result.session
        assert session is not None
        sealed = [replace(r, stored=self._as_on_disk(r.stored)) if r.stored is not None
                  else r for r in results]
        entries = [self._ingested(session, r, r.stored) for r in sealed
                   if r.stored is not None]
        if not entries:
            return sealed
        try:
            if self._sealer_db is None:
                self._sealer_db = Database(self.db.path)
            self._sealer_db.record_ingested(entries)
        except (OSError, DatabaseError) as exc:
            return unrecorded(sealed, exc)
        return sealed

    def _drain(self, sealer: Sealer) -> None:
        """Count and announce every copy the sealer recorded so far; report the rest."""
        session = self.result.session
        for item in sealer.results():
            self.pending_hashes.discard(item.handoff.copied.sha256)
            if item.stored is None:
                self._not_sealed(item)
                continue
            assert session is not None
            copied, card_file = item.handoff.copied, item.handoff.card_file
            self.result.new += 1
            self.result.bytes_new += copied.size
            if self.on_recorded is not None:  # durable now: it may be derived and shared
                self.on_recorded(Recorded(
                    session, card_file.rel_path, item.stored, item.handoff.kind,
                    card_file.group, copied.sha256, copied.size,
                    max(0, self.state.bytes_to_read - self.state.bytes_read)))
            for twin, twin_kind in self.waiting_duplicates.pop(copied.sha256, []):
                self._duplicate(twin, copied.sha256, twin_kind)
            self._emit(new=self.result.new, bytes_new=self.result.bytes_new)

    def _ingested(self, session: SessionRow, item: Sealed, path: Path) -> dbm.Ingested:
        assert self.layout is not None
        card_file, copied = item.handoff.card_file, item.handoff.copied
        stored_path = path.relative_to(self.layout.originals).as_posix()
        if stored_path != card_file.rel_path:
            log.warning("%s stored as %s: another content already holds that name "
                        "in this session", card_file.rel_path, stored_path)
        return dbm.Ingested(
            session_id=session.id, volume_id=self.volume.id, rel_path=card_file.rel_path,
            size=copied.size, mtime_ns=card_file.mtime_ns, sha256=copied.sha256,
            kind=item.handoff.kind, group=card_file.group, stored=path,
            stored_path=stored_path if stored_path != card_file.rel_path else None)

    def _not_sealed(self, item: Sealed) -> None:
        """A copy that could not be made durable or did not verify: not counted; its
        same-content twins on the card stay unrecorded (read again next time)."""
        self.waiting_duplicates.pop(item.handoff.copied.sha256, None)
        if isinstance(item.error, DiskFullError):
            self._disk_full(item.error)  # copied again by the next run, after space is made
            return
        error = item.error
        text = (str(error) if isinstance(error, VerifyError)
                else f"cannot store the copy: {error.strerror or error}"
                if isinstance(error, OSError)
                else f"cannot store the copy: {type(error).__name__}: {error}")
        self._failed(item.handoff.card_file, item.handoff.kind, text)

    def _duplicate(self, card_file: CardFile, sha256: str, kind: str) -> None:
        session_id = self.result.session.id if self.result.session else None
        if session_id is None:  # read before the first new file made the session
            self._early_duplicates.append(
                (card_file.rel_path, card_file.size, sha256, kind, card_file.group))
        self.db.record_duplicate(
            session_id=session_id, volume_id=self.volume.id, rel_path=card_file.rel_path,
            size=card_file.size, mtime_ns=card_file.mtime_ns, sha256=sha256, kind=kind,
            group=card_file.group)
        self.result.duplicates += 1
        self._emit(duplicates=self.result.duplicates)

    def _failed(self, card_file: CardFile, kind: str, error: str) -> None:
        session = self._ensure_session()
        self.db.record_failed(session_id=session.id, rel_path=card_file.rel_path,
                              size=card_file.size, kind=kind, group=card_file.group,
                              error=error)
        self.result.failed += 1
        self.result.errors.append(f"{card_file.rel_path}: {error}")
        log.error("%s: %s", card_file.rel_path, error)
        self._emit(failed=self.result.failed)

    # ------------------------------------------------------------ session

    def _ensure_session(self) -> SessionLayout:
        if self.layout is None:
            session_id = new_session_id()
            session = self.db.create_session(
                session_id=session_id, path=self.base / session_id, volume_id=self.volume.id,
                volume_label=self.volume.label, source=str(self.root))
            self._open_session(session)
            log.info("session %s created for card %s (%s)", session.id, self.volume.label,
                     self.volume.id)
            if self.on_session is not None:
                self.on_session(session)  # e.g. sign the share link right away
        assert self.layout is not None
        return self.layout

    def _open_session(self, session: SessionRow) -> None:
        self.result.session = session
        self.layout = SessionLayout(session.path)
        self.layout.create()
        self._log_handler = session_log_handler(self.layout.log, level=logging.INFO)
        log.addHandler(self._log_handler)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)  # the session log always keeps INFO lines
        log.info("card phase on %s (session %s)", self.root, session.id)

    def _finish_session(self, listing: CardListing, known: tuple) -> None:
        try:
            self._close_session(listing, known)
        except DiskFullError as exc:
            self._disk_full(exc)

    def _close_session(self, listing: CardListing, known: tuple) -> None:
        session = self.result.session
        assert session is not None and self.layout is not None
        # every file the summary counts as already safe, so `sessions` counts it too
        self.db.record_known(session.id, self._early_duplicates + [
            (card_file.rel_path, card_file.size, row.sha256, row.kind, card_file.group)
            for card_file, row in known])
        if self.result.card_error is None and self.result.disk_full is None:
            self.db.set_session_state(session.id, dbm.COPIED)
            self.result.session = self.db.session(session.id)
        try:
            write_manifest(self.db, self.layout, self.result, listing)
        except OSError as exc:  # the disk may be the very thing that is full
            message = f"manifest.json not written: {exc.strerror or exc}; the next run writes it"
            self.result.errors.append(message)
            log.error("%s", message)
        log.info("card phase %s: %d new, %d already safe, %d failed",
                 "complete" if self.result.complete else "stopped early", self.result.new,
                 self.result.skipped, self.result.failed)

    # ------------------------------------------------------------ progress

    def _emit(self, **changes: object) -> None:
        self.state = replace(self.state, elapsed_s=time.monotonic() - self.started,
                             **changes)  # type: ignore[arg-type]
        if self.progress_fn is not None:
            self.progress_fn(self.state)


def spelled_on_disk(root: Path, relative: Path) -> Path:
    """`root / relative`, each folder name as the directory listing spells it (an exact
    match first, else the one entry equal but for case)."""
    current = root
    for depth, part in enumerate(relative.parts):
        try:
            names = os.listdir(current)
        except OSError:  # as we spell it, then
            return current.joinpath(*relative.parts[depth:])
        if part not in names:
            part = next((n for n in names if n.casefold() == part.casefold()), part)
        current = current / part
    return current


def write_manifest(db: Database, layout: SessionLayout, result: IngestResult,
                   listing: CardListing) -> None:
    session = result.session
    assert session is not None
    files = [
        {"card_path": r["rel_path"], "stored_as": r["stored_path"] or r["rel_path"],
         "size": r["size"], "sha256": r["sha256"], "kind": r["kind"], "group": r["grp"],
         "status": r["status"], "error": r["error"]}
        for r in db.session_files(session.id)
    ]
    write_json_atomic(layout.manifest, {
        "session_id": session.id,
        "session_number": session.number,
        "volume": {"id": result.volume.id, "label": result.volume.label},
        "source": str(listing.root),
        "state": session.state,
        "card_error": result.card_error,
        "os_junk_skipped": listing.junk,
        "problems": listing.problems,
        "files": files,
    })


def ingest_card(root: Path, config: Config, db: Database, volume: Volume,
                progress: ProgressFn | None = None,
                cancel: threading.Event | None = None,
                on_session: Callable[[SessionRow], None] | None = None,
                stop: threading.Event | None = None,
                on_recorded: Callable[[Recorded], None] | None = None) -> IngestResult:
    return CardIngest(root, config, db, volume, progress, cancel, on_session, stop,
                      on_recorded).run()


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"

