"""Adobe RGB marked only in EXIF, as many cameras do: ColorSpace "uncalibrated" (0xFFFF)
plus the interoperability index "R03" (DCF's Adobe RGB option), and no ICC profile.
Shown as sRGB such a photo looks washed out, so it gets an Adobe RGB (1998) profile,
built here from the published primaries, and is converted like any profiled file."""

from __future__ import annotations

import struct
from functools import cache

from PIL import Image

EXIF_IFD, INTEROP_IFD = 0x8769, 0xA005
COLOR_SPACE, INTEROP_INDEX = 0xA001, 0x0001
UNCALIBRATED, ADOBE_RGB_NONSTANDARD = 0xFFFF, 2
GAMMA = 563 / 256  # 2.19921875, as the specification writes it
D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) primaries, chromatically adapted to D50 (the ICC connection space)
PRIMARIES = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


def marked_adobe_rgb(exif: Image.Exif | None) -> bool:
    """ColorSpace uncalibrated with interop index R03 (or Sony's ColorSpace 2). Pure."""
    if exif is None:
        return False
    sub = exif.get_ifd(EXIF_IFD)
    space = sub.get(COLOR_SPACE)
    if space == ADOBE_RGB_NONSTANDARD:
        return True
    if space != UNCALIBRATED:
        return False
    index = exif.get_ifd(INTEROP_IFD).get(INTEROP_INDEX)
    if isinstance(index, bytes):
        index = index.decode("ascii", "replace")
    return isinstance(index, str) and index.strip("\x00 ").upper() == "R03"


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


@cache
def adobe_rgb_icc() -> bytes:
    """A matrix/TRC ICC v2 display profile for Adobe RGB (1998)."""
    name = b"Adobe RGB (1998) compatible\0"
    desc = (b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(GAMMA * 256))
    tags = [(b"desc", desc), (b"wtpt", _xyz(D50)), (b"rXYZ", _xyz(PRIMARIES[0])),
            (b"gXYZ", _xyz(PRIMARIES[1])), (b"bXYZ", _xyz(PRIMARIES[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0No copyright, use freely\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += _pad(data)
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000)
              + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + b"\0" * 4
              + b"".join(_s15(v) for v in D50) + b"\0" * 4)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body
