"""`ghostroll restore --from DIR`: rebuild the database and the sessions from an archive
disk (a new Pi, a dead SD card).

Every session folder on the disk describes itself (`ghostroll-archive.json`, see
archive/layout.py). For each session the database does not know, its originals are
copied back with the card copier (hashed while copied, fsynced, verified from disk, never
replacing a file), recorded exactly as an ingest records them — dedupe index, card memory
with the original's size and time (a re-inserted card is recognised without reading),
local copy — plus the archive copy they came from. The session is left `copied`: the next
`ghostroll run`/`publish` or the appliance makes its gallery again. A content whose hash
does not match its manifest is not restored and is listed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostroll.archive import layout
from ghostroll.card.copier import ByteCounter, commit_new, copy_to_temp, verify
from ghostroll.errors import ArchiveError, CardError, DiskFullError, VerifyError
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.incoming import IncomingDir, clear_stale
from ghostroll.storage.session import SessionLayout, write_json_atomic

Progress = Callable[[str, int, int], None]  # (session id, files done, of)
RESTORED = "restored from"  # a session's source: where it came back from


def _interrupted_restore(session: SessionRow) -> bool:
    return session.state == dbm.COPYING and session.source.startswith(RESTORED)


@dataclass
class RestoreResult:
    sessions: list[str] = field(default_factory=list)  # restored now
    known: list[str] = field(default_factory=list)  # already in the database: untouched
    files: int = 0
    bytes_restored: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"restored {len(self.sessions)} session(s), {self.files} original(s) "
                 f"({self.bytes_restored / 1e6:.1f} MB), each verified by its hash"]
        if self.known:
            lines.append(f"{len(self.known)} session(s) already known here: left as they are")
        lines.extend(f"not restored: {p}" for p in self.problems)
        return lines


def find_manifests(source: Path) -> list[dict[str, Any]]:
    """Every session folder's manifest on the disk, oldest session first; each with its
    folder under "_folder"."""
    found = []
    for path in sorted(source.glob(f"*/*/{layout.MANIFEST}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == layout.MANIFEST_FORMAT:
            found.append({**data, "_folder": path.parent})
    return sorted(found, key=lambda d: (d.get("created_utc", ""), d.get("session_number", 0)))


def restore(db: Database, source: Path, base_dir: Path,
            progress: Progress | None = None) -> RestoreResult:
    if not source.is_dir():
        raise ArchiveError(f"{source} is not a folder (is the archive disk mounted?)")
    manifests = find_manifests(source)
    if not manifests:
        raise ArchiveError(f"{source} holds no GhostRoll archive (no */*/{layout.MANIFEST})")
    result = RestoreResult()
    clear_stale(base_dir)  # temp files of a restore or a run that was killed
    with IncomingDir(base_dir) as incoming:
        for manifest in manifests:
            sid = manifest["session_id"]
            existing = db.session(sid)
            if existing is not None and not _interrupted_restore(existing):
                result.known.append(sid)
                continue
            _restore_session(db, manifest, base_dir, incoming, result, progress)
            result.sessions.append(sid)
    return result


def _restore_session(db: Database, manifest: dict[str, Any], base_dir: Path,
                     incoming: IncomingDir, result: RestoreResult,
                     progress: Progress | None) -> None:
    sid, folder = manifest["session_id"], manifest["_folder"]
    volume = manifest.get("volume", {})
    session = db.session(sid) or db.create_session(
        session_id=sid, path=base_dir / sid, volume_id=volume.get("id", f"restored:{sid}"),
        volume_label=volume.get("label", ""), source=f"{RESTORED} {folder}")
    db.set_created(sid, manifest.get("created_utc") or session.created_utc)
    session_layout = SessionLayout(session.path)
    session_layout.create()
    counter = ByteCounter()
    entries = manifest.get("files", [])
    for done, entry in enumerate(entries, 1):
        _restore_file(db, sid, volume.get("id", ""), folder, entry, session_layout,
                      incoming, counter, result)
        if progress is not None:
            progress(sid, done, len(entries))
    write_json_atomic(session_layout.manifest, {
        "session_id": sid, "session_number": session.number,
        "volume": volume, "source": f"{RESTORED} {folder}", "state": dbm.COPIED,
        "card_error": None, "os_junk_skipped": 0, "problems": [],
        "files": [{"card_path": r["rel_path"], "stored_as": r["stored_path"] or r["rel_path"],
                   "size": r["size"], "sha256": r["sha256"], "kind": r["kind"],
                   "group": r["grp"], "status": r["status"], "error": r["error"]}
                  for r in db.session_files(sid)]})
    db.set_session_state(sid, dbm.COPIED)


def _restore_file(db: Database, sid: str, volume_id: str, folder: Path,
                  entry: dict[str, Any], session_layout: SessionLayout,
                  incoming: IncomingDir, counter: ByteCounter,
                  result: RestoreResult) -> None:
    source = Path(os.path.normpath(folder / entry["name"]))
    sha, size, card_path = entry["sha256"], entry["size"], entry["card_path"]
    stored_as = entry.get("stored_as") or card_path
    if db.is_known(sha):  # restored already under another session: one local copy
        db.record_copy(sha, dbm.ARCHIVE_DISK, str(source), size)
        return
    try:
        copied = copy_to_temp(source, incoming.temp(), size, counter)
    except (CardError, OSError) as exc:
        if isinstance(exc, DiskFullError):
            raise
        result.problems.append(f"{source}: cannot be read ({exc})")
        return
    if copied.sha256 != sha:
        copied.temp.unlink(missing_ok=True)
        result.problems.append(f"{source}: its content does not match the manifest's "
                               "sha256 (damaged on the archive disk)")
        return
    final = commit_new(copied.temp, session_layout.original(stored_as), sha)
    try:
        verify(final, sha)
    except VerifyError as exc:
        final.unlink(missing_ok=True)
        result.problems.append(str(exc))
        return
    stored_path = final.relative_to(session_layout.originals).as_posix()
    db.record_ingested([dbm.Ingested(
        session_id=sid, volume_id=volume_id, rel_path=card_path, size=size,
        mtime_ns=final.stat().st_mtime_ns, sha256=sha, kind=entry.get("kind", "other"),
        group=entry.get("group", card_path), stored=final,
        stored_path=stored_path if stored_path != card_path else None)])
    db.record_copy(sha, dbm.ARCHIVE_DISK, str(source), size)
    result.files += 1
    result.bytes_restored += size
