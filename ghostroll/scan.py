"""Listing a card: the camera trees, without reading any file content.

`scan_card(root)` walks `DCIM/` and the camera video trees under `PRIVATE/` (AVCHD,
M4ROOT/XAVC), skipping OS junk (counted, never silently), and returns every file with
its size and mtime. Names, sizes and mtimes are all a re-inserted card needs to be
recognised (see plan.py); content is read once, later, by the copier."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ghostroll.errors import CardError

CAMERA_TREES = ("DCIM", "PRIVATE")
JUNK_NAMES = frozenset({
    ".trashes", ".spotlight-v100", ".fseventsd", ".ds_store", "system volume information",
    "thumbs.db", ".temporaryitems", "$recycle.bin", "desktop.ini",
})


@dataclass(frozen=True)
class CardFile:
    rel_path: str  # POSIX path relative to the card root, e.g. "DCIM/100CANON/IMG_0001.JPG"
    size: int
    mtime_ns: int

    @property
    def group(self) -> str:
        """Files of one shot share a group: same folder, same stem (RAW+JPEG, HEIC+MOV
        Live Photo, MOV+THM)."""
        path = PurePosixPath(self.rel_path)
        return f"{path.parent}/{path.name.split('.', 1)[0]}"


@dataclass
class CardListing:
    root: Path
    files: list[CardFile] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable folders, odd entries

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def is_junk(name: str) -> bool:
    return name.startswith("._") or name.lower() in JUNK_NAMES


def find_tree(root: Path, name: str) -> Path | None:
    """A top-level folder by name, case-insensitively (FAT does not care about case)."""
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.upper() == name and entry.is_dir(follow_symlinks=False):
                    return Path(entry.path)
    except OSError as exc:
        raise CardError(f"cannot read the card at {root}: {exc.strerror or exc}") from exc
    return None


def scan_card(root: Path) -> CardListing:
    """Everything in the camera trees. No DCIM/ is an error; an empty DCIM/ is not."""
    if not root.is_dir():
        raise CardError(f"{root} is not a mounted card or folder")
    dcim = find_tree(root, "DCIM")
    if dcim is None:
        raise CardError(f"{root} has no DCIM/ folder: not a camera card "
                        "(cameras store photos under DCIM/)")
    listing = CardListing(root=root)
    for top in CAMERA_TREES:
        tree = dcim if top == "DCIM" else find_tree(root, top)
        if tree is not None:
            _walk(tree, root, listing)
    listing.files.sort(key=lambda f: f.rel_path)
    return listing


def _walk(folder: Path, root: Path, listing: CardListing) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        rel = folder.relative_to(root).as_posix()
        listing.problems.append(f"{rel}/: cannot be read ({exc.strerror or exc})")
        return
    for entry in entries:
        rel = Path(entry.path).relative_to(root).as_posix()
        if is_junk(entry.name):
            listing.junk.append(rel)
            continue
        try:
            if entry.is_symlink():
                listing.problems.append(f"{rel}: symbolic link, not followed")
            elif entry.is_dir():
                _walk(Path(entry.path), root, listing)
            elif entry.is_file():
                st = entry.stat()
                listing.files.append(CardFile(rel, st.st_size, st.st_mtime_ns))
            else:
                listing.problems.append(f"{rel}: not a regular file")
        except OSError as exc:
            listing.problems.append(f"{rel}: cannot be read ({exc.strerror or exc})")
