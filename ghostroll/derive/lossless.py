"""Small JPEGs shared as they are: a camera JPEG already within the share size, in sRGB
and upright needs no decode and re-encode. Its compressed data is kept bit for bit and
only its metadata segments are rewritten: every APPn and comment is dropped (EXIF, XMP,
ICC, maker notes, IPTC) except the two that say how to read the pixels (JFIF, Adobe's
colour transform), and the allow-listed EXIF of `shared_metadata.shared_exif` is added.

`eligible` decides from the header Pillow has read (pure); `rewrite_metadata` is a pure
function of the bytes (the bytes to share, and where the original's picture ended)."""

from __future__ import annotations

from typing import NamedTuple

from PIL import Image

SOI, SOS, EOI = 0xD8, 0xDA, 0xD9
APP0, APP1, APP14, COM = 0xE0, 0xE1, 0xEE, 0xFE
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field
ORIENTATION = 0x0112


class NotJpeg(ValueError):
    """The bytes are not a JPEG stream we can rewrite; decode and encode it instead."""


def eligible(image: Image.Image, share_long_edge: int) -> bool:
    """True when a JPEG can be shared as it is: one frame, 8-bit RGB or grey, within the
    share size, no ICC profile other than sRGB, orientation 1 (or none)."""
    if image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return False
    if max(image.size) > share_long_edge:
        return False
    if int(image.getexif().get(ORIENTATION, 1) or 1) != 1:
        return False
    icc = image.info.get("icc_profile")
    return not icc or _is_srgb(icc)


def _is_srgb(icc: bytes) -> bool:
    # The profile description ('desc' tag) of every sRGB profile cameras embed says so.
    return b"sRGB" in icc[:2048] or b"s\x00R\x00G\x00B" in icc[:2048]


def _kept(marker: int, payload: bytes) -> bool:
    if marker == APP0:
        return payload.startswith(b"JFIF\x00")
    if marker == APP14:
        return payload.startswith(b"Adobe")
    return not (0xE0 <= marker <= 0xEF or marker == COM)


def end_of_image(data: bytes, pos: int) -> int:
    """The offset just past the EOI marker, walking from the first SOS at `pos` through
    entropy-coded data (stuffed 0xFF00, RSTn) and the segments between progressive scans."""
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            raise NotJpeg(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == EOI:
            return pos + 2
        if pos + 4 > len(data):
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")  # SOS header, DHT...
        if marker != SOS:
            continue
        while pos + 1 < len(data):  # entropy-coded data up to the next marker
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= len(data):
                raise NotJpeg("the scan has no end of image")
            marker = data[pos + 1]
            if marker == 0x00 or marker in STANDALONE or marker == 0xFF:
                pos += 1 if marker == 0xFF else 2
                continue
            break
    raise NotJpeg("the scan has no end of image")


class Rewritten(NamedTuple):
    data: bytes  # the JPEG to share
    image_end: int  # where the original's image ended (past its EOI): what follows
    #                 (a motion photo's clip, a maker's trailer) was left out


def rewrite_metadata(data: bytes, exif: bytes | None) -> Rewritten:
    """`data` with its metadata segments replaced by `exif` (an APP1 payload starting
    with b"Exif\\0\\0", or None); the frame, tables and scan data unchanged."""
    if data[:2] != b"\xff\xd8":
        raise NotJpeg("no JPEG start of image")
    out = [b"\xff\xd8"]
    if exif:
        if len(exif) + 2 > 0xFFFF:
            raise NotJpeg("EXIF block too large for one segment")
        out.append(b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif)
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise NotJpeg(f"no marker at byte {pos}")
        marker = data[pos + 1] if pos + 1 < len(data) else EOI
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in STANDALONE or marker in (SOI, EOI):
            raise NotJpeg(f"unexpected marker {marker:#x} before the scan")
        if pos + 4 > len(data):
            raise NotJpeg("truncated segment header")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise NotJpeg("truncated segment")
        if marker == SOS:
            # the scans untouched, up to the end of the image: whatever a camera appends
            # after it (a motion photo's MP4, a maker's trailer) is not shared
            image_end = end_of_image(data, pos)
            out.append(data[pos:image_end])
            return Rewritten(b"".join(out), image_end)
        if _kept(marker, data[pos + 4:end]):
            out.append(data[pos:end])
        pos = end
    raise NotJpeg("no scan data")
