"""Photo metadata for captions and order: capture time and camera.

Capture time comes from EXIF DateTimeOriginal in the Exif sub-IFD (0x8769), with
OffsetTimeOriginal and SubSecTimeOriginal when present; else DateTime in IFD0; else the
file's mtime, and `captured_source` says which one was used. (The original system read
the wrong IFD and never found DateTimeOriginal.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image

EXIF_IFD = 0x8769
MAKE, MODEL, DATETIME = 0x010F, 0x0110, 0x0132
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, SUBSEC_TIME_ORIGINAL = 0x9003, 0x9011, 0x9291
EXPOSURE_TIME, F_NUMBER, ISO, FOCAL_LENGTH, LENS_MODEL = 0x829A, 0x829D, 0x8827, 0x920A, 0xA434

_STAMP = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


@dataclass(frozen=True)
class PhotoMeta:
    captured: datetime | None = None  # aware when the camera wrote an offset
    captured_source: str = "none"  # exif-original, exif-datetime, video-creation, file-mtime, none
    make: str = ""
    model: str = ""
    lens: str = ""
    focal_length_mm: float | None = None
    exposure_s: float | None = None
    f_number: float | None = None
    iso: int | None = None

    @property
    def camera(self) -> str:
        """`Canon EOS 5D Mark III`, without the make repeated inside the model."""
        make, model = self.make.strip(), self.model.strip()
        if not model:
            return make
        first = make.split()[0].lower() if make else ""
        return model if not first or model.lower().startswith(first) else f"{make} {model}"



def parse_stamp(text: object, offset: object = None, subsec: object = None) -> datetime | None:
    """An EXIF date/time string (with optional offset and sub-seconds) as a datetime."""
    if not isinstance(text, str):
        return None
    match = _STAMP.match(text.strip().rstrip("\x00"))
    if match is None:
        return None
    try:
        stamp = datetime(*(int(g) for g in match.groups()))
    except ValueError:
        return None  # e.g. "0000:00:00 00:00:00" from a camera with no clock set
    if isinstance(subsec, str) and subsec.strip().rstrip("\x00").isdigit():
        digits = subsec.strip().rstrip("\x00")[:6].ljust(6, "0")
        stamp = stamp.replace(microsecond=int(digits))
    if isinstance(offset, str) and (m := _OFFSET.match(offset.strip().rstrip("\x00"))):
        sign = -1 if m.group(1) == "-" else 1
        stamp = stamp.replace(tzinfo=timezone(sign * timedelta(hours=int(m.group(2)),
                                                                minutes=int(m.group(3)))))
    return stamp


def meta_from_exif(exif: Image.Exif | None, mtime: float | None = None) -> PhotoMeta:
    exif = exif if exif is not None else Image.Exif()
    sub = exif.get_ifd(EXIF_IFD)
    captured = parse_stamp(sub.get(DATETIME_ORIGINAL), sub.get(OFFSET_TIME_ORIGINAL),
                           sub.get(SUBSEC_TIME_ORIGINAL))
    source = "exif-original"
    if captured is None:
        captured, source = parse_stamp(exif.get(DATETIME)), "exif-datetime"
    if captured is None and mtime is not None:
        captured, source = datetime.fromtimestamp(mtime, UTC), "file-mtime"
    if captured is None:
        source = "none"
    return PhotoMeta(
        captured=captured, captured_source=source,
        make=_text(exif.get(MAKE)), model=_text(exif.get(MODEL)),
        lens=_text(sub.get(LENS_MODEL)),
        focal_length_mm=_number(sub.get(FOCAL_LENGTH)),
        exposure_s=_number(sub.get(EXPOSURE_TIME)),
        f_number=_number(sub.get(F_NUMBER)),
        iso=_iso(sub.get(ISO)),
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip().rstrip("\x00").strip() if isinstance(value, str) else ""


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number > 0 else None


def _iso(value: object) -> int | None:
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    number = _number(value)
    return int(number) if number else None
