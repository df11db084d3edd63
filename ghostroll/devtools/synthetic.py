"""Synthetic camera cards for the demo, the benchmarks and tests that need no samples.

Real JPEGs (Pillow) with real EXIF (Make, Model, DateTimeOriginal in the Exif sub-IFD,
OffsetTimeOriginal, Orientation), laid out as a camera does: `DCIM/100GHOST/IMG_0001.JPG`.
Image content is a smooth gradient with a little noise so JPEG sizes are realistic
without being slow to make."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw

EXIF_IFD = 0x8769
TAG_MAKE, TAG_MODEL, TAG_ORIENTATION, TAG_DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
TAG_DATETIME_ORIGINAL, TAG_OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
TAG_SUBSEC_TIME_ORIGINAL = 0x9291
TAG_GPS_IFD = 0x8825


@dataclass(frozen=True)
class PhotoSpec:
    width: int = 1600
    height: int = 1067
    taken: datetime = datetime(2026, 11, 24, 10, 42, 0)
    make: str = "GhostRoll"
    model: str = "Synthetic Camera"
    orientation: int = 1
    quality: int = 90
    gps: bool = False
    label: str = ""


def make_jpeg(path: Path, spec: PhotoSpec, seed: int = 0) -> Path:
    """Write one JPEG with EXIF as a camera would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _picture(spec.width, spec.height, seed, spec.label or path.stem)
    exif = Image.Exif()
    exif[TAG_MAKE] = spec.make
    exif[TAG_MODEL] = spec.model
    exif[TAG_ORIENTATION] = spec.orientation
    exif[TAG_DATETIME] = spec.taken.strftime("%Y:%m:%d %H:%M:%S")
    sub = exif.get_ifd(EXIF_IFD)
    sub[TAG_DATETIME_ORIGINAL] = spec.taken.strftime("%Y:%m:%d %H:%M:%S")
    sub[TAG_OFFSET_TIME_ORIGINAL] = "+01:00"
    sub[TAG_SUBSEC_TIME_ORIGINAL] = "42"
    if spec.gps:
        gps = exif.get_ifd(TAG_GPS_IFD)
        gps[1], gps[2] = "N", (48.0, 51.0, 24.0)
        gps[3], gps[4] = "E", (2.0, 21.0, 3.0)
    image.save(path, "JPEG", quality=spec.quality, exif=exif.tobytes())
    return path


def _picture(width: int, height: int, seed: int, label: str) -> Image.Image:
    rng = random.Random(seed)
    hue = rng.randrange(256)
    small = Image.linear_gradient("L").resize((64, 64))
    base = Image.merge("RGB", (small, small.rotate(90), small.point(lambda v: (v + hue) % 256)))
    image = base.resize((width, height), Image.Resampling.BILINEAR)
    noise = Image.effect_noise((width // 4 or 1, height // 4 or 1), 24).convert("RGB")
    image = Image.blend(image, noise.resize((width, height)), 0.15)
    draw = ImageDraw.Draw(image)
    draw.text((width // 20, height // 20), label, fill=(255, 255, 255))
    return image


def make_blob(path: Path, size: int, seed: int = 0, header: bytes = b"") -> Path:
    """A file of `size` bytes that does not compress (RAW- or video-sized payloads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with path.open("wb") as out:
        out.write(header)
        left = size - len(header)
        while left > 0:
            chunk = min(left, 1 << 20)
            out.write(rng.randbytes(chunk))
            left -= chunk
    return path


# A minimal ISO-BMFF header, so the classifier sees a real QuickTime file type box.
MOV_HEADER = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "
# TIFF little-endian header as Nikon NEF / Sony ARW start.
TIFF_HEADER = b"II*\x00\x08\x00\x00\x00"


def make_demo_card(root: Path, photos: int = 12, seed: int = 7) -> Path:
    """A small, varied card: JPEGs with EXIF (one portrait by Orientation 6, one with
    GPS), a RAW+JPEG pair, a video-like file, a THM sidecar and some OS junk."""
    rng = random.Random(seed)
    dcim = root / "DCIM" / "100GHOST"
    start = datetime(2026, 11, 24, 10, 0, 0)
    for i in range(1, photos + 1):
        spec = PhotoSpec(
            width=1600, height=1067, taken=start + timedelta(minutes=3 * i),
            orientation=6 if i == 3 else 1, gps=(i == 5), label=f"IMG_{i:04d}")
        make_jpeg(dcim / f"IMG_{i:04d}.JPG", spec, seed=rng.randrange(1 << 30))
    pair = photos + 1
    make_jpeg(dcim / f"IMG_{pair:04d}.JPG",
              PhotoSpec(taken=start + timedelta(hours=1), label="RAW+JPEG"), seed=pair)
    make_blob(dcim / f"IMG_{pair:04d}.NEF", 3 << 20, seed=pair, header=TIFF_HEADER)
    make_blob(dcim / f"MVI_{pair + 1:04d}.MOV", 2 << 20, seed=pair + 1, header=MOV_HEADER)
    (dcim / f"MVI_{pair + 1:04d}.THM").write_bytes(
        (dcim / "IMG_0001.JPG").read_bytes()[:2048])
    (root / ".Trashes").mkdir(exist_ok=True)
    (dcim / "._IMG_0001.JPG").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    return root


def make_video(path: Path, seconds: int = 3) -> bool:
    """A real H.264 clip (a test pattern, 320×240, with a creation time) when ffmpeg is
    installed; False when it is not (the caller keeps what it had)."""
    if shutil.which("ffmpeg") is None:
        return False
    temp = path.with_name(f".{path.name}.tmp{path.suffix}")
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc=duration={seconds}:size=320x240:rate=15", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-metadata", "creation_time=2026-11-24T11:00:00Z",
         "-f", "mov", str(temp)], capture_output=True, timeout=120)
    if done.returncode != 0:
        temp.unlink(missing_ok=True)
        return False
    temp.replace(path)
    return True


def make_bench_card(root: Path, photos: int, raws: int, megapixels: float = 24.0,
                    raw_mb: int = 25, seed: int = 1) -> Path:
    """A benchmark card: `photos` JPEGs of about `megapixels` MP (3:2) with EXIF and
    `raws` incompressible RAW-sized blobs."""
    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(width / 1.5)
    dcim = root / "DCIM" / "100BENCH"
    start = datetime(2026, 11, 24, 9, 0, 0)
    for i in range(photos):
        make_jpeg(dcim / f"DSC_{i:04d}.JPG",
                  PhotoSpec(width=width, height=height, taken=start + timedelta(seconds=i)),
                  seed=seed + i)
    for i in range(raws):
        make_blob(dcim / f"DSC_{photos + i:04d}.NEF", raw_mb << 20, seed=seed + 10_000 + i,
                  header=TIFF_HEADER)
    return root


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()
               and not os.path.islink(p))
