"""`ghostroll verify`: is every photo we promised safe really there, and does every
session's state tell the truth? Run after a power cut (like `restic check`), at boot on
the appliance (`--local`), and by the fault tests as their oracle.

What is checked, by small functions adding `Problem`s to a `Report`:
- contents: every `files` row has a verified copy, and every recorded copy is where it
  is recorded to be: `local` and `archive-disk` copies on disk with their size, `bucket`
  copies by a HEAD request; `pruned` copies are not looked for. `read_data` re-hashes
  every disk copy against its sha256 (resumable, see `Checkpoint`).
- sessions: copying/copied ⇒ every verified original present with its size;
  processed ⇒ share image + thumbnail of every photo of `derived/gallery.json`;
  published ⇒ its objects in the bucket the upload ledger names, unsigned GET denied;
  a session set aside (`process_error`) is reported with its error.
- leftovers: temp files no living run owns; files in a session's `originals/` that no
  row records (reported, never deleted).
- the database's `integrity_check`.

Verify changes nothing: it only reads, apart from its `--read-data` checkpoint and the
last result kept next to the database for the appliance's idle screen
(`last_result_path`). Only `--repair` acts (`repair_what_can_be_redone`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ghostroll import faults
from ghostroll.card.progress import human_bytes
from ghostroll.config import Config
from ghostroll.errors import CardError, DatabaseError
from ghostroll.storage import db as dbm
from ghostroll.storage.db import CopyRow, Database, SessionRow
from ghostroll.storage.incoming import live_runs, stale_temps
from ghostroll.storage.session import SessionLayout, write_json_atomic

CHUNK = 1 << 20  # bytes read at a time when re-hashing: memory stays bounded
GALLERY_JSON = "gallery.json"  # process.GALLERY_JSON (not imported: it loads the decoders)
DISK_LOCATIONS = (dbm.LOCAL, dbm.ARCHIVE_DISK)

# problem kinds (stable: the fault tests match on them)
DATABASE = "database"
NO_COPY = "no-copy"  # a content counted safe without any verified copy
COPY_MISSING, COPY_SIZE, COPY_DAMAGED, COPY_UNREADABLE = (
    "copy-missing", "copy-size", "copy-damaged", "copy-unreadable")
UNKNOWN_LOCATION = "unknown-location"
ORIGINAL_MISSING, ORIGINAL_SIZE = "original-missing", "original-size"
GALLERY_MISSING, DERIVED_MISSING = "gallery-missing", "derived-missing"
NOT_UPLOADED, OBJECT_MISSING, OBJECT_SIZE = "not-uploaded", "object-missing", "object-size"
BUCKET_PUBLIC, BUCKET_ERROR = "bucket-public", "bucket-error"
SET_ASIDE = "set-aside"
UNUSABLE = "unusable"  # exit 2: configuration, database or --session unusable
STALE_TEMP, UNRECORDED = "stale-temp", "unrecorded"
# warning kinds (exit 0: degraded, not wrong)
OFFLINE, NOT_CHECKED = "offline", "not-checked"
PARTIAL_WRITE = "partial-write"  # a `.<name>.tmp` of session.write_*_atomic or share.zip


@dataclass(frozen=True)
class Problem:
    kind: str
    session: str | None  # session id, or None for the base folder / database
    path: str | None  # a file, an object (s3://bucket/key) or the database
    message: str
    fix: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    sessions: list[SessionRow] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [asdict(p) for p in self.problems],
                "warnings": [asdict(p) for p in self.warnings],
                "checked": dict(sorted(self.checked.items())), "repaired": self.repaired}


@dataclass(frozen=True)
class Options:
    local: bool = False  # no bucket requests
    read_data: bool = False  # re-hash every disk copy
    restart: bool = False  # --read-data: forget the checkpoint of an interrupted pass
    session: SessionRow | None = None  # limit every check to this session
    archive_offline: str | None = None  # an archive disk's folder that is not mounted now


HashProgress = Callable[[int, int, int, int], None]  # (copies done, of, bytes done, of)


# ---------------------------------------------------------------- pure decisions


def session_of(target: str, roots: dict[str, str]) -> str | None:
    """The session whose folder holds `target` (a recorded path), if any; `roots` maps
    session folders to session ids."""
    parent, path = os.path.dirname(target), target
    while parent != path:
        if parent in roots:
            return roots[parent]
        parent, path = os.path.dirname(parent), parent
    return None


def disk_copy_problem(copy: CopyRow, size: int | None, error: str | None,
                      session: str | None, only_copy: bool) -> Problem | None:
    """What is wrong with a disk copy found with `size` bytes (None: not there) or that
    could not be looked at (`error`)."""
    lost = (" It was the only verified copy of this content: the photo is lost here "
            "unless a backup or the card still has it.") if only_copy else ""
    fix = (f"copy the file back from a backup or from its card to {copy.target} (same "
           "name), then run `ghostroll verify --read-data` to prove it by its hash")
    if error is not None:
        return Problem(COPY_UNREADABLE, session, copy.target, f"cannot look at the recorded "
                       f"{copy.location} copy: {error}", "check the disk and its permissions "
                       "(dmesg, ls -l), then run `ghostroll verify` again")
    if size is None:
        return Problem(COPY_MISSING, session, copy.target,
                       f"recorded {copy.location} copy is missing.{lost}", fix)
    if size != copy.size:
        return Problem(COPY_SIZE, session, copy.target, f"recorded {copy.location} copy has "
                       f"{size} bytes, {copy.size} were verified: it was changed or "
                       f"truncated.{lost}", fix)
    return None


def missing_derived(items: list[dict[str, Any]], zip_key: str | None,
                    exists: Callable[[str], bool]) -> list[str]:
    """Gallery keys (thumbs/…, share/…, share.zip) of a processed session not on disk."""
    keys = [item[k] for item in items for k in ("share", "thumb") if item.get(k)]
    if zip_key:
        keys.append(zip_key)
    return [k for k in keys if not exists(k)]


def expected_objects(items: list[dict[str, Any]], zip_key: str | None) -> list[str]:
    """Keys (under the session's prefix) that a published session has in its bucket."""
    keys = ["index.html", "progress.json"]
    keys += [item[k] for item in items for k in ("thumb", "share") if item.get(k)]
    if zip_key:
        keys.append(zip_key)
    return keys


def summary_line(report: Report) -> str:
    c = report.checked
    return (f"verify: {c['copies']} copies of {c['contents']} contents checked, "
            f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}")


# ---------------------------------------------------------------- the checks


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


# ---------------------------------------------------------------- --repair


def repair_what_can_be_redone(cfg: Config, db: Database, report: Report) -> list[str]:
    """Only what GhostRoll can make again from what it holds: stale temp files removed
    (never a living run's), sessions with missing share images set back to be processed,
    objects missing from the bucket forgotten by the upload ledger so the next publish
    sends them. Originals are never touched: a lost one needs a backup or its card."""
    from ghostroll.storage.incoming import clear_stale

    done: list[str] = []
    kinds = {p.kind for p in report.problems}
    if STALE_TEMP in kinds:
        done.append(f"removed {clear_stale(cfg.storage.base_dir)} stale temp file(s)")
    remake = sorted({p.session for p in report.problems
                     if p.kind in (DERIVED_MISSING, GALLERY_MISSING) and p.session})
    for sid in remake:
        queued = db.publish_entry(sid) is not None
        db.set_session_state(sid, dbm.COPIED)
        if queued:
            db.enqueue_publish(sid)
        done.append(f"{sid}: will be processed again{' and published' if queued else ''} "
                    "by `ghostroll work` (the appliance runs it by itself)")
    resend: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in report.problems:
        if p.kind in (OBJECT_MISSING, OBJECT_SIZE) and p.session and p.path:
            bucket, _, key = p.path.removeprefix("s3://").partition("/")
            resend[(p.session, bucket)].add(key)
    for (sid, bucket), keys in sorted(resend.items()):
        db.upload_ledger(cfg.s3.endpoint_id, bucket).forget(keys)
        db.enqueue_publish(sid)
        done.append(f"{sid}: {len(keys)} object(s) will be uploaded again by "
                    "`ghostroll publish`")
    return done


# ---------------------------------------------------------------- --read-data


class Checkpoint:
    """Which disk copies this `--read-data` pass has re-hashed already, one line each, so
    an interrupted pass continues where it stopped. Removed when a pass completes."""

    def __init__(self, path: Path, scope: str, restart: bool) -> None:
        self.path, self.scope = path, scope
        self.done: set[str] = set() if restart else self._load()
        self._file: Any = None

    def _load(self) -> set[str]:
        try:
            header, *lines = self.path.read_text(encoding="utf-8",
                                                 errors="surrogateescape").splitlines()
        except (OSError, ValueError):
            return set()
        try:
            if json.loads(header).get("scope") != self.scope:
                return set()
        except (ValueError, AttributeError):
            return set()
        return set(lines)

    @staticmethod
    def key(copy: CopyRow) -> str:
        return f"{copy.sha256}\t{copy.location}\t{copy.target}"

    def add(self, copy: CopyRow) -> None:
        if self._file is None:
            fresh = not self.done
            self._file = open(self.path, "w" if fresh else "a", encoding="utf-8",  # noqa: SIM115
                              errors="surrogateescape")
            os.chmod(self.path, 0o600)
            if fresh:
                self._file.write(json.dumps({"scope": self.scope}) + "\n")
        self._file.write(self.key(copy) + "\n")
        self._file.flush()
        self.done.add(self.key(copy))

    def finish(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def checkpoint_path(cfg: Config) -> Path:
    return cfg.storage.db_path.with_name(cfg.storage.db_path.name + ".verify-read")


def check_data(cfg: Config, report: Report, intact: list[CopyRow], roots: dict[str, str],
               options: Options, progress: HashProgress | None) -> None:
    """Re-hash every intact disk copy not yet re-hashed in this pass."""
    scope = options.session.id if options.session else "all"
    checkpoint = Checkpoint(checkpoint_path(cfg), scope, options.restart)
    todo = [c for c in intact if Checkpoint.key(c) not in checkpoint.done]
    report.checked["hash_resumed"] += len(intact) - len(todo)
    total = sum(c.size for c in todo)
    tally = {"copies": 0, "bytes": 0}

    def on_bytes(n: int) -> None:
        tally["bytes"] += n
        if progress is not None:
            progress(tally["copies"], len(todo), tally["bytes"], total)

    try:
        for copy in todo:
            try:
                faults.fault("verify.read")
                digest = sha256_file(Path(copy.target), on_bytes)
            except OSError as exc:
                report.problems.append(Problem(
                    COPY_UNREADABLE, session_of(copy.target, roots), copy.target,
                    f"cannot read the {copy.location} copy: {exc}", "check the disk "
                    "(dmesg); copy the file back from a backup or its card"))
                continue
            report.checked["hashed"] += 1
            report.checked["hashed_bytes"] += copy.size
            if digest != copy.sha256:
                report.problems.append(Problem(
                    COPY_DAMAGED, session_of(copy.target, roots), copy.target,
                    f"the {copy.location} copy no longer matches its sha256 (read "
                    f"{digest[:12]}…, verified {copy.sha256[:12]}…): its bytes changed on "
                    "disk", f"copy the file back from a backup or from its card to "
                    f"{copy.target}, then run `ghostroll verify --read-data` again"))
            else:
                checkpoint.add(copy)
            tally["copies"] += 1
            on_bytes(0)
    except BaseException:
        checkpoint.close()
        raise
    checkpoint.finish()


def sha256_file(path: Path, on_bytes: Callable[[int], object] | None = None) -> str:
    """The file's sha256 read from disk (not the page cache), `CHUNK` bytes at a time;
    `on_bytes` gets the size of each chunk read."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    finally:
        os.close(fd)
    return digest.hexdigest()


# ---------------------------------------------------------------- the bucket


class _Offline(Exception):
    pass


class _Bucket:
    """HEAD requests for one verify run; the first sign of being offline becomes one
    warning and every later bucket check is skipped."""

    def __init__(self, cfg: Config, db: Database, report: Report) -> None:
        self.cfg, self.db, self.report = cfg, db, report
        self.client: Any = None  # made at the first request: no bucket, no boto3 import
        self.offline = False

    def _client(self) -> Any:
        if self.client is None:
            from ghostroll.publish.s3client import make_client

            self.client = make_client(self.cfg.s3, connect_timeout_s=5, read_timeout_s=15)
        return self.client

    def _went_offline(self, exc: Exception) -> None:
        if not self.offline:
            self.report.warnings.append(Problem(
                OFFLINE, None, None, f"cannot check the bucket: offline ({exc})",
                "run `ghostroll verify` again when the network is up"))
        self.offline = True

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size, None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        except BotoCoreError as exc:
            raise _Offline(str(exc)) from exc
        self.report.checked["objects"] += 1
        return int(head["ContentLength"])

    def check_copy(self, copy: CopyRow, session: str | None) -> None:
        """A `bucket` copy: target is "endpoint bucket key"."""
        if self.offline:
            self.report.checked["bucket_copies_skipped"] += 1
            return
        endpoint, bucket, key = copy.target.split(" ", 2)
        if endpoint != self.cfg.s3.endpoint_id:
            self.report.warnings.append(Problem(
                NOT_CHECKED, session, copy.target, f"copy recorded at endpoint {endpoint}, "
                "not the configured one: not checked", "verify with that endpoint's config"))
            return
        self._object(session, bucket, key, copy.size, COPY_MISSING,
                     "copy it there again (or record it pruned)")

    def _lookup(self, session: str | None, bucket: str, key: str) -> tuple[bool, int | None]:
        """(checked, size or None when absent); not checked when offline or refused (the
        reason is reported once here)."""
        from botocore.exceptions import ClientError

        try:
            return True, self.size(bucket, key)
        except _Offline as exc:
            self._went_offline(exc)
        except ClientError as exc:
            self.report.problems.append(Problem(
                BUCKET_ERROR, session, f"s3://{bucket}/{key}", f"the bucket refused the "
                f"check: {exc}", "check the credentials and s3_bucket (`ghostroll doctor`)"))
        return False, None

    def _object(self, session: str | None, bucket: str, key: str, size: int | None,
                kind: str, fix: str) -> bool:
        """An object recorded with `size`: is it there, that size? True when present."""
        checked, found = self._lookup(session, bucket, key)
        where = f"s3://{bucket}/{key}"
        if not checked:
            return False
        if found is None:
            self.report.problems.append(Problem(
                kind, session, where, "object recorded as uploaded is not in the bucket", fix))
        elif size is not None and found != size:
            self.report.problems.append(Problem(
                OBJECT_SIZE, session, where, f"object has {found} bytes, {size} were "
                "uploaded", fix))
        return found is not None

    def check_published(self, session: SessionRow, gallery: dict[str, Any]) -> None:
        """Every object the gallery needs and every one the ledger records is in the
        configured bucket. Objects missing from the ledger are looked for too (a device
        upgraded from schema 2 started with an empty ledger)."""
        if self.offline:
            return
        s3 = self.cfg.s3
        if not s3.enabled:
            self.report.warnings.append(Problem(
                NOT_CHECKED, session.id, None, "published, but no bucket is configured "
                "here: its objects were not checked", "run verify with the bucket's settings"))
            return
        from ghostroll.publish.publisher import prefix_for

        prefix, bucket = prefix_for(self.cfg, session.id), s3.s3_bucket
        ledger = {key: size for key, _, size in
                  self.db.upload_ledger(s3.endpoint_id, bucket).keys(prefix)}
        wanted = [prefix + k for k in expected_objects(gallery.get("items", []),
                                                       gallery.get("zip_key"))]
        resend = ("`ghostroll verify --repair` forgets the upload, then `ghostroll publish` "
                  "sends it again")
        present: str | None = None
        never: list[str] = []  # needed, not in the ledger, not in the bucket
        for key in dict.fromkeys(wanted + sorted(ledger)):
            if key in ledger:
                found = self._object(session.id, bucket, key, ledger[key], OBJECT_MISSING,
                                     resend)
            else:
                checked, size = self._lookup(session.id, bucket, key)
                found = size is not None
                if checked and not found:
                    never.append(key)
            if self.offline:
                return
            present = present or (key if found else None)
        reshare = f"`ghostroll reshare {session.id}` uploads it again"
        if never and len(never) == len(wanted) and not ledger:
            self.report.problems.append(Problem(
                NOT_UPLOADED, session.id, f"s3://{bucket}/{prefix}", "marked published, but "
                f"none of it is in bucket {bucket} at {s3.endpoint_id} (the bucket or "
                "endpoint changed since?)", reshare))
        else:
            self.report.problems.extend(Problem(
                NOT_UPLOADED, session.id, f"s3://{bucket}/{key}", "marked published, but "
                "this part of its gallery is not in the bucket", reshare) for key in never)
        if present is not None:
            self._unsigned_denied(session, present)

    def _unsigned_denied(self, session: SessionRow, key: str) -> None:
        from ghostroll.commands.doctor import http_status
        from ghostroll.publish import links

        url = links.presign_get(self._client(), self.cfg.s3.s3_bucket, key, 60).split("?")[0]
        try:
            status = http_status(url)
        except OSError as exc:
            self._went_offline(exc)
            return
        self.report.checked["unsigned_gets"] += 1
        if status == 200:
            self.report.problems.append(Problem(
                BUCKET_PUBLIC, session.id, f"s3://{self.cfg.s3.s3_bucket}/{key}",
                "a gallery object is readable without a signature: the bucket is PUBLIC",
                "remove public access (bucket policy / ACL); only L/* may be public "
                "(docs/publishing.md, `ghostroll doctor`)"))


# ---------------------------------------------------------------- small I/O helpers


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


# ---------------------------------------------------------------- reports


def last_result_path(db_path: Path) -> Path:
    """The last whole-device result, kept next to the database for the idle screen."""
    return db_path.with_name(db_path.name + ".verify.json")


def save_last_result(cfg: Config, report: Report) -> None:
    write_json_atomic(last_result_path(cfg.storage.db_path), _shown_all(report.as_json()),
                      mode=0o640)


def idle_line(result: dict[str, Any]) -> str:
    """What the idle screen says about a saved result ("" when all is well)."""
    count = len(result.get("problems", []))
    if result.get("ok", True) or not count:
        return ""
    return f"verify: {count} problem{'s' if count != 1 else ''} · ssh: ghostroll verify"


def report_text(report: Report) -> str:
    """The checklist for people: general findings, then one entry per session."""
    marks = {True: "✓", False: "✗"}
    found = report.problems + report.warnings
    database_ok = not any(p.kind == DATABASE for p in report.problems)
    lines = [f"{marks[database_ok]} database integrity"]
    lines += _problem_lines([p for p in found if p.session is None], report)
    titles = {s.id: f"{s.id} (#{s.number}, {s.state})" for s in report.sessions}
    for p in found:  # a copy in a session outside --session still gets a heading
        if p.session is not None and p.session not in titles:
            titles[p.session] = p.session
    for sid, title in titles.items():
        mine = [p for p in found if p.session == sid]
        bad = any(p in report.problems for p in mine)
        lines.append(f"{marks[not bad]} {_shown(title)}")
        lines += _problem_lines(mine, report)
    lines += [f"repaired: {line}" for line in report.repaired]
    if report.checked["hash_resumed"]:
        lines.append(f"  ({report.checked['hash_resumed']} copies were re-hashed earlier in "
                     "this pass; `--restart` to start over)")
    lines.append(summary_line(report))
    return "\n".join(lines)


def _problem_lines(problems: list[Problem], report: Report) -> list[str]:
    lines = []
    for p in problems:
        mark = "✗" if p in report.problems else "!"
        lines.append(f"    {mark} {p.kind}: {_shown(p.message)}")
        if p.path:
            lines.append(f"        where: {_shown(p.path)}")
        lines.append(f"        fix: {_shown(p.fix)}")
    return lines


def _shown(text: str) -> str:
    """A file name that is not UTF-8 (kept as surrogate escapes) shown as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def report_json(report: Report) -> str:
    return json.dumps(_shown_all(report.as_json()), indent=2, ensure_ascii=False)


def _shown_all(value: Any) -> Any:
    if isinstance(value, str):
        return _shown(value)
    if isinstance(value, dict):
        return {k: _shown_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown_all(v) for v in value]
    return value


def unusable_json(message: str) -> str:
    """The --json document when there is nothing to check with (exit 2)."""
    problem = Problem(UNUSABLE, None, None, message, "fix the setting or the file named above")
    return json.dumps({"ok": False, "problems": [asdict(problem)], "warnings": [],
                       "checked": {}}, indent=2, ensure_ascii=False)


class HashBar:
    """The --read-data progress bar on a terminal (nothing otherwise)."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.clock, self.last = out, clock, float("-inf")

    def __call__(self, copies: int, of: int, done: int, total: int) -> None:
        now = self.clock()
        if now - self.last < 0.2 and copies < of:
            return
        self.last = now
        width = 24
        filled = int(width * min(1.0, done / total)) if total else width
        self.out.write(f"\rre-hashing [{'#' * filled}{'.' * (width - filled)}] {copies}/{of} "
                       f"copies {human_bytes(done)}/{human_bytes(total)}\x1b[K")
        if copies >= of:
            self.out.write("\n")
        self.out.flush()
