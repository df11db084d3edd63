"""The processing phase of a session: verified originals → share images, thumbnails,
the local gallery and share.zip. Reads only the session's own copies, never the card.

Per-file problems (a corrupt photo, a RAW without a usable preview) are itemised in
manifest.json and the summary; the originals stay ingested whatever happens here."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ghostroll import db as dbm
from ghostroll.config import Config
from ghostroll.db import Database, SessionRow
from ghostroll.derive import DeriveJob, DeriveResult, derive_many, numbering_gaps
from ghostroll.gallery import model as gm
from ghostroll.gallery.render import local_resolver, render_index
from ghostroll.gallery.ziparchive import write_share_zip
from ghostroll.session import SessionLayout, write_json_atomic, write_text_atomic
from ghostroll.shots import CardEntry, Shot, plan_shots

log = logging.getLogger("ghostroll.process")
GALLERY_JSON = "gallery.json"  # the model, for publishing later


@dataclass
class ProcessResult:
    session_id: str
    shots: int = 0
    made: int = 0  # share image + thumbnail written
    videos: int = 0
    problems: list[str] = field(default_factory=list)  # per-file errors and notes
    info: list[str] = field(default_factory=list)  # e.g. numbering gaps
    gallery: gm.Gallery | None = None


ProgressFn = Callable[[int, int], None]  # (done, total)


def session_entries(db: Database, session_id: str) -> list[CardEntry]:
    return [CardEntry(r["rel_path"], r["kind"], r["grp"], r["sha256"], r["size"])
            for r in db.session_files(session_id) if r["status"] == dbm.VERIFIED]


def process_session(cfg: Config, db: Database, session: SessionRow,
                    progress: ProgressFn | None = None) -> ProcessResult:
    layout = SessionLayout(session.path)
    layout.create()
    shots = plan_shots(session_entries(db, session.id))
    result = ProcessResult(session.id, shots=len(shots))
    jobs = [_job(layout, shot) for shot in shots]
    done = 0

    def on_result(_: DeriveResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(jobs))

    derived = derive_many(jobs, cfg.images, on_result=on_result) if jobs else []
    items: list[gm.GalleryItem] = []
    for shot, outcome in zip(shots, derived, strict=True):
        item = _item(shot, outcome, layout)
        if outcome.error:
            result.problems.append(f"{shot.source.rel_path}: {outcome.error}")
        elif outcome.note:
            result.problems.append(f"{shot.source.rel_path}: {outcome.note}")
        if item is not None:
            items.append(item)
            result.made += item.kind == "photo"
            result.videos += item.kind == "video"
    result.info = _gaps(shots)
    zip_key = None
    if cfg.images.share_zip and any(i.share for i in items):
        files = [(layout.derived / i.share, f"{Path(i.name).stem}-{i.id}.jpg")
                 for i in items if i.share]
        write_share_zip(files, layout.derived / "share.zip")
        zip_key = "share.zip"
    result.gallery = gm.Gallery(title=_title(session), session_id=session.id,
                                items=gm.sort_items(items), zip_key=zip_key)
    write_text_atomic(layout.index, render_index(result.gallery, local_resolver()))
    write_json_atomic(layout.derived / GALLERY_JSON, {
        "title": result.gallery.title, "zip_key": zip_key,
        "items": gm.items_to_json(result.gallery.items)})
    _annotate_manifest(layout, shots, derived)
    db.set_session_state(session.id, dbm.PROCESSED)
    log.info("session %s processed: %d photos, %d videos, %d problems", session.id,
             result.made, result.videos, len(result.problems))
    return result


def _job(layout: SessionLayout, shot: Shot) -> DeriveJob:
    return DeriveJob(
        source=layout.original(shot.source.rel_path),
        kind=shot.source.kind,
        share=layout.share_dir / f"{shot.id}.jpg",
        thumb=layout.thumbs_dir / f"{shot.id}.jpg",
        poster=layout.original(shot.poster.rel_path) if shot.poster else None,
    )


def _item(shot: Shot, outcome: DeriveResult, layout: SessionLayout) -> gm.GalleryItem | None:
    has_images = outcome.share is not None and outcome.thumb is not None
    if shot.kind == "photo" and not has_images:
        return None  # listed as a problem; the original is kept
    meta = outcome.meta
    return gm.GalleryItem(
        id=shot.id,
        name=shot.name,
        kind=shot.kind,
        thumb=f"thumbs/{shot.id}.jpg" if has_images else None,
        share=f"share/{shot.id}.jpg" if has_images and shot.kind == "photo" else None,
        original=("originals/" + shot.source.rel_path) if shot.kind == "video" else None,
        width=outcome.width,
        height=outcome.height,
        captured=meta.captured if meta else None,
        camera=meta.camera if meta else "",
        size_bytes=shot.source.size,
        duration_s=outcome.duration_s,
    )


def _gaps(shots: list[Shot]) -> list[str]:
    by_folder: dict[str, list[str]] = {}
    for shot in shots:
        path = PurePosixPath(shot.source.rel_path)
        by_folder.setdefault(str(path.parent), []).append(path.name)
    lines: list[str] = []
    for folder, names in sorted(by_folder.items()):
        lines.extend(f"{folder}: {gap}" for gap in numbering_gaps(names))
    return lines


def _title(session: SessionRow) -> str:
    return f"{session.volume_label or 'Photos'} · {session.created_utc[:10]}"


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
                      items=gm.items_from_json(data["items"]), zip_key=data.get("zip_key"))
