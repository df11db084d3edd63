"""What a shared file may keep of its original's metadata: one allow-list, one function.

Every path that writes a file a recipient downloads (share JPEGs, zip entries, video
remuxes) asks `shared_exif` what to embed. Anything not listed is dropped: GPS, make and
model, maker notes, serial numbers, owner names."""

from __future__ import annotations

from PIL import Image

EXIF_IFD = 0x8769
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
# Tags of the Exif sub-IFD a shared file keeps: when it was taken, in the camera's own
# wall-clock time and (when the camera wrote it) its UTC offset. Photo apps import the
# date from these; nothing else is needed for that.
KEPT_EXIF_TAGS: frozenset[int] = frozenset({DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL})


def shared_exif(exif: Image.Exif | None) -> bytes | None:
    """The EXIF block to embed in a shared file, or None when nothing is kept."""
    if exif is None or not KEPT_EXIF_TAGS:
        return None
    source = exif.get_ifd(EXIF_IFD)
    kept = {tag: value for tag, value in source.items() if tag in KEPT_EXIF_TAGS}
    if not kept:
        return None
    out = Image.Exif()
    out.get_ifd(EXIF_IFD).update(kept)
    return out.tobytes()
