"""Listing a card: the camera trees, without reading any file content.

`scan_card(root)` walks `DCIM/` and the camera video trees under `PRIVATE/` (AVCHD,
M4ROOT/XAVC), skipping OS junk (counted, never silently), and returns every file with
its size and mtime. Names, sizes and mtimes are all a re-inserted card needs to be
recognised (see plan.py); content is read once, later, by the copier.

A name that is not valid UTF-8 (a card written with another code page, a hostile
folder) is kept: `rel_path` shows each undecodable byte as `\\xNN` (what the database,
the manifest and people see), `source` is the name as the filesystem spells it."""

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


MAX_DEPTH = 64  # folders below a camera tree; cameras use two


@dataclass(frozen=True)
class CardFile:
    rel_path: str  # POSIX path relative to the card root, e.g. "DCIM/100CANON/IMG_0001.JPG"
    size: int
    mtime_ns: int
    raw_path: str | None = None  # the filesystem's spelling, when rel_path had to escape it

    @property
    def source(self) -> str:
        """The path to open on the card (relative to its root)."""
        return self.raw_path or self.rel_path

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


def display_path(rel: str) -> str:
    """A path from the filesystem as text: undecodable bytes (surrogate escapes) become
    `\\xNN`, so it can be stored, logged and shown."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def find_trees(root: Path, name: str) -> list[Path]:
    """Top-level folders by name, case-insensitively (FAT does not care about case; a
    folder copied to a case-sensitive disk may hold both `DCIM/` and `dcim/`)."""
    try:
        with os.scandir(root) as entries:
            return sorted(Path(entry.path) for entry in entries
                          if entry.name.upper() == name and entry.is_dir(follow_symlinks=False))
    except OSError as exc:
        raise CardError(f"cannot read the card at {root}: {exc.strerror or exc}") from exc


def missing_dcim_text(root: Path) -> str:
    """Why `root` is not a card, with the folder to give instead when `root` is inside
    one (DCIM itself, or a camera folder like DCIM/100CANON)."""
    for up in (root, *root.parents):
        if up.name.upper() == "DCIM" and up.parent != up:
            return (f"{root} is inside the card's DCIM/ folder: give the card itself, "
                    f"e.g. ghostroll run {up.parent}")
    return (f"{root} has no DCIM/ folder: not a camera card "
            "(cameras store photos under DCIM/)")


def scan_card(root: Path) -> CardListing:
    """Everything in the camera trees. No DCIM/ is an error; an empty DCIM/ is not."""
    if not root.is_dir():
        raise CardError(f"{root} is not a mounted card or folder")
    if not find_trees(root, "DCIM"):
        raise CardError(missing_dcim_text(root))
    listing = CardListing(root=root)
    for top in CAMERA_TREES:
        for tree in find_trees(root, top):
            _walk(tree, root, listing)
    listing.files.sort(key=lambda f: f.rel_path)
    return listing


def _walk(tree: Path, root: Path, listing: CardListing) -> None:
    """Depth-first, without recursion (a hostile card may nest folders thousands deep)."""
    stack: list[tuple[Path, int]] = [(tree, 0)]
    while stack:
        folder, depth = stack.pop()
        rel_folder = display_path(folder.relative_to(root).as_posix())
        if depth > MAX_DEPTH:
            listing.problems.append(f"{rel_folder}/: nested more than {MAX_DEPTH} folders deep "
                                    "below the camera folder; not read")
            continue
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            listing.problems.append(f"{rel_folder}/: cannot be read ({exc.strerror or exc})")
            continue
        subfolders = []
        for entry in entries:
            raw = Path(entry.path).relative_to(root).as_posix()
            rel = display_path(raw)
            if is_junk(entry.name):
                listing.junk.append(rel)
                continue
            try:
                if entry.is_symlink():
                    listing.problems.append(f"{rel}: symbolic link, not followed")
                elif entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif entry.is_file():
                    st = entry.stat()
                    listing.files.append(CardFile(rel, st.st_size, st.st_mtime_ns,
                                                  raw if raw != rel else None))
                else:
                    listing.problems.append(f"{rel}: not a regular file")
            except OSError as exc:
                listing.problems.append(f"{rel}: cannot be read ({exc.strerror or exc})")
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))
