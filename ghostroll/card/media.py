"""What a card file is: classification by content (magic bytes), then by extension.

Pure: `classify(name, head)` looks only at the file name and its first bytes.
Every file in the camera trees is ingested; the kind only decides what is made
from it later (share images from jpeg/heic/raw, tiles for video)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

HEAD_BYTES = 64  # how much of each file `classify` needs


class Kind(StrEnum):
    JPEG = "jpeg"
    HEIC = "heic"
    TIFF = "tiff"  # camera-written TIFF photos (decoded like JPEG, by Pillow)
    PICTURE = "picture"  # other still pictures: WebP, GIF, BMP, PNG, JPEG XL (Pillow)
    RAW = "raw"
    VIDEO = "video"
    SIDECAR = "sidecar"
    OTHER = "other"


RAW_EXTENSIONS = frozenset(
    "cr2 cr3 crw nef nrw arw srf sr2 raf rw2 rwl orf dng pef srw kdc dcr gpr 3fr fff iiq "
    "mos mrw x3f erf mef raw".split())
JPEG_EXTENSIONS = frozenset({"jpg", "jpeg", "jpe", "mpo"})
HEIC_EXTENSIONS = frozenset({"heic", "heif", "hif", "avif"})
VIDEO_EXTENSIONS = frozenset({"mp4", "mov", "mts", "m2ts", "avi", "m4v", "3gp", "mpg", "insv"})
TIFF_EXTENSIONS = frozenset({"tif", "tiff"})
SIDECAR_EXTENSIONS = frozenset({"thm", "xmp", "wav", "aae"})
PICTURE_EXTENSIONS = frozenset({"webp", "gif", "bmp", "png", "jxl"})

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"avif")
_VIDEO_BRANDS = (b"qt  ", b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"XAVC", b"M4V ",
                 b"3gp4", b"3gp5", b"MSNV", b"dash")


def extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower().lstrip(".")


def classify(name: str, head: bytes) -> Kind:
    """Kind of a file from its name and first HEAD_BYTES bytes.

    Content wins where it is unambiguous (a `.nef` that is really a JPEG is a JPEG,
    a `.JPG` holding HEIF is HEIC); RAW formats are mostly TIFF containers, so a
    TIFF header with a RAW extension is RAW, and the extension decides the rest."""
    ext = extension(name)
    sniffed = _sniff(head)
    if sniffed is Kind.JPEG and ext not in ("thm",):
        return Kind.JPEG
    if sniffed in (Kind.HEIC, Kind.VIDEO, Kind.RAW):
        return sniffed
    if ext in RAW_EXTENSIONS:
        return Kind.RAW
    if ext in JPEG_EXTENSIONS:
        return Kind.JPEG  # unrecognised content (truncated, zero bytes): still a photo file
    if ext in HEIC_EXTENSIONS:
        return Kind.HEIC
    if ext in TIFF_EXTENSIONS:
        return Kind.TIFF
    if sniffed is Kind.PICTURE or ext in PICTURE_EXTENSIONS:
        return Kind.PICTURE
    if ext in VIDEO_EXTENSIONS:
        return Kind.VIDEO
    if ext in SIDECAR_EXTENSIONS:
        return Kind.SIDECAR
    return Kind.OTHER


def _sniff(head: bytes) -> Kind | None:
    if head[:3] == b"\xff\xd8\xff":
        return Kind.JPEG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return Kind.RAW  # Canon CR3 is an ISO-BMFF container
        if brand in _HEIF_BRANDS:
            return Kind.HEIC
        if brand in _VIDEO_BRANDS:
            return Kind.VIDEO
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Kind.VIDEO
    if (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[:6] in (b"GIF87a", b"GIF89a") \
            or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:2] == b"\xff\x0a" \
            or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return Kind.PICTURE
    if head[:4] in (b"FUJI",) or head[:8] == b"FUJIFILM":
        return Kind.RAW
    if head[:4] in (b"IIRO", b"IIRS", b"IIU\x00", b"MMOR") or head[6:14] == b"HEAPCCDR":
        return Kind.RAW  # Olympus ORF, Panasonic RW2, Canon CRW
    return None
