"""One original → a share JPEG and a thumbnail, both metadata-free sRGB.

The thumbnail is made from the share image in memory, never by decoding the original
again. Outputs are written atomically (temp + rename); nothing is ever upscaled.

Failures are sorted in two: anything wrong with the file itself (undecodable, truncated,
a decoder plugin raising whatever it raises, too large for this device) is that file's
problem, returned in the result; the environment failing (our disk full, read-only or
failing, the original gone) raises `ProcessingStopped`: the session is not finished and
must be processed again once the cause is fixed."""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageCms

from ghostroll import faults
from ghostroll.card.media import Kind
from ghostroll.config import ImagesConfig
from ghostroll.derive import lossless, video
from ghostroll.derive.adobe_rgb import adobe_rgb_icc, marked_adobe_rgb
from ghostroll.derive.metadata import PhotoMeta, meta_from_exif
from ghostroll.derive.shared_metadata import shared_exif
from ghostroll.derive.sources import NotAPicture, open_picture, target_size, upright
from ghostroll.errors import ProcessingStopped, is_disk_full
from ghostroll.hashing import remember_sha256

log = logging.getLogger("ghostroll.derive")
# OSErrors that say the machine, not the photo, is the problem (EPIPE: the service that
# reads the work child's progress went away)
ENVIRONMENTAL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES,
                           errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.ESTALE,
                           errno.ENODEV, errno.ENXIO, errno.EMFILE, errno.ENFILE, errno.ENOMEM,
                           errno.EPIPE})
_SRGB = ImageCms.createProfile("sRGB")
RESAMPLE = Image.Resampling.BICUBIC
# A picture shared as it is serves as its own thumbnail up to this multiple of the
# thumbnail edge (a 640x480 camera JPEG: ~130 kB instead of a second ~40 kB object).
OWN_THUMB_RATIO = 1.5


@dataclass(frozen=True)
class DeriveJob:
    source: Path
    kind: str
    share: Path
    thumb: Path
    poster: Path | None = None  # videos: a camera-made poster (THM), used before ffmpeg
    motion: Path | None = None  # photos: a Live Photo's clip


@dataclass(frozen=True)
class DeriveResult:
    job: DeriveJob
    share: Path | None = None
    thumb: Path | None = None
    width: int = 0  # of the share image
    height: int = 0
    meta: PhotoMeta = field(default_factory=PhotoMeta)
    error: str | None = None  # the file could not be made into a picture
    note: str | None = None  # made nothing, by design (e.g. RAW preview too small)
    duration_s: float | None = None  # videos
    video: Path | None = None  # the shared copy of a video, or of a photo's motion clip
    video_codec: str = ""


def environmental(exc: BaseException) -> bool:
    """An OSError from the machine (a full or failing disk, a missing file), as opposed
    to a decoder's complaint about the file (those carry no errno)."""
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENTAL


def describe(exc: OSError) -> str:
    """`No space left on device: free some space on the session disk (IMG_0001.JPG)`."""
    reason = exc.strerror or str(exc)
    if is_disk_full(exc):
        reason += ": free some space on the session disk"
    return reason + (f" ({exc.filename})" if exc.filename else "")


def stopped(what: Path, exc: OSError) -> ProcessingStopped:
    return ProcessingStopped(f"{describe(exc)} [{what.name}]" if not exc.filename
                             else describe(exc), exc.errno or errno.EIO)


def derive_one(job: DeriveJob, images: ImagesConfig) -> DeriveResult:
    """Never raises for a problem of the file; raises `ProcessingStopped` when the
    environment fails."""
    try:
        if job.kind == Kind.VIDEO:
            return _video(job, images)
        return _picture(job, images)
    except ProcessingStopped:
        raise
    except OSError as exc:
        if environmental(exc):
            raise stopped(job.source, exc) from exc
        return _failed(job, exc)
    except Exception as exc:  # a decoder plugin may raise anything: the file's problem
        return _failed(job, exc)


def _failed(job: DeriveJob, exc: Exception) -> DeriveResult:
    log.debug("cannot decode %s", job.source, exc_info=True)
    reason = _reason(exc)
    if isinstance(exc, MemoryError):
        reason = "not enough memory on this device"
    elif not isinstance(exc, OSError | SyntaxError | ValueError | EOFError):
        reason = f"{type(exc).__name__}: {reason}"  # unexpected kinds say what they were
    return DeriveResult(job, error=f"cannot decode: {reason}", meta=meta_from_exif(None,
                                                                                 _mtime(job.source)))


def _picture(job: DeriveJob, images: ImagesConfig) -> DeriveResult:
    mtime = job.source.stat().st_mtime  # a missing original stops here, as the machine's fault
    try:
        if job.source.stat().st_size == 0:
            return DeriveResult(job, error="empty file (0 bytes): nothing to show",
                                meta=meta_from_exif(None, mtime))
        if job.kind == Kind.JPEG:
            shared = _shared_as_is(job, images, mtime)
            if shared is not None:
                return shared
        opened = open_picture(job.source, job.kind, images.share_max_long_edge,
                              images.decode_budget_mb << 20)
        meta = meta_from_exif(opened.exif, mtime)
        share = opened.image
        # Resize first: orientation and colour conversion then touch 2-4x fewer pixels.
        # Bicubic with Pillow's area-aware downscaling (thumbnail's default): sharp, no
        # aliasing, and ~30 % cheaper than Lanczos on a Pi (see bench/derive.py).
        share.thumbnail((images.share_max_long_edge,) * 2, RESAMPLE)
        if "icc_profile" not in share.info and marked_adobe_rgb(opened.exif):
            share.info["icc_profile"] = adobe_rgb_icc()
        share = to_srgb(upright(share, opened.orientation))
        thumb = fitted(share, images.thumb_max_long_edge)
    except NotAPicture as exc:
        return DeriveResult(job, note=str(exc), meta=meta_from_exif(None, mtime))
    except Image.DecompressionBombError as exc:
        return DeriveResult(job, error=f"cannot decode: {_reason(exc)}",
                            meta=meta_from_exif(None, mtime))
    faults.delay("derive")
    faults.fault("derive")
    save_jpeg(share, job.share, images.share_quality, shared_exif(opened.exif))
    save_jpeg(thumb, job.thumb, images.thumb_quality)
    clip, codec, note = _motion_clip(job, images)
    return DeriveResult(job, job.share, job.thumb, share.width, share.height, meta,
                        note=note, video=clip, video_codec=codec)


def _motion_clip(job: DeriveJob, images: ImagesConfig,
                 after: int = 0) -> tuple[Path | None, str, str | None]:
    """A Live Photo's clip, or the one a motion photo (Pixel, Samsung) carries after its
    JPEG (searched from `after` when the JPEG's end is known), shared like a video:
    (copy, codec, why not)."""
    source, skip = job.motion, 0
    if source is None and job.kind in (Kind.JPEG, Kind.HEIC):  # Samsung: HEIC + MP4 too
        skip = video.embedded_video_offset(job.source, after) or 0
        source = job.source if skip else None
    if source is None or images.share_video_max_mb == 0:
        return None, "", None
    if source.stat().st_size - skip > images.share_video_max_mb * 1_000_000:
        return None, "", "motion clip not shared: over share_video_max_mb"
    if not video.has_ffmpeg():
        return None, "", "motion clip not shared: ffmpeg is not installed"
    info = video.probe(source, skip)
    if info.codec not in video.INLINE_CODECS:
        return None, "", None  # e.g. HEVC: browsers would not play it; the still is enough
    dest = job.share.with_name(f"{job.share.stem}.motion.mp4")
    try:
        return video.remux(source, dest, info.creation_time, skip), info.codec, None
    except video.RemuxFailed as exc:
        return None, "", f"motion clip not shared: {exc}"


def _shared_as_is(job: DeriveJob, images: ImagesConfig, mtime: float) -> DeriveResult | None:
    """A small sRGB upright JPEG: the share image is the original with its metadata
    rewritten (`lossless.py`); only the thumbnail is decoded, and a picture already about
    thumbnail-sized is its own thumbnail (one object less to send: `thumb` is `share`).
    None: not such a JPEG."""
    try:
        opened = Image.open(job.source)
    except (Image.DecompressionBombError, Image.UnidentifiedImageError):
        return None  # the general path says what it is
    own_thumb = False
    with opened as image:
        if not lossless.eligible(image, images.share_max_long_edge):
            return None
        exif = image.getexif()
        if marked_adobe_rgb(exif):
            return None  # Adobe RGB by EXIF alone: converted on the general path
        size = image.size
        own_thumb = max(size) <= images.thumb_max_long_edge * OWN_THUMB_RATIO
        # decoded even when not needed as a thumbnail: a JPEG whose tables or frame header
        # are damaged must be reported, not shared. (Measured: random damage before the
        # scan passes the marker walk yet fails this decode ~30 % of the time; a truncated
        # scan fails the marker walk; damage inside the scan decodes as garbage either way.)
        image.draft("RGB", (1, 1) if own_thumb else (images.thumb_max_long_edge,) * 2)
        thumb = to_srgb(image.convert("RGB") if image.mode != "RGB" else image.copy())
    try:
        rewritten = lossless.rewrite_metadata(job.source.read_bytes(), shared_exif(exif))
    except lossless.NotJpeg:
        return None
    faults.delay("derive")
    faults.fault("derive")
    _write_bytes(job.share, rewritten.data)
    if not own_thumb:
        thumb.thumbnail((images.thumb_max_long_edge,) * 2, RESAMPLE)
        save_jpeg(thumb, job.thumb, images.thumb_quality)
    clip, codec, note = _motion_clip(job, images, after=rewritten.image_end)
    return DeriveResult(job, job.share, job.share if own_thumb else job.thumb, size[0],
                        size[1], meta_from_exif(exif, mtime), note=note, video=clip,
                        video_codec=codec)


def to_srgb(image: Image.Image) -> Image.Image:
    """RGB in sRGB: embedded ICC profiles converted, CMYK and palette images too."""
    icc = image.info.get("icc_profile")
    if icc:
        if image.mode not in ("RGB", "CMYK", "L"):
            image = image.convert("RGB")
        try:
            return ImageCms.applyTransform(image, _transform(icc, image.mode))
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to a plain conversion
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    """Building a colour transform costs more than applying it: one per camera profile."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(source, _SRGB, mode, "RGB")


def save_jpeg(image: Image.Image, path: Path, quality: int, exif: bytes | None = None) -> None:
    """A JPEG with no XMP, ICC or comments and only the allow-listed EXIF (`exif`, from
    `shared_exif`), written by `_write_bytes`. Pillow writes what it is given, except a
    comment, which it copies from `image.info` unless given one: an empty one here
    (every shared file is checked for all of them by the tests)."""
    encoded = io.BytesIO()
    extra = {"exif": exif} if exif else {}
    image.save(encoded, "JPEG", quality=quality, optimize=False, comment=b"", **extra)
    _write_bytes(path, encoded.getbuffer())


def fitted(image: Image.Image, long_edge: int) -> Image.Image:
    """A new image with its long edge at most `long_edge`: `thumbnail`'s filter and
    reducing gap, without first copying the full-size image to shrink in place."""
    size = target_size(*image.size, long_edge)
    return image.copy() if size == image.size else image.resize(size, RESAMPLE,
                                                                 reducing_gap=2.0)


def _write_bytes(path: Path, data: bytes | memoryview) -> None:
    """A derivative written to a temp file, then renamed (no fsync: it can always be made
    again; a full disk leaves nothing behind); its hash, from the bytes in hand, is
    remembered for the upload that follows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_bytes(data)
        written = temp.stat()  # the version renamed into place: no window for another
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    remember_sha256(path, hashlib.sha256(data).hexdigest(), written)


def _video(job: DeriveJob, images: ImagesConfig) -> DeriveResult:
    """A poster tile: the camera's THM if there is one, else a frame from ffmpeg; the
    duration from ffprobe; and, up to `share_video_max_mb`, the shared copy (a remux
    without metadata, see derive/video.py). Without ffmpeg the clip stays on the device."""
    info = video.probe(job.source)
    recorded = video.captured(info)
    meta = (PhotoMeta(captured=recorded, captured_source="video-creation") if recorded
            else meta_from_exif(None, _mtime(job.source)))
    shared, note = _share_video(job, images, info)
    result = DeriveResult(job, meta=meta, duration_s=info.duration_s, video=shared,
                          video_codec=info.codec, note=note)
    frame_file = job.poster
    made = None
    edge = images.thumb_max_long_edge
    if frame_file is None and shutil.which("ffmpeg") is not None:
        made = frame_file = job.thumb.with_name(f".{job.thumb.stem}.frame.jpg")
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-y",
             "-i", str(job.source), "-frames:v", "1", "-map_metadata", "-1",
             "-vf", f"scale={edge}:{edge}:force_original_aspect_ratio=decrease",
             str(frame_file)],
            capture_output=True, timeout=60, preexec_fn=video.helper_limits)
    try:
        if frame_file is None or not frame_file.exists():
            return result
        # a THM is a JPEG from the camera, but it gets the same memory bound as any file
        frame = open_picture(frame_file, Kind.JPEG, edge, images.decode_budget_mb << 20)
        thumb = to_srgb(upright(frame.image, frame.orientation))
        thumb.thumbnail((edge,) * 2, RESAMPLE)
        save_jpeg(thumb, job.thumb, images.thumb_quality)
    except (OSError, ValueError, SyntaxError) as exc:
        if environmental(exc):
            raise
        return result
    finally:
        if made is not None:
            made.unlink(missing_ok=True)
    return replace(result, thumb=job.thumb, width=thumb.width, height=thumb.height)


def _share_video(job: DeriveJob, images: ImagesConfig,
                 info: video.VideoInfo) -> tuple[Path | None, str | None]:
    """(the shared copy, or None and why not)."""
    limit = images.share_video_max_mb
    size = job.source.stat().st_size
    if limit == 0:
        return None, None  # sharing videos is switched off
    if size > limit * 1_000_000:
        return None, (f"video not shared: {size / 1e6:.0f} MB is over share_video_max_mb "
                      f"({limit}); the original is kept")
    if not video.has_ffmpeg():
        return None, "video not shared: ffmpeg is not installed; the original is kept"
    dest = job.share.with_suffix("." + video.share_extension(job.source))
    try:
        return video.remux(job.source, dest, info.creation_time), None
    except video.RemuxFailed as exc:
        return None, f"{exc}; the original is kept"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
