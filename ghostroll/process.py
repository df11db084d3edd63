"""The processing phase of a session: verified originals → share images, thumbnails,
the local gallery and share.zip. Reads only the session's own copies, never the card.

Per-file problems (a corrupt photo, a RAW without a usable preview, a file too large for
this device) are itemised in manifest.json and the summary; the originals stay ingested
whatever happens here.

Two ways a session's processing can end without it being processed:
- stopped (`ProcessingStopped`, or any environmental OSError: disk full, our disk
  read-only or failing, an original missing): the session stays `copied` and is processed
  again by the next run or the appliance; no temp file is left behind.
- set aside (any other exception outside one file's decode: a bug, a broken manifest):
  `sessions.process_error` holds the message, the session's `ghostroll.log` the
  traceback; it is shown by `sessions`, `doctor` and the panel, never retried by itself
  and never blocks later sessions. `ghostroll sessions retry ID` takes it back."""

from __future__ import annotations

import errno
import json
import logging
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from ghostroll.card.media import Kind
from ghostroll.config import Config, ImagesConfig
from ghostroll.derive import DeriveJob, DeriveResult, derive_many, numbering_gaps
from ghostroll.derive.images import describe, environmental
from ghostroll.derive.video import plays_inline
from ghostroll.errors import DatabaseError, DiskFullError, ProcessingStopped
from ghostroll.gallery import model as gm
from ghostroll.gallery.render import local_resolver, render_index
from ghostroll.gallery.shots import CardEntry, Shot, plan_shots
from ghostroll.gallery.title import album_title
from ghostroll.gallery.ziparchive import ZipEntry, entry_names, write_share_zip
from ghostroll.logs import session_log
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.incoming import held_lock
from ghostroll.storage.session import SessionLayout, write_json_atomic, write_text_atomic

log = logging.getLogger("ghostroll.process")
GALLERY_JSON = "gallery.json"  # the model, for publishing later
ALBUM_NAME = "album-name.txt"  # in the session folder: the name given by `ghostroll rename`


@dataclass
class ProcessResult:
    session_id: str
    shots: int = 0
    made: int = 0  # share image + thumbnail written
    videos: int = 0
    problems: list[str] = field(default_factory=list)  # per-file errors and notes
    info: list[str] = field(default_factory=list)  # e.g. numbering gaps
    gallery: gm.Gallery | None = None
    stopped: str | None = None  # the environment failed: still pending, retried later
    set_aside: str | None = None  # failed unexpectedly: set aside until retried by hand
    elsewhere: bool = False  # another process is processing it right now


ProgressFn = Callable[[int, int], None]  # (done, total)
# Derivatives the streaming pipeline already made in this process, by the job it ran;
# a job that met a failing machine (disk full...) stops the session as it would here.
Ready = Mapping[DeriveJob, DeriveResult | ProcessingStopped]
SessionProgressFn = Callable[[str, int, int], None]  # (session id, done, total)

# Room a picture's derivatives take, bytes per share-image pixel: q90 share images of the
# camera samples measure 0.03-0.33 (0.19 on average); noise and small images up to ~0.5.
SHARE_BYTES_PER_PIXEL = 0.6
GALLERY_ALLOWANCE = 16 << 20  # index.html, gallery.json, manifest rewrite, the log


def session_entries(db: Database, session_id: str) -> list[CardEntry]:
    return [CardEntry(r["rel_path"], r["kind"], r["grp"], r["sha256"], r["size"])
            for r in db.session_files(session_id) if r["status"] == dbm.VERIFIED]


def stored_paths(db: Database, session_id: str) -> dict[str, str]:
    """Card path -> path under originals/, where the copy was stored under another name
    (a second content under one card path)."""
    return {r["rel_path"]: r["stored_path"] for r in db.session_files(session_id)
            if r["status"] == dbm.VERIFIED and r["stored_path"]}


def derivative_bytes(pictures: int, images: ImagesConfig) -> int:
    """Disk space the derivatives of `pictures` photos need: share image and thumbnail
    (3:2 at their long edges) and, when enabled, the share image again in share.zip
    (written as a temp file that replaces any older zip)."""
    share = images.share_max_long_edge ** 2 * 2 // 3 * SHARE_BYTES_PER_PIXEL
    thumb = images.thumb_max_long_edge ** 2 * 2 // 3 * SHARE_BYTES_PER_PIXEL
    in_zip = share if images.share_zip else 0
    return int(pictures * (share + thumb + in_zip)) + GALLERY_ALLOWANCE


def process_pending(cfg: Config, db: Database, progress: SessionProgressFn | None = None,
                    ready: Ready | None = None) -> list[ProcessResult]:
    """Process every session whose copy is complete, oldest first. A set-aside session
    is skipped; one failing unexpectedly is set aside and the next one goes on; an
    environmental stop ends the pass (the next session would meet the same disk)."""
    results = []
    for session in db.sessions():
        if session.state != dbm.COPIED or session.process_error:
            continue
        on_progress = None
        if progress is not None:
            def on_progress(done: int, total: int, sid: str = session.id) -> None:
                progress(sid, done, total)
        result = process_or_set_aside(cfg, db, session, on_progress, ready)
        if result.elsewhere:
            continue
        results.append(result)
        if result.stopped:
            break
    return results


def process_or_set_aside(cfg: Config, db: Database, session: SessionRow,
                         progress: ProgressFn | None = None,
                         ready: Ready | None = None) -> ProcessResult:
    """`process_session`, with its failures turned into a stopped or set-aside result.
    A session another process is working on is left to it (two runs on two cards both
    see the other's finished copy as pending)."""
    with held_lock(session.path, "process") as mine:
        if not mine:
            log.info("session %s is being processed by another run", session.id)
            return ProcessResult(session.id, elsewhere=True)
        return _process_guarded(cfg, db, session, progress, ready)


def _process_guarded(cfg: Config, db: Database, session: SessionRow,
                     progress: ProgressFn | None, ready: Ready | None) -> ProcessResult:
    layout = SessionLayout(session.path)
    try:
        return process_session(cfg, db, session, progress, ready)
    except (DiskFullError, DatabaseError) as exc:  # the database or its disk: not the session's
        reason = str(exc)
    except OSError as exc:
        if not isinstance(exc, ProcessingStopped) and not environmental(exc):
            return _set_aside(db, session, layout, exc)
        reason = str(exc) if isinstance(exc, ProcessingStopped) else describe(exc)
    except sqlite3.OperationalError as exc:  # locked, disk full or failing: not the session's
        reason = f"database: {exc}"
    except Exception as exc:
        return _set_aside(db, session, layout, exc)
    message = (f"processing stopped: {reason}; {session.id} stays pending and is "
               "processed on the next run (or by the appliance)")
    _log_to_session(layout, logging.ERROR, message)
    return ProcessResult(session.id, stopped=message)


def _set_aside(db: Database, session: SessionRow, layout: SessionLayout,
               exc: Exception) -> ProcessResult:
    reason = str(exc).splitlines()[0][:300] if str(exc) else ""
    message = f"processing failed: {type(exc).__name__}" + (f": {reason}" if reason else "")
    db.set_process_error(session.id, message)
    hint = f"`ghostroll sessions retry {session.number}` tries again"
    _log_to_session(layout, logging.ERROR, f"session {session.id} set aside: {message}; {hint}",
                    exc)
    return ProcessResult(session.id, set_aside=f"{message} ({hint})")


def _log_to_session(layout: SessionLayout, level: int, message: str,
                    exc: BaseException | None = None) -> None:
    """Logged as usual and into the session's ghostroll.log when that can be written."""
    try:
        with session_log(layout.log, logger=log):
            log.log(level, "%s", message, exc_info=exc)
    except OSError:
        log.log(level, "%s", message, exc_info=exc)


def process_session(cfg: Config, db: Database, session: SessionRow,
                    progress: ProgressFn | None = None,
                    ready: Ready | None = None) -> ProcessResult:
    """Raises `ProcessingStopped` (or an environmental OSError) when the machine fails;
    a problem of one file is in the result."""
    layout = SessionLayout(session.path)
    layout.create()
    with session_log(layout.log, logger=logging.getLogger("ghostroll")) as handler:
        handler.setLevel(logging.INFO)
        return _process(cfg, db, session, layout, progress, ready or {})


def _process(cfg: Config, db: Database, session: SessionRow, layout: SessionLayout,
             progress: ProgressFn | None, ready: Ready) -> ProcessResult:
    shots = plan_shots(session_entries(db, session.id))
    stored = stored_paths(db, session.id)
    jobs = [_job(layout, shot, stored) for shot in shots]
    for job in jobs:
        early = ready.get(job)
        if isinstance(early, ProcessingStopped):
            raise early
    todo = [job for job in jobs if job not in ready]
    # room only for what is still to make: the stream's derivatives are on disk already
    _check_space(cfg, layout, [shot for shot, job in zip(shots, jobs, strict=True)
                               if job not in ready])
    log.info("processing session %s: %d shots", session.id, len(shots))
    result = ProcessResult(session.id, shots=len(shots))
    done = len(jobs) - len(todo)

    def on_result(_: DeriveResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(jobs))

    made = dict(zip(todo, derive_many(todo, cfg.images, on_result=on_result), strict=True))
    derived = [made[job] if job in made else _result(ready[job]) for job in jobs]
    items: list[gm.GalleryItem] = []
    for shot, outcome in zip(shots, derived, strict=True):
        item = gallery_item(shot, outcome, stored)
        if outcome.error:
            result.problems.append(f"{shot.source.rel_path}: {outcome.error}")
        elif outcome.note:
            result.problems.append(f"{shot.source.rel_path}: {outcome.note}")
        if item is not None:
            items.append(item)
            result.made += item.kind == "photo"
            result.videos += item.kind == "video"
    result.info = _gaps(shots)
    for line in result.info:  # for the session's log: deleted in the camera, most often
        log.info("numbering skips %s", line)
    zip_key = None
    if cfg.images.share_zip and any(i.share for i in items):
        write_share_zip(_zip_entries(layout, items), layout.derived / "share.zip")
        zip_key = "share.zip"
    result.gallery = gm.Gallery(title=gallery_title(layout, session, items), session_id=session.id,
                                items=gm.sort_items(items), zip_key=zip_key,
                                empty_note=None if items else _empty_note(shots, derived))
    save_gallery(layout, result.gallery)
    _annotate_manifest(layout, shots, derived)
    db.set_session_state(session.id, dbm.PROCESSED)
    log.info("session %s processed: %d photos, %d videos, %d problems", session.id,
             result.made, result.videos, len(result.problems))
    return result


def _result(early: DeriveResult | ProcessingStopped) -> DeriveResult:
    assert isinstance(early, DeriveResult)  # a stop was raised above
    return early


def _check_space(cfg: Config, layout: SessionLayout, shots: list[Shot]) -> None:
    pictures = sum(1 for s in shots if s.kind == "photo")
    limit = cfg.images.share_video_max_mb * 1_000_000
    clips = [s.source.size for s in shots if s.kind == "video" and s.source.size <= limit]
    clips += [s.motion.size for s in shots if s.motion and s.motion.size <= limit]
    needed = derivative_bytes(pictures, cfg.images) + sum(clips)
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        what = " and ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in
                            ((pictures, "photo"), (len(clips), "video clip")) if n)
        raise ProcessingStopped(
            f"not enough space for the share images and the gallery"
            f"{f' ({what} still to make)' if what else ''}: about "
            f"{needed / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free in {layout.root.parent}; "
            "free some space", errno.ENOSPC)


def _job(layout: SessionLayout, shot: Shot, stored: dict[str, str]) -> DeriveJob:
    def original(entry: CardEntry) -> Path:
        return layout.original(stored.get(entry.rel_path, entry.rel_path))

    return DeriveJob(
        source=original(shot.source),
        kind=shot.source.kind,
        share=layout.share_dir / f"{shot.id}.jpg",
        thumb=layout.thumbs_dir / f"{shot.id}.jpg",
        poster=original(shot.poster) if shot.poster else None,
        motion=original(shot.motion) if shot.motion else None,
    )


def gallery_item(shot: Shot, outcome: DeriveResult,
                 stored: dict[str, str]) -> gm.GalleryItem | None:
    has_images = outcome.share is not None and outcome.thumb is not None
    if shot.kind == "photo" and not has_images:
        return None  # listed as a problem; the original is kept
    meta = outcome.meta
    share = f"share/{shot.id}.jpg" if has_images and shot.kind == "photo" else None
    clip = f"share/{outcome.video.name}" if outcome.video is not None else None
    ext = outcome.video.suffix.lstrip(".") if outcome.video is not None else ""
    plays = clip is not None and plays_inline(ext, outcome.video_codec)
    is_video = shot.kind == "video"
    return gm.GalleryItem(
        id=shot.id,
        name=shot.name,
        kind=shot.kind,
        # a small picture shared as it is serves as its own thumbnail (derive/lossless.py)
        thumb=(None if outcome.thumb is None else f"share/{shot.id}.jpg"
               if share is not None and outcome.thumb == outcome.share
               else f"thumbs/{shot.id}.jpg"),
        share=clip if is_video else share,
        original=("originals/" + stored.get(shot.source.rel_path, shot.source.rel_path)
                  if shot.kind == "video" else None),
        width=outcome.width,
        height=outcome.height,
        captured=meta.captured if meta else None,
        camera=meta.camera if meta else "",
        captured_from=meta.captured_source if meta else "",
        size_bytes=(outcome.video.stat().st_size if outcome.video and is_video
                    else shot.source.size),
        duration_s=outcome.duration_s,
        playable=plays and is_video,
        motion=clip if plays and not is_video else None,
    )


def _zip_entries(layout: SessionLayout, items: list[gm.GalleryItem]) -> list[ZipEntry]:
    """Share images under their card names, dated as the camera dated them."""
    photos = [i for i in gm.sort_items(items) if i.kind == "photo" and i.share]
    names = entry_names([i.name for i in photos])
    return [ZipEntry(layout.derived / str(i.share), name, i.captured)
            for i, name in zip(photos, names, strict=True)]


def _gaps(shots: list[Shot]) -> list[str]:
    by_folder: dict[str, list[str]] = {}
    for shot in shots:
        path = PurePosixPath(shot.source.rel_path)
        by_folder.setdefault(str(path.parent), []).append(path.name)
    lines: list[str] = []
    for folder, names in sorted(by_folder.items()):
        lines.extend(f"{folder}: {gap}" for gap in numbering_gaps(names))
    return lines


def gallery_title(layout: SessionLayout, session: SessionRow,
                  items: list[gm.GalleryItem]) -> str:
    """The name given with `ghostroll rename`, else one from the card label and the
    capture dates (see gallery/title.py)."""
    try:
        given = (layout.root / ALBUM_NAME).read_text(encoding="utf-8").strip()
    except OSError:
        given = ""
    if given:
        return given
    created = date.fromisoformat(session.created_utc[:10])
    return album_title(session.volume_label, gm.capture_dates(items), created)


def _empty_note(shots: list[Shot], derived: list[DeriveResult]) -> str:
    """Why a gallery shows nothing, said to the person who opens it."""
    if not shots:
        return "This card held nothing to show: no photos or videos were found."
    raws = sum(1 for s in shots if s.source.kind == Kind.RAW)
    kept = f"{len(shots)} file{'s' if len(shots) != 1 else ''}"
    if raws == len(shots):
        return (f"{kept} (RAW) kept safely on the device, but none has a preview large "
                "enough to show here; open the originals with a RAW editor.")
    reasons = sorted({d.error or d.note or "" for d in derived} - {""})
    why = f": {reasons[0]}" if len(reasons) == 1 else ""
    return f"{kept} kept safely on the device; none could be shown here{why}."


def save_gallery(layout: SessionLayout, gallery: gm.Gallery) -> None:
    """The local page and derived/gallery.json (which publishing renders from)."""
    write_text_atomic(layout.index, render_index(gallery, local_resolver()))
    write_json_atomic(layout.derived / GALLERY_JSON, {
        "title": gallery.title, "zip_key": gallery.zip_key, "empty_note": gallery.empty_note,
        "items": gm.items_to_json(gallery.items)})


def _annotate_manifest(layout: SessionLayout, shots: list[Shot],
                       derived: list[DeriveResult]) -> None:
    """Add each shot's derivative outcome to the card phase's manifest entries."""
    try:
        data = json.loads(layout.manifest.read_text())
    except (OSError, ValueError):
        return
    outcome = {shot.source.rel_path: d for shot, d in zip(shots, derived, strict=True)}
    for entry in data.get("files", []):
        d = outcome.get(entry["card_path"])
        if d is None:
            continue
        entry["derive_error"] = d.error
        entry["derive_note"] = d.note
        entry["captured"] = d.meta.captured.isoformat() if d.meta and d.meta.captured else None
        entry["captured_from"] = d.meta.captured_source if d.meta else None
    write_json_atomic(layout.manifest, data)


def load_gallery(layout: SessionLayout, session_id: str) -> gm.Gallery:
    """The gallery model a processed session saved (raises OSError/ValueError if absent)."""
    data = json.loads((layout.derived / GALLERY_JSON).read_text(encoding="utf-8"))
    return gm.Gallery(title=data["title"], session_id=session_id,
                      items=gm.items_from_json(data["items"]), zip_key=data.get("zip_key"),
                      empty_note=data.get("empty_note"))
