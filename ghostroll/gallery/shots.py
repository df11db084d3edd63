"""From card files to shots: what the gallery shows for each group. Pure.

A group is the files of one shot (same folder, same stem). Rules:
- a group with a JPEG, HEIC, TIFF or other picture (WebP, GIF, BMP, PNG, JPEG XL): that
  is the picture; RAW, Live Photo video and sidecars of the group are listed as its
  originals (RAW+JPEG: the JPEG is the picture);
- RAW alone: the picture comes from the RAW's embedded preview;
- a video: a video tile; a THM sidecar of the same group (a JPEG made by the camera)
  is its poster;
- sidecars and unknown files alone are not shown (they are in the manifest).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from ghostroll.card.media import Kind

PICTURE_KINDS = (Kind.JPEG, Kind.HEIC, Kind.TIFF, Kind.PICTURE)


@dataclass(frozen=True)
class CardEntry:
    rel_path: str
    kind: str
    group: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Shot:
    id: str  # stable and url-safe, unique within the session
    group: str
    kind: str  # "photo" | "video"
    source: CardEntry  # what derivatives are made from (picture, RAW, or video)
    poster: CardEntry | None = None  # video poster (THM)
    motion: CardEntry | None = None  # a Live Photo's clip (same folder and stem)
    originals: tuple[CardEntry, ...] = ()  # every card file of the shot

    @property
    def name(self) -> str:
        return PurePosixPath(self.source.rel_path).name


def plan_shots(entries: Iterable[CardEntry]) -> list[Shot]:
    groups: dict[str, list[CardEntry]] = defaultdict(list)
    for entry in entries:
        groups[entry.group].append(entry)
    shots: list[Shot] = []
    used_ids: set[str] = set()
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda e: e.rel_path)
        by_kind: dict[str, list[CardEntry]] = defaultdict(list)
        for member in members:
            by_kind[member.kind].append(member)
        pictures = [m for k in PICTURE_KINDS for m in by_kind.get(k, [])]
        videos = by_kind.get(Kind.VIDEO, [])
        raws = by_kind.get(Kind.RAW, [])
        thm = next((m for m in by_kind.get(Kind.SIDECAR, [])
                    if m.rel_path.lower().endswith(".thm")), None)
        if pictures:
            shots.append(_shot(group, "photo", pictures[0], None, members, used_ids,
                               motion=videos[0] if videos else None))
            for extra in pictures[1:]:  # e.g. IMG_1.JPG and IMG_1.HEIC: show both
                shots.append(_shot(group, "photo", extra, None, (extra,), used_ids))
            continue
        for video in videos:
            shots.append(_shot(group, "video", video, thm, members, used_ids))
        if raws and not videos:
            shots.append(_shot(group, "photo", raws[0], None, members, used_ids))
    return shots


def _shot(group: str, kind: str, source: CardEntry, poster: CardEntry | None,
          members: Iterable[CardEntry], used_ids: set[str],
          motion: CardEntry | None = None) -> Shot:
    base = _slug(source.rel_path)
    shot_id, n = base, 2
    while shot_id in used_ids:
        shot_id, n = f"{base}-{n}", n + 1
    used_ids.add(shot_id)
    return Shot(shot_id, group, kind, source, poster, motion, tuple(members))


def _slug(rel_path: str) -> str:
    """`DCIM/100CANON/IMG_0001.JPG` → `100canon-img_0001-jpg`: readable, url-safe."""
    parts = PurePosixPath(rel_path).parts
    tail = "-".join(parts[1:] if len(parts) > 1 and parts[0].upper() == "DCIM" else parts)
    text = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-"
                   for c in tail.replace(".", "-").lower())
    return "-".join(filter(None, text.split("-")))[:80] or "item"
