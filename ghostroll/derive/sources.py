"""Opening a picture for derivatives, by kind, as cheaply as the format allows.

- JPEG/TIFF: Pillow; JPEG decoded at reduced scale (`draft`) when the target allows.
- HEIC/HEIF/HIF: pillow-heif; the file's own thumbnail item when it is at least the
  target size (a full HEIF decode cannot be scaled down on the way).
- RAW: the largest embedded JPEG preview (rawpy's `extract_thumb`, else our own scan of
  the file for JPEG streams, which finds e.g. the CR3 PRVW preview rawpy misses).

Each opener returns the picture upright (orientation applied) plus the EXIF to read
metadata from."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ghostroll.media import Kind

MIN_PREVIEW_EDGE = 640  # a smaller RAW preview is not a picture worth sharing
PIXEL_LIMIT = 150_000_000  # beyond this a file is refused as a decompression bomb
_RAW_FLIP_TO_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90,
                          6: Image.Transpose.ROTATE_270}

Image.MAX_IMAGE_PIXELS = PIXEL_LIMIT
# check_pixels() refuses oversized files with a message of ours; Pillow's own warning
# between 1x and 2x the limit would only repeat it on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class NotAPicture(ValueError):
    """The file holds no usable picture (e.g. a RAW with only a tiny preview)."""


@dataclass
class Opened:
    image: Image.Image  # loaded; upright unless `orientation` says otherwise
    exif: Image.Exif | None
    note: str | None = None
    orientation: int = 1  # EXIF orientation still to apply (after resizing: cheaper)


def target_size(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """Aspect-correct size with the long edge at most `long_edge` (never upscaled)."""
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_pixels(width: int, height: int) -> None:
    if width * height > PIXEL_LIMIT:
        raise NotAPicture(f"{width}x{height} is more than {PIXEL_LIMIT // 1_000_000} MP: "
                          "refused as a possible decompression bomb")


def open_picture(path: Path, kind: str, long_edge: int) -> Opened:
    if kind == Kind.HEIC:
        return _open_heif(path, long_edge)
    if kind == Kind.RAW:
        return _open_raw(path)
    return _open_pillow(path, long_edge)


def _open_pillow(path: Path, long_edge: int) -> Opened:
    image = Image.open(path)
    check_pixels(*image.size)
    exif = image.getexif()
    if image.format == "JPEG" or image.format == "MPO":
        # draft only scales when asked for the final, aspect-correct size
        image.draft("RGB", target_size(*image.size, long_edge))
    image.load()
    return Opened(image, exif, orientation=int(exif.get(0x0112, 1) or 1))


def _open_heif(path: Path, long_edge: int) -> Opened:
    import pillow_heif

    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=True)
    primary = heif[heif.primary_index] if hasattr(heif, "primary_index") else heif
    check_pixels(*primary.size)
    exif_bytes = primary.info.get("exif")
    exif = Image.Exif()
    if exif_bytes:
        exif.load(exif_bytes)
    source = primary
    thumbs = sorted(getattr(primary, "thumbnails", []), key=lambda t: max(t.size))
    usable = [t for t in thumbs if max(t.size) >= long_edge]
    if usable:
        source = usable[0]
    image = source.to_pillow()
    # pillow-heif applies the HEIF transforms (irot/imir) itself; the EXIF tag is then
    # stale, so orientation is not applied a second time.
    return Opened(image, exif)


def _open_raw(path: Path) -> Opened:
    preview, orientation = _rawpy_preview(path)
    data = path.read_bytes()
    candidates = [p for p in (preview, _largest_embedded_jpeg(data)) if p is not None]
    if not candidates:
        raise NotAPicture("no usable preview (the RAW holds no embedded picture)")
    image = max(candidates, key=lambda im: im.width * im.height)
    if max(image.size) < MIN_PREVIEW_EDGE:
        raise NotAPicture(f"no usable preview (largest embedded picture is "
                          f"{image.width}x{image.height}, under {MIN_PREVIEW_EDGE} px)")
    exif = image.getexif()
    if orientation in _RAW_FLIP_TO_TRANSPOSE:
        image = image.transpose(_RAW_FLIP_TO_TRANSPOSE[orientation])
        return Opened(image, exif)
    return Opened(_upright(image, exif), exif)


def _rawpy_preview(path: Path) -> tuple[Image.Image | None, int]:
    try:
        import rawpy
    except ImportError:
        return None, 0
    try:
        with rawpy.imread(str(path)) as raw:
            flip = int(getattr(raw.sizes, "flip", 0) or 0)
            thumb = raw.extract_thumb()
    except (rawpy.LibRawError, OSError, ValueError):
        return None, 0
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            image = Image.open(io.BytesIO(thumb.data))
            image.load()
        else:
            image = Image.fromarray(thumb.data)
    except (OSError, ValueError):
        return None, flip
    return image, flip


def _largest_embedded_jpeg(data: bytes) -> Image.Image | None:
    """The largest JPEG stream inside a RAW container that decodes completely."""
    best: Image.Image | None = None
    start = data.find(b"\xff\xd8\xff")
    tried = 0
    while start != -1 and tried < 64:
        tried += 1
        try:
            candidate = Image.open(io.BytesIO(data[start:]))
            if candidate.format == "JPEG" and (best is None or candidate.width *
                                               candidate.height > best.width * best.height):
                candidate.load()
                best = candidate
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass
        start = data.find(b"\xff\xd8\xff", start + 3)
    return best


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1..8) to the pixels."""
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    return image.transpose(method) if method is not None else image


def _upright(image: Image.Image, exif: Image.Exif) -> Image.Image:
    return upright(image, int(exif.get(0x0112, 1) or 1))
