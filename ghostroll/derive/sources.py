"""Opening a picture for derivatives, by kind, as cheaply as the format allows.

- JPEG/TIFF: Pillow; JPEG decoded at reduced scale (`draft`) when the target allows.
- HEIC/HEIF/HIF: pillow-heif; the file's own thumbnail item when it is at least the
  target size (a full HEIF decode cannot be scaled down on the way).
- RAW: the largest embedded JPEG preview (rawpy's `extract_thumb`, else our own scan of
  the file for JPEG streams, which finds e.g. the CR3 PRVW preview rawpy misses),
  decoded at reduced scale too.

Each opener returns the picture upright (orientation applied) plus the EXIF to read
metadata from.

Memory: before decoding, each opener estimates the peak bytes the job will hold
(`*_cost`: decoded pixels after any reduction on load, decoder buffers, the resized
copies). A file over the per-job limit is refused (`TooLarge`) rather than decoded, except
a HEIF with a thumbnail item of at least `MIN_PREVIEW_EDGE`, which is shown from that."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image

from ghostroll.card.media import Kind

MIN_PREVIEW_EDGE = 640  # a smaller RAW preview is not a picture worth sharing
PIXEL_LIMIT = 150_000_000  # beyond this a file is refused as a decompression bomb
_RAW_FLIP_TO_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90,
                          6: Image.Transpose.ROTATE_270}

Image.MAX_IMAGE_PIXELS = PIXEL_LIMIT
try:  # registers JPEG XL with Pillow; without it a .jxl is listed with the reason
    import pillow_jxl  # noqa: F401
    JXL_DECODER = True
except ImportError:
    JXL_DECODER = False
# check_pixels() refuses oversized files with a message of ours; Pillow's own warning
# between 1x and 2x the limit would only repeat it on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class NotAPicture(ValueError):
    """The file holds no usable picture (e.g. a RAW with only a tiny preview)."""


class TooLarge(NotAPicture):
    """Decoding the file would take more memory than one job may use on this device."""

    def __init__(self, width: int, height: int, cost: int) -> None:
        super().__init__(f"too large to preview on this device ({width * height / 1e6:.1f} MP "
                         f"needs ~{_mb(cost)} MB; the limit is decode_budget_mb)")


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


def open_picture(path: Path, kind: str, long_edge: int, limit: int) -> Opened:
    """`limit`: the most bytes this one job may hold while decoding (see `TooLarge`)."""
    if path.suffix.lower() == ".jxl" and not JXL_DECODER:
        raise ValueError("JPEG XL cannot be decoded here: pillow-jxl-plugin is not installed")
    if kind == Kind.HEIC:
        return _open_heif(path, long_edge, limit)
    if kind == Kind.RAW:
        return _open_raw(path, long_edge, limit)
    return _open_pillow(path, long_edge, limit)


def estimate_cost(path: Path, kind: str, long_edge: int) -> int:
    """Peak bytes one job will hold for this file, from its header only."""
    if kind == Kind.HEIC:
        import pillow_heif

        primary = _heif_primary(pillow_heif.open_heif(path, convert_hdr_to_8bit=True))
        return heif_cost(*primary.size, primary.info.get("bit_depth", 8), long_edge)
    if kind == Kind.RAW:
        return RAW_PREVIEW_COST
    with Image.open(path) as image:
        full = image.size
        _reduce_on_load(image, long_edge)
        return pillow_cost(image, full, long_edge)


RAW_PREVIEW_COST = 64 << 20  # a full-size embedded preview, drafted to the share size


def _mb(n: int) -> int:
    return -(-n // (1 << 20))


def _bytes_per_pixel(mode: str) -> int:
    """Pillow's storage: one byte for 8-bit single-band modes, four for the rest."""
    # 16 bits: the picture, its 32-bit copy and the 8-bit result (see eight_bit)
    return 1 if mode in ("1", "L", "P") else 7 if mode.startswith("I;16") else 4


JOB_OVERHEAD = 8 << 20  # codec state, plugin code, Python objects of one job


def _working_copies(width: int, height: int, long_edge: int) -> int:
    """Alive beside the decoded picture while it is resized: Pillow first reduces to
    >= 2x the target by an integer factor, then resamples in two passes (an intermediate
    of target width x source height), then the share image itself. The copies made after
    the decoded picture is freed (sRGB, upright, the clean copy written) are smaller."""
    tw, th = target_size(width, height, long_edge)
    factor = min(width // (2 * tw), height // (2 * th))
    reduced = (width // factor) * (height // factor) * 4 if factor > 1 else 0
    source_height = height // factor if factor > 1 else height
    return reduced + tw * source_height * 4 + tw * th * 4


def pillow_cost(image: Image.Image, full: tuple[int, int], long_edge: int) -> int:
    """`image` opened (and drafted) but not loaded; `full` its size before any draft.
    The peak is while decoding (decoder buffers) or while resizing, whichever is larger."""
    width, height = image.size
    decoded = width * height * _bytes_per_pixel(image.mode)
    during_decode = decoded + _decoder_buffers(image, full)
    during_resize = decoded + _working_copies(width, height, long_edge)
    return max(during_decode, during_resize) + JOB_OVERHEAD


def _decoder_buffers(image: Image.Image, full: tuple[int, int]) -> int:
    if image.format in ("JPEG", "MPO"):
        if not image.info.get("progressive"):
            return 0  # baseline: a few rows at a time, at the reduced scale
        # progressive: libjpeg holds every DCT coefficient (2 bytes) at full resolution
        layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * 3
        hmax = max(h for _, h, _, _ in layers)
        vmax = max(v for _, _, v, _ in layers)
        return sum(full[0] * full[1] * h * v // (hmax * vmax) * 2 for _, h, v, _ in layers)
    if image.format == "TIFF":
        # libtiff decodes a whole strip (or tile) into a buffer of its own first
        tags = getattr(image, "tag_v2", {})
        bits = tags.get(258, 8)
        pixel_bytes = int(tags.get(277, 1)) * max(bits if isinstance(bits, int)
                                                  else max(bits or (8,)), 8) // 8
        if 322 in tags and 323 in tags:  # tiled
            return int(tags[322]) * int(tags[323]) * pixel_bytes
        rows = min(int(tags.get(278, full[1]) or full[1]), full[1])
        return rows * full[0] * pixel_bytes
    if image.format == "PNG":
        return full[0] * 8 * 2  # a row and the previous one
    return full[0] * full[1] * 4  # other decoders: assume a second full-size buffer


def heif_cost(width: int, height: int, bit_depth: int, long_edge: int) -> int:
    """While decoding, libheif's planes plus the interleaved buffer Pillow then shares:
    measured ~7.2 bytes/pixel at 8 bits, ~13.4 at 10 bits (decoded at 16, then converted);
    while resizing, that buffer (4 bytes/pixel) and the working copies."""
    per_pixel = 7.5 if bit_depth <= 8 else 14
    during_decode = int(width * height * per_pixel)
    during_resize = width * height * 4 + _working_copies(width, height, long_edge)
    return max(during_decode, during_resize) + JOB_OVERHEAD


def _reduce_on_load(image: Image.Image, long_edge: int) -> None:
    if image.format in ("JPEG", "MPO"):
        # draft only scales when asked for the final, aspect-correct size
        image.draft("RGB", target_size(*image.size, long_edge))


def _open_pillow(path: Path, long_edge: int, limit: int) -> Opened:
    image = Image.open(path)
    try:
        full = image.size
        _reduce_on_load(image, long_edge)
        check_pixels(*image.size)  # after a JPEG's draft: a 280 MP JPEG decodes at 1/8
        cost = pillow_cost(image, full, long_edge)
        if cost > limit:
            raise TooLarge(*full, cost)
        exif = image.getexif()  # only now: for a PNG this decodes the whole picture
        image.load()
    except BaseException:
        image.close()
        raise
    return Opened(eight_bit(image), exif, orientation=int(exif.get(0x0112, 1) or 1))


def eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale (a drone's multispectral band, a scanner's TIFF) scaled
    to 8 bits by its own range: converting directly would clip every value above 255 to
    white."""
    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return image
    _low, high = image.getextrema()
    if high <= 0:
        return image.convert("L")
    wide = image if image.mode in ("I", "F") else image.convert("I")
    return wide.point(lambda v: v * (255 / high)).convert("L")


def _heif_primary(heif: object) -> object:
    return heif[heif.primary_index] if hasattr(heif, "primary_index") else heif  # type: ignore


def _open_heif(path: Path, long_edge: int, limit: int) -> Opened:
    import pillow_heif

    primary = _heif_primary(pillow_heif.open_heif(path, convert_hdr_to_8bit=True))
    width, height = primary.size  # type: ignore[attr-defined]
    check_pixels(width, height)
    info = primary.info  # type: ignore[attr-defined]
    exif = Image.Exif()
    if info.get("exif"):
        exif.load(info["exif"])
    cost = heif_cost(width, height, info.get("bit_depth", 8), long_edge)
    # thumbnail items, by long edge: the smallest one that fills the share image, else
    # (when the full picture is too large for this device) the largest worth showing
    edges = list(info.get("thumbnails") or [])
    fits = [i for i, e in enumerate(edges) if e >= long_edge]
    shown = [i for i, e in enumerate(edges) if e >= MIN_PREVIEW_EDGE]
    pick = (min(fits, key=lambda i: edges[i]) if fits else
            max(shown, key=lambda i: edges[i]) if shown and cost > limit else None)
    # pillow-heif applies the HEIF transforms (irot/imir) itself; the EXIF tag is then
    # stale, so orientation is not applied a second time.
    if pick is not None:
        try:
            return Opened(primary.get_thumbnail(pick).to_pillow(), exif)  # type: ignore
        except (ValueError, RuntimeError, IndexError):
            pass  # a broken thumbnail item: the full picture, if it fits
    if cost > limit:
        raise TooLarge(width, height, cost)
    return Opened(primary.to_pillow(), exif)  # type: ignore[attr-defined]


def _open_raw(path: Path, long_edge: int, limit: int) -> Opened:
    refused: list[TooLarge] = []  # previews too large for this device
    preview, orientation = _rawpy_preview(path, long_edge, limit, refused)
    # rawpy misses some previews (CR3 PRVW) or finds only a small one: scan then too
    embedded = (_largest_embedded_jpeg(path, long_edge, limit, refused)
                if preview is None or max(preview[1]) < long_edge else None)
    candidates = [p for p in (preview, embedded) if p is not None]
    if not candidates and refused:
        raise refused[0]
    if not candidates:
        raise NotAPicture("no usable preview (the RAW holds no embedded picture)")
    image, full = max(candidates, key=lambda c: c[1][0] * c[1][1])
    if max(full) < MIN_PREVIEW_EDGE:
        raise NotAPicture(f"no usable preview (largest embedded picture is "
                          f"{full[0]}x{full[1]}, under {MIN_PREVIEW_EDGE} px)")
    exif = image.getexif()
    if orientation in _RAW_FLIP_TO_TRANSPOSE:
        image = image.transpose(_RAW_FLIP_TO_TRANSPOSE[orientation])
        return Opened(image, exif)
    return Opened(_upright(image, exif), exif)


Preview = tuple[Image.Image, tuple[int, int]]  # loaded picture, its size before drafting


def _load_jpeg(fp: IO[bytes], long_edge: int, limit: int) -> Preview:
    image = Image.open(fp)
    full = image.size
    if image.format != "JPEG":
        raise ValueError("not a JPEG stream")
    check_pixels(*full)
    _reduce_on_load(image, long_edge)
    cost = pillow_cost(image, full, long_edge)
    if cost > limit:
        raise TooLarge(*full, cost)
    image.load()
    return image, full


def _rawpy_preview(path: Path, long_edge: int, limit: int,
                   refused: list[TooLarge]) -> tuple[Preview | None, int]:
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
            return _load_jpeg(io.BytesIO(thumb.data), long_edge, limit), flip
        image = Image.fromarray(thumb.data)
    except TooLarge as exc:
        refused.append(exc)
        return None, flip
    except (OSError, ValueError, SyntaxError):
        return None, flip
    return (image, image.size), flip


class _Window(io.RawIOBase):
    """A read-only view of `fp` from `start` to its end, so Pillow opens a stream that
    begins inside a RAW file without the file being read into memory."""

    def __init__(self, fp: IO[bytes], start: int, size: int) -> None:
        self.fp, self.start, self.size, self.pos = fp, start, size - start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        self.fp.seek(self.start + self.pos)
        n = self.fp.readinto(memoryview(buffer)[:max(0, self.size - self.pos)])  # type: ignore
        self.pos += n or 0
        return n or 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos


def _jpeg_starts(fp: IO[bytes], limit: int = 64) -> list[int]:
    """Offsets of JPEG start markers, reading the file 1 MiB at a time."""
    starts: list[int] = []
    offset, tail = 0, b""
    while len(starts) < limit and (chunk := fp.read(1 << 20)):
        data = tail + chunk
        base = offset - len(tail)
        at = data.find(b"\xff\xd8\xff")
        while at != -1 and len(starts) < limit:
            if not starts or base + at > starts[-1]:
                starts.append(base + at)
            at = data.find(b"\xff\xd8\xff", at + 3)
        offset += len(chunk)
        tail = data[-2:]
    return starts


def _largest_embedded_jpeg(path: Path, long_edge: int, limit: int,
                           refused: list[TooLarge]) -> Preview | None:
    """The largest JPEG stream inside a RAW container that decodes completely."""
    with path.open("rb") as fp:
        size = path.stat().st_size
        found: list[tuple[int, int]] = []  # (pixels, offset) from the headers alone
        for start in _jpeg_starts(fp):
            try:
                with Image.open(io.BufferedReader(_Window(fp, start, size))) as candidate:
                    if candidate.format == "JPEG":
                        found.append((candidate.width * candidate.height, start))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                _reraise_environmental(exc)
        for _, start in sorted(found, reverse=True):
            try:
                return _load_jpeg(io.BufferedReader(_Window(fp, start, size)), long_edge, limit)
            except TooLarge as exc:
                refused.append(exc)  # a smaller preview may still do
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                _reraise_environmental(exc)
    return None


def _reraise_environmental(exc: BaseException) -> None:
    """A decoder's complaint carries no errno; reading our own disk failing does."""
    if isinstance(exc, OSError) and exc.errno is not None:
        raise exc


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1..8) to the pixels."""
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    return image.transpose(method) if method is not None else image


def _upright(image: Image.Image, exif: Image.Exif) -> Image.Image:
    return upright(image, int(exif.get(0x0112, 1) or 1))
