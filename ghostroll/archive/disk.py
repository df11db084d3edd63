"""Archiving originals onto a mounted disk (`archive_dir`): the second copy.

Each original is copied from its verified local copy (never the card) with the card
copier's code: temp file in `<archive>/.incoming/` hashed while written and fsynced,
renamed under a free name (an unrecorded copy of exactly this content, left by a run that
was killed, is taken over, never doubled), re-hashed from the disk with the page cache
dropped, and only then recorded in `copies` as `archive-disk` `verified`. A content the
disk already holds is not copied again. One archiver per disk at a time (a lock on the
disk); temp files of dead runs are removed first."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostroll import faults
from ghostroll.archive import layout
from ghostroll.card.copier import ByteCounter, commit_new, copy_to_temp, verify
from ghostroll.config import Config
from ghostroll.errors import ArchiveError, CardError, DiskFullError, VerifyError, is_disk_full
from ghostroll.storage import db as dbm
from ghostroll.storage.db import CopyRow, Database, SessionRow
from ghostroll.storage.incoming import IncomingDir, clear_stale, held_lock
from ghostroll.storage.session import write_json_atomic, write_text_atomic

log = logging.getLogger("ghostroll.archive")

Progress = Callable[[str, int, int], None]  # (session id, files done, of)


@dataclass
class ArchiveResult:
    root: Path
    copied: int = 0  # originals copied onto the disk by this run
    bytes_copied: int = 0
    already: int = 0  # contents the disk already held
    sessions_done: list[str] = field(default_factory=list)  # complete on the disk now
    problems: list[str] = field(default_factory=list)  # per file: not archived, said why


def check_root(root: Path, base_dir: Path) -> None:
    """Refuse a target that is not a second disk: missing, not writable, or (the USB
    disk not mounted) the same filesystem as the sessions."""
    if not root.is_dir():
        raise ArchiveError(f"archive disk not found: {root} does not exist (not plugged in "
                           "or not mounted?); nothing was archived, the local copies are "
                           "untouched")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ArchiveError(f"archive disk {root} is not writable by this user; nothing was "
                           "archived, the local copies are untouched")
    base = base_dir if base_dir.exists() else base_dir.parent
    if os.stat(root).st_dev == os.stat(base).st_dev:
        raise ArchiveError(f"archive_dir {root} is on the same disk as the sessions "
                           f"({base_dir}): the archive disk is not mounted there, and a copy "
                           "on the same disk would not survive it; nothing was archived")


def unmounted_archive(cfg: Config) -> str | None:
    """The configured archive folder (ending in "/") when its disk is not there now."""
    root = cfg.archive.archive_dir
    if root is None:
        return None
    try:
        check_root(root, cfg.storage.base_dir)
    except (ArchiveError, OSError):
        return str(root).rstrip(os.sep) + os.sep
    return None


def archive_pending(db: Database, root: Path, base_dir: Path,
                    progress: Progress | None = None) -> ArchiveResult:
    """Archive every finished session's originals that the disk does not hold yet.
    Raises ArchiveError when the disk cannot be used or fails (full, unplugged): what was
    recorded so far stays true, and the next run resumes."""
    check_root(root, base_dir)
    result = ArchiveResult(root)
    with held_lock(root, "archive") as taken:
        if not taken:
            result.problems.append(f"another GhostRoll run is archiving to {root} right now")
            return result
        clear_stale(root)
        archived = _archived_on(db, root)
        local = {c.sha256: c for c in db.copies(location=dbm.LOCAL)
                 if c.state == dbm.COPY_VERIFIED}
        with IncomingDir(root) as incoming:
            for session in db.sessions():
                if session.state != dbm.COPYING:
                    _archive_session(db, session, Held(root, archived, local), incoming,
                                     result, progress)
    return result


@dataclass(frozen=True)
class Held:
    """What one archive run starts from: the disk's contents (kept up to date as copies
    are made) and the verified local copies to copy from."""
    root: Path
    archived: dict[str, CopyRow]
    local: dict[str, CopyRow]


def _archive_session(db: Database, session: SessionRow, held: Held, incoming: IncomingDir,
                     result: ArchiveResult, progress: Progress | None) -> None:
    rows = [r for r in db.session_files(session.id) if r["status"] == dbm.VERIFIED]
    if not rows:
        return
    root, archived, local = held.root, held.archived, held.local
    if all(r["sha256"] in archived for r in rows) and _described(archived, rows):
        return
    album = layout.album_name(session)
    folder = _claim_folder(root, session, album)
    counter = ByteCounter()
    entries: list[dict[str, Any]] = []
    missing = 0
    for done, row in enumerate(rows, 1):
        sha = row["sha256"]
        copy = archived.get(sha)
        if copy is None:
            copy = _archive_one(db, row, local.get(sha), folder, incoming, counter, result)
            if copy is not None:
                archived[sha] = copy
        else:
            result.already += 1
        if copy is None:
            missing += 1
        else:
            entries.append(_entry(row, Path(copy.target), folder))
        if progress is not None:
            progress(session.id, done, len(rows))
    complete = missing == 0
    _describe(folder, session, album, entries, complete)
    if complete:
        result.sessions_done.append(session.id)


def _archive_one(db: Database, row: Any, local: CopyRow | None, folder: Path,
                 incoming: IncomingDir, counter: ByteCounter,
                 result: ArchiveResult) -> CopyRow | None:
    """Copy one content from its verified local copy; None when it cannot be (said why)."""
    card_path, sha, size = row["rel_path"], row["sha256"], row["size"]
    if local is None:
        result.problems.append(f"{card_path}: no verified local copy to archive from "
                               "(pruned or lost; see `ghostroll verify`)")
        return None
    faults.fault("archive.file")
    try:
        copied = copy_to_temp(Path(local.target), incoming.temp(), size, counter)
    except CardError as exc:  # the copier names the source a card: it is our local copy
        result.problems.append(f"{card_path}: the local copy {local.target} cannot be read "
                               f"({exc.__cause__ or exc}); run `ghostroll verify`")
        return None
    except DiskFullError as exc:
        raise ArchiveError(f"the archive disk {result.root} is full ({result.copied} "
                           "originals archived by this run); the local copies are untouched: "
                           "free space on it or use a bigger disk") from exc
    except OSError as exc:
        raise _disk_failed(result.root, exc) from exc
    if copied.sha256 != sha:
        copied.temp.unlink(missing_ok=True)
        result.problems.append(f"{card_path}: the local copy {local.target} no longer has "
                               "its verified content; it was not archived (`ghostroll verify "
                               "--read-data` reports it)")
        return None
    try:
        final = commit_new(copied.temp, folder / layout.file_name(row["stored_path"]
                                                                 or card_path), sha)
        verify(final, sha)
    except VerifyError as exc:
        with contextlib.suppress(OSError):
            final.unlink()  # never recorded: nothing counts it
        result.problems.append(f"{card_path}: the archive copy read back wrong ({exc}); "
                               "it was removed and is copied again next time")
        return None
    except OSError as exc:
        copied.temp.unlink(missing_ok=True)
        raise _disk_failed(result.root, exc) from exc
    faults.fault("archive.record")
    db.record_copy(sha, dbm.ARCHIVE_DISK, str(final), size)
    result.copied += 1
    result.bytes_copied += size
    return CopyRow(sha, dbm.ARCHIVE_DISK, str(final), dbm.COPY_VERIFIED, size, "")


def _disk_failed(root: Path, exc: OSError) -> ArchiveError:
    gone = not root.is_dir() or exc.errno in (errno.EIO, errno.ENODEV, errno.ENXIO,
                                              errno.ENOENT, errno.ESTALE, errno.EROFS)
    why = "was unplugged or failed" if gone else "failed"
    return ArchiveError(f"the archive disk {root} {why} ({exc.strerror or exc}); what was "
                        "verified on it is kept and the rest is archived when it is back; "
                        "the local copies are untouched")


def _archived_on(db: Database, root: Path) -> dict[str, CopyRow]:
    """The contents this disk holds: recorded and there with their size (a copy deleted
    on the disk is made again)."""
    prefix = str(root).rstrip(os.sep) + os.sep
    return {c.sha256: c for c in db.copies(location=dbm.ARCHIVE_DISK)
            if c.state == dbm.COPY_VERIFIED and c.target.startswith(prefix)
            and size_on_disk(c.target) == c.size}


def size_on_disk(path: str) -> int | None:
    """The file's size, None when it is not there (or cannot be looked at)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _described(archived: dict[str, CopyRow], rows: list[Any]) -> bool:
    """The folder of a fully archived session says so (its manifest is complete)."""
    folder = Path(archived[rows[0]["sha256"]].target).parent
    data = _read_manifest(folder)
    return bool(data and data.get("complete"))


def _claim_folder(root: Path, session: SessionRow, album: str) -> Path:
    """This session's folder: the one whose manifest names it, else the first free name
    (claimed by writing an incomplete manifest before any file goes in)."""
    for n in range(1, 1000):
        folder = root / layout.session_folder(session.created_utc, album, n)
        data = _read_manifest(folder)
        if data is not None and data.get("session_id") == session.id:
            return folder
        if not folder.exists():
            folder.mkdir(parents=True)
            write_json_atomic(folder / layout.MANIFEST,
                              layout.manifest(session, album, [], complete=False))
            return folder
    raise ArchiveError(f"no free folder name for session {session.id} on {root}")


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / layout.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _entry(row: Any, target: Path, folder: Path) -> dict[str, Any]:
    """A manifest line; `name` is relative to the folder (`../...` when an earlier
    session's folder already held this content)."""
    return {"name": os.path.relpath(target, folder), "card_path": row["rel_path"],
            "stored_as": row["stored_path"] or row["rel_path"], "sha256": row["sha256"],
            "size": row["size"], "kind": row["kind"], "group": row["grp"]}


def _describe(folder: Path, session: SessionRow, album: str,
              entries: list[dict[str, Any]], complete: bool) -> None:
    try:
        here = [(e["name"], e["sha256"]) for e in entries if os.sep not in e["name"]]
        write_text_atomic(folder / layout.SUMS, layout.sums_text(here))
        write_json_atomic(folder / layout.MANIFEST,
                          layout.manifest(session, album, entries, complete))
    except OSError as exc:
        if is_disk_full(exc):
            raise ArchiveError(f"the archive disk {folder} is full: its SHA256SUMS and "
                               "manifest could not be written; the copies on it are "
                               "verified and kept") from exc
        raise _disk_failed(folder, exc) from exc
