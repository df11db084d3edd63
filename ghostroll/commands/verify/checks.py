"""The checks of `ghostroll verify`, each adding `Problem`s to a `Report`; the entry
points `verify_device` and `run_verify`."""


from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ghostroll.commands.verify.bucket import _Bucket
from ghostroll.commands.verify.model import (
    COPY_UNREADABLE,
    DATABASE,
    DERIVED_MISSING,
    DISK_LOCATIONS,
    GALLERY_JSON,
    GALLERY_MISSING,
    NO_COPY,
    NOT_CHECKED,
    ORIGINAL_MISSING,
    ORIGINAL_SIZE,
    PARTIAL_WRITE,
    SET_ASIDE,
    STALE_TEMP,
    UNKNOWN_LOCATION,
    UNRECORDED,
    HashProgress,
    Options,
    Problem,
    Report,
)
from ghostroll.commands.verify.readdata import check_data
from ghostroll.commands.verify.repair import repair_what_can_be_redone
from ghostroll.commands.verify.report import last_result_path, save_last_result
from ghostroll.commands.verify.rules import disk_copy_problem, missing_derived, session_of
from ghostroll.config import Config
from ghostroll.errors import CardError, DatabaseError
from ghostroll.storage import db as dbm
from ghostroll.storage.db import CopyRow, Database, SessionRow
from ghostroll.storage.incoming import live_runs, stale_temps
from ghostroll.storage.session import SessionLayout


def verify_device(cfg: Config, session_ref: str | None = None, *, local: bool = False,
                  read_data: bool = False, restart: bool = False, repair: bool = False,
                  progress: HashProgress | None = None) -> Report:
    """The whole `ghostroll verify`: raises DatabaseError (unusable database) or CardError
    (no such session). A check of the whole device is kept for the idle screen."""
    from ghostroll.commands.sessions import find

    if not cfg.storage.db_path.exists():  # a device that never saw a card: not created
        report = Report()
        report.warnings.append(Problem(
            NOT_CHECKED, None, str(cfg.storage.db_path), "no database yet: nothing was "
            "ingested with this configuration", "check db_path if photos were ingested"))
        if session_ref:
            raise CardError(f"no session matches {session_ref!r} (no database yet)")
        return report
    with Database(cfg.storage.db_path) as db:
        session = None
        if session_ref:
            session = find(db, session_ref)
            if session is None:
                raise CardError(f"no session matches {session_ref!r} (see `ghostroll "
                                "sessions`)")
        from ghostroll.archive.disk import unmounted_archive
        options = Options(local=local, read_data=read_data, restart=restart, session=session,
                          archive_offline=unmounted_archive(cfg))
        try:
            report = run_verify(cfg, db, options, progress)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(
                f"database {db.path} is damaged ({exc}): stop GhostRoll and restore it from "
                "a backup (the session folders are kept; their manifest.json lists every "
                "file)") from exc
        if repair:
            report.repaired = repair_what_can_be_redone(cfg, db, report)
    if session is None:
        try:
            save_last_result(cfg, report)
        except OSError as exc:
            kept = last_result_path(cfg.storage.db_path)
            report.warnings.append(Problem(
                NOT_CHECKED, None, str(kept), f"cannot keep this result for the panel: "
                f"{exc}", "run verify as the ghostroll user"))
    return report


def run_verify(cfg: Config, db: Database, options: Options,
               progress: HashProgress | None = None) -> Report:
    report = Report()
    check_database(db, report)
    everyone = db.sessions()
    report.sessions = [options.session] if options.session else everyone
    roots = {str(s.path): s.id for s in everyone}
    bucket = None if options.local else _Bucket(cfg, db, report)
    intact = check_contents(db, report, roots, options, bucket)
    if options.read_data:
        check_data(cfg, report, intact, roots, options, progress)
    pruned = {c.target for c in db.copies(location=dbm.LOCAL) if c.state == dbm.COPY_PRUNED}
    for session in report.sessions:
        check_session(db, report, session, bucket, pruned)
    check_leftovers(cfg, db, report, options)
    if report.checked["archive_offline"]:
        report.warnings.append(Problem(
            NOT_CHECKED, None, options.archive_offline, f"{report.checked['archive_offline']} "
            "archive copies not checked: the archive disk is not mounted",
            "plug the archive disk in (or mount it at archive_dir), then run `ghostroll "
            "verify` again"))
    return report


def check_database(db: Database, report: Report) -> None:
    result = db.integrity_check()
    if result != "ok":
        report.problems.append(Problem(
            DATABASE, None, str(db.path), f"database integrity_check: {result}",
            f"stop GhostRoll, restore {db.path} from a backup (the session folders are "
            "kept; their manifest.json lists every file)"))


def check_contents(db: Database, report: Report, roots: dict[str, str],
                   options: Options, bucket: _Bucket | None) -> list[CopyRow]:
    """Contents and their recorded copies; returns the disk copies found intact."""
    contents = db.contents()
    copies = db.copies()
    if options.session is not None:
        sid, root = options.session.id, str(options.session.path) + os.sep
        contents = [r for r in contents if r["session_id"] == sid]
        wanted = {r["sha256"] for r in contents}
        copies = [c for c in copies if c.sha256 in wanted or c.target.startswith(root)]
    by_sha: dict[str, list[CopyRow]] = defaultdict(list)
    for copy in copies:
        by_sha[copy.sha256].append(copy)
    report.checked["contents"] += len(contents)
    for row in contents:
        if not any(c.state == dbm.COPY_VERIFIED for c in by_sha[row["sha256"]]):
            report.problems.append(Problem(
                NO_COPY, row["session_id"], row["rel_path"],
                f"content {row['sha256'][:12]}… ({row['rel_path']}, {row['size']} bytes) "
                "counts as safe but no verified copy of it is recorded",
                "keep the card that holds it; the record of its copy is gone (a damaged "
                "database or a bug: report it), so a card holding it is not read again"))
    intact: list[CopyRow] = []
    for copy in copies:
        report.checked["copies"] += 1
        if copy.state == dbm.COPY_PRUNED:
            report.checked["pruned"] += 1
            continue
        session = session_of(copy.target, roots)
        verified = [c for c in by_sha[copy.sha256] if c.state == dbm.COPY_VERIFIED]
        if copy.location == dbm.ARCHIVE_DISK and options.archive_offline \
                and copy.target.startswith(options.archive_offline):
            report.checked["archive_offline"] += 1
            continue
        if copy.location in DISK_LOCATIONS:
            size, error = _size(copy.target)
            problem = disk_copy_problem(copy, size, error, session, len(verified) == 1)
            if problem is None:
                intact.append(copy)
            else:
                report.problems.append(problem)
        elif copy.location == dbm.BUCKET:
            if bucket is None:
                report.checked["bucket_copies_skipped"] += 1
            else:
                bucket.check_copy(copy, session)
        else:
            report.warnings.append(Problem(
                UNKNOWN_LOCATION, session, copy.target, f"copy recorded at location "
                f"{copy.location!r}, which this GhostRoll cannot check", "upgrade GhostRoll"))
    return intact


def check_session(db: Database, report: Report, session: SessionRow,
                  bucket: _Bucket | None, pruned: set[str]) -> None:
    report.checked["sessions"] += 1
    layout = SessionLayout(session.path)
    if session.process_error:
        report.problems.append(Problem(
            SET_ASIDE, session.id, str(layout.root),
            f"set aside: processing failed ({session.process_error}); its originals are "
            "kept but it has no gallery and is not published",
            f"read {layout.log}; once the cause is fixed: `ghostroll sessions retry "
            f"{session.id}`"))
    check_originals(db, report, session, layout, pruned)
    if session.state in (dbm.PROCESSED, dbm.PUBLISHED):
        gallery = check_derived(report, session, layout)
        if session.state == dbm.PUBLISHED and gallery is not None:
            if bucket is None:
                report.checked["bucket_sessions_skipped"] += 1
            else:
                bucket.check_published(session, gallery)


def check_originals(db: Database, report: Report, session: SessionRow,
                    layout: SessionLayout, pruned: set[str]) -> None:
    already = {p.path for p in report.problems}
    for row in db.session_files(session.id):
        if row["status"] != dbm.VERIFIED:
            continue
        report.checked["originals"] += 1
        path = _original(layout, row)
        if path is None:
            report.problems.append(Problem(
                ORIGINAL_MISSING, session.id, row["stored_path"] or row["rel_path"],
                f"the record of card file {row['rel_path']} names an unsafe path",
                "a damaged database or a bug: report it and keep the card"))
            continue
        if path in already or path in pruned:
            continue
        size, error = _size(path)
        fix = (f"copy {row['rel_path']} back from a backup or from its card to {path}, then "
               "run `ghostroll verify --read-data`")
        if error is not None:
            report.problems.append(Problem(
                COPY_UNREADABLE, session.id, path, f"cannot look at the original of "
                f"{row['rel_path']}: {error}", "check the disk and its permissions"))
        elif size is None:
            report.problems.append(Problem(
                ORIGINAL_MISSING, session.id, path, f"the verified original of card file "
                f"{row['rel_path']} is missing (session state {session.state})", fix))
        elif size != row["size"]:
            report.problems.append(Problem(
                ORIGINAL_SIZE, session.id, path, f"the original of {row['rel_path']} has "
                f"{size} bytes, {row['size']} were verified", fix))


def check_derived(report: Report, session: SessionRow,
                  layout: SessionLayout) -> dict[str, Any] | None:
    """Share images and thumbnails of a processed session; its gallery model."""
    path = layout.derived / GALLERY_JSON
    remake = ("`ghostroll verify --repair` sets the session back to be processed again; "
              "then `ghostroll work` makes it again (the appliance does by itself)")
    try:
        gallery = json.loads(path.read_text(encoding="utf-8"))
        items = list(gallery["items"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.problems.append(Problem(
            GALLERY_MISSING, session.id, str(path),
            f"state {session.state} but its gallery model is unreadable: {exc}", remake))
        return None
    missing = missing_derived(items, gallery.get("zip_key"),
                              lambda key: (layout.derived / key).is_file())
    report.checked["derived"] += sum(1 for i in items if i.get("kind") == "photo")
    for key in missing:
        report.problems.append(Problem(
            DERIVED_MISSING, session.id, str(layout.derived / key),
            f"state {session.state} but {key} of its gallery is missing", remake))
    return gallery


def check_leftovers(cfg: Config, db: Database, report: Report, options: Options) -> None:
    base = cfg.storage.base_dir
    if options.session is None:
        for temp in stale_temps(base):
            report.checked["stale_temps"] += 1
            report.problems.append(Problem(
                STALE_TEMP, None, str(temp), "temp file of a copy that was interrupted (no "
                "running copy owns it); it never counted as a safe photo",
                "nothing is lost: the next `ghostroll run` or `ghostroll verify --repair` "
                "removes it"))
    running = live_runs(base)
    recorded = {c.target for c in db.copies(location=dbm.LOCAL)}
    for session in report.sessions:
        if session.state == dbm.COPYING and running:
            report.warnings.append(Problem(
                NOT_CHECKED, session.id, None, "a copy is running: files of this session "
                "not yet recorded were not looked for", "run `ghostroll verify` again later"))
            continue
        layout = SessionLayout(session.path)
        for folder in (layout.root, layout.derived, layout.share_dir, layout.thumbs_dir):
            for temp in sorted(folder.glob(".*.tmp")):
                report.warnings.append(Problem(
                    PARTIAL_WRITE, session.id, str(temp), "temp file of an interrupted "
                    "write of the gallery (or of one in progress right now)",
                    "nothing is lost: delete it if no processing runs (`ghostroll status`)"))
        recorded |= {path for r in db.session_files(session.id) if r["status"] == dbm.VERIFIED
                     and (path := _original(layout, r)) is not None}
        for path in _files_under(layout.originals):
            if path not in recorded:
                report.problems.append(Problem(
                    UNRECORDED, session.id, path, "file in the session's originals that no "
                    "record knows: a copy interrupted before it was verified and recorded, "
                    "or a file put there by hand; it does not count as safe",
                    "keep the card until a run has copied it again; then delete this "
                    "file (verify never deletes anything)"))


def _size(path: str) -> tuple[int | None, str | None]:
    """(size, None) of a regular file, (None, None) when there is none, (None, error)
    when it cannot be looked at."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as exc:
        return None, exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        return None, "not a regular file"
    return st.st_size, None


def _original(layout: SessionLayout, row: Any) -> str | None:
    """Where a session file's verified original is (None: the record is unsafe)."""
    try:
        return str(layout.original(row["stored_path"] or row["rel_path"]))
    except ValueError:
        return None


def _files_under(root: Path) -> Iterator[str]:
    """Every file below `root`, without recursion (a card may nest folders deeply)."""
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                yield entry.path
